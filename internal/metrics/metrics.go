// Package metrics defines Veltrix's Prometheus metrics (prefix veltrix_) on an
// injected registry, and the client-level Kafka metrics from franz-go's kprom
// plugin (prefix veltrix_kafka_).
//
// The engine and the topology report into a *Metrics; no step counts for
// itself. Names follow Prometheus practice: base units, _total on counters,
// bounded label sets (topics, rules, stores and fixed outcome values).
package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"

	"github.com/veltrix/veltrix/internal/topology"
	"github.com/veltrix/veltrix/pkg/diag"
)

const namespace = "veltrix"

// Metrics holds every Veltrix metric.
type Metrics struct {
	RecordsConsumed   *prometheus.CounterVec   // topic
	RecordsProduced   *prometheus.CounterVec   // topic
	RuleRecords       *prometheus.CounterVec   // rule, outcome
	EventErrors       *prometheus.CounterVec   // rule, code
	Transactions      *prometheus.CounterVec   // result: commit, abort
	Rebalances        prometheus.Counter       //
	SessionRestarts   prometheus.Counter       //
	ConfigReloads     *prometheus.CounterVec   // result: applied, invalid, refused, failed
	ProcessingLatency *prometheus.HistogramVec // rule
	EndToEndLatency   prometheus.Histogram     //
	CommitDuration    prometheus.Histogram     //
	ConsumerLag       *prometheus.GaugeVec     // topic, partition
	OpenTransaction   *prometheus.GaugeVec     // topic, partition
	StateStoreKeys    *prometheus.GaugeVec     // store
	RestoreRemaining  *prometheus.GaugeVec     // store
	StateDiskFree     prometheus.Gauge         //

	reg prometheus.Registerer // for KafkaHooks
}

// New creates the metrics and registers them on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		RecordsConsumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "records_consumed_total",
			Help: "Records consumed from input topics.",
		}, []string{"topic"}),
		RecordsProduced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "records_produced_total",
			Help: "Records produced to output, DLQ and internal topics (acknowledged by the broker).",
		}, []string{"topic"}),
		RuleRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "rule_records_total",
			Help: "Records seen by each rule, by outcome: matched, filtered, error (skipped), dlq.",
		}, []string{"rule", "outcome"}),
		EventErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "event_errors_total",
			Help: "Failed events by rule and error code (see docs/errors.md).",
		}, []string{"rule", "code"}),
		Transactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "transactions_total",
			Help: "Ended Kafka transactions (exactly_once) or offset commits (at_least_once), by result: commit, abort.",
		}, []string{"result"}),
		Rebalances: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "rebalances_total",
			Help: "Partition assignments and revocations seen by this instance.",
		}),
		SessionRestarts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "session_restarts_total",
			Help: "Transactional sessions ended by a fenced producer or failing transaction coordinator and started again (exactly_once).",
		}),
		ConfigReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "config_reloads_total",
			Help: "Configuration reloads (SIGHUP, POST /v1/reload) by result: applied (state kept), invalid (the configuration has problems), refused (a change needs a restart), failed (not applied, e.g. the cluster check failed).",
		}, []string{"result"}),
		ProcessingLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "processing_latency_seconds",
			Help:    "Time a rule took for one record, from consume to produce (timed for one record in 8, by offset).",
			Buckets: []float64{1e-6, 5e-6, 25e-6, 100e-6, 500e-6, 0.001, 0.005, 0.025, 0.1, 0.5},
		}, []string{"rule"}),
		EndToEndLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "end_to_end_latency_seconds",
			Help:    "Time from a record's timestamp to the commit of its results (sampled).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}),
		CommitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "commit_duration_seconds",
			Help:    "Time to end a transaction (flush, offsets, EndTxn) or commit offsets.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
		}),
		ConsumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "consumer_lag",
			Help: "Records of an input partition this instance owns not yet committed: its last stable offset minus the group's committed offset, computed every few seconds.",
		}, []string{"topic", "partition"}),
		OpenTransaction: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "open_transaction_age_seconds",
			Help: "How long an open transaction has held the last stable offset of a partition, with records behind it that read_committed consumers cannot read (0: none): the input partitions this instance owns, its tasks' changelog partitions and every partition of its output and DLQ topics; computed every few seconds and counted from when this instance first saw it; older than the brokers' transaction.max.timeout.ms, it is hanging (VX4008).",
		}, []string{"topic", "partition"}),
		StateStoreKeys: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "state_store_keys",
			Help: "Approximate keys in each local state store.",
		}, []string{"store"}),
		RestoreRemaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "restore_remaining_records",
			Help: "Changelog records still to restore, per store.",
		}, []string{"store"}),
		StateDiskFree: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "state_disk_free_bytes",
			Help: "Bytes free on the file system of app.state_dir; processing pauses below app.state_min_free_bytes.",
		}),
		reg: reg,
	}
	reg.MustRegister(m.RecordsConsumed, m.RecordsProduced, m.RuleRecords, m.EventErrors,
		m.Transactions, m.Rebalances, m.SessionRestarts, m.ConfigReloads, m.ProcessingLatency, m.EndToEndLatency,
		m.CommitDuration, m.ConsumerLag, m.OpenTransaction, m.StateStoreKeys, m.RestoreRemaining, m.StateDiskFree)
	return m
}

// Outcome records one rule's outcome for one record; it makes *Metrics a
// topology.Observer.
func (m *Metrics) Outcome(rule string, outcome topology.Outcome, code diag.Code, took time.Duration) {
	m.RuleRecords.WithLabelValues(rule, string(outcome)).Inc()
	if code != "" {
		m.EventErrors.WithLabelValues(rule, string(code)).Inc()
	}
	if took > 0 {
		m.ProcessingLatency.WithLabelValues(rule).Observe(took.Seconds())
	}
}

// Lag sets the consumer lag gauge of one partition.
func (m *Metrics) Lag(topic string, partition int32, lag int64) {
	m.ConsumerLag.WithLabelValues(topic, strconv.Itoa(int(partition))).Set(float64(lag))
}

// OpenTransactionAge sets the open transaction age gauge of one partition.
func (m *Metrics) OpenTransactionAge(topic string, partition int32, age time.Duration) {
	m.OpenTransaction.WithLabelValues(topic, strconv.Itoa(int(partition))).Set(age.Seconds())
}

// DropLag removes the consumer lag and open transaction age series of one
// partition (one this instance no longer owns).
func (m *Metrics) DropLag(topic string, partition int32) {
	p := strconv.Itoa(int(partition))
	m.ConsumerLag.DeleteLabelValues(topic, p)
	m.OpenTransaction.DeleteLabelValues(topic, p)
}

// KafkaHooks returns the franz-go hooks that export one client's metrics
// (veltrix_kafka_*): pass them to that client with kgo.WithHooks, and make
// new ones for the next client (a new transactional session's). They
// register their metrics when the client starts and unregister them when it
// closes, so the series start again with each client, and two clients with
// hooks must not be open at once. Hooks shared by clients would race: kprom
// makes its collectors anew for each new client while the connections of
// the last one, closed, may still be reporting into them.
func (m *Metrics) KafkaHooks() kgo.Hook {
	return kprom.NewMetrics(namespace, kprom.Subsystem("kafka"), kprom.Registerer(m.reg),
		kprom.FetchAndProduceDetail(kprom.ByNode, kprom.Batches, kprom.Records, kprom.CompressedBytes, kprom.UncompressedBytes, kprom.ConsistentNaming))
}
