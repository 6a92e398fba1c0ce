// Package clustercheck checks a topology against a live cluster before
// anything runs — the classic runtime "configuration mismatch" caught early:
// every input topic exists, every output topic exists or may be created, and
// topics that must be co-partitioned have equal partition counts.
//
// Check is read-only (veltrix validate --brokers); Prepare runs the same
// checks and then creates the missing output topics (veltrix run).
package clustercheck

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/topicwait"
	"github.com/veltrix/veltrix/internal/topology"
	"github.com/veltrix/veltrix/pkg/diag"
)

// Result is what the checks found out about the topology's topics.
type Result struct {
	Problems diag.List
	// Warnings do not stop validate or run (diag.SeverityWarning): VX4007.
	Warnings      diag.List
	Partitions    map[string]int32 // existing topics of the topology
	MissingOutput []string         // output topics that do not exist yet (but may be created)
	// MaxTxnTimeout is the brokers' transaction.max.timeout.ms, or 0 when
	// the cluster did not say.
	MaxTxnTimeout time.Duration
}

// Check inspects the cluster, read-only. Problems carry codes VX4001 (input
// topic missing), VX4002 (co-partitioning), VX4004 (an output topic that
// neither exists nor may be created), VX4005 (cluster unreachable) and
// VX4006 (a transaction timeout above the brokers' maximum); Warnings carry
// VX4007 (kafka.max_record_bytes above a written topic's max.message.bytes).
func Check(ctx context.Context, adm *kadm.Client, cfg *config.Config, topo *topology.Topology) Result {
	res := Result{Partitions: map[string]int32{}}
	inputs, outputs := topo.InputTopics(), topo.OutputTopics()
	all := append(slices.Clone(inputs), outputs...)
	details, err := adm.ListTopics(ctx, all...)
	if err != nil {
		res.Problems.Add(&diag.Error{Code: diag.ClusterUnreachable, Path: "kafka.brokers",
			Message: fmt.Sprintf("cannot read topic metadata from %s: %v", strings.Join(cfg.Kafka.Brokers, ","), err),
			Hint:    "check kafka.brokers (or VELTRIX_KAFKA_BROKERS), TLS and SASL settings, and that the cluster is up"})
		return res
	}
	exists := func(t string) bool {
		d, ok := details[t]
		return ok && d.Err == nil
	}
	for t, d := range details {
		if d.Err == nil {
			res.Partitions[t] = int32(len(d.Partitions))
		}
	}
	repartitions := topo.Repartitions()
	for _, t := range inputs {
		if !exists(t) && !slices.Contains(repartitions, t) {
			res.Problems.Add(inputPos(cfg, t).At(diag.TopicMissing, "input topic %q does not exist", t).
				WithHint("create it (e.g. kafka-topics.sh --create --topic %s), or fix the name", t))
		}
	}
	for _, t := range outputs {
		if !exists(t) {
			res.MissingOutput = append(res.MissingOutput, t)
		}
	}
	if len(res.MissingOutput) > 0 {
		resp, err := adm.ValidateCreateTopics(ctx, -1, -1, nil, res.MissingOutput...)
		if err != nil {
			var ke *kerr.Error
			if !errors.As(err, &ke) {
				res.Problems.Add(&diag.Error{Code: diag.ClusterUnreachable, Path: "kafka.brokers",
					Message: fmt.Sprintf("cannot check whether output topics may be created: %v", err)})
				return res
			}
		}
		for _, t := range res.MissingOutput {
			if r, ok := resp[t]; ok && r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
				res.Problems.Add(outputPos(cfg, topo, t).At(diag.OutputUnavailable,
					"output topic %q does not exist and cannot be created: %v", t, r.Err).
					WithHint("create the topic, or grant this client CREATE on it"))
			}
		}
	}
	checkTxnTimeout(ctx, adm, cfg, &res)
	checkRecordLimit(ctx, adm, cfg, outputs, &res)
	for _, group := range topo.CoPartitioned() {
		var counts []string
		first := int32(-1)
		equal := true
		for _, t := range group {
			n, ok := res.Partitions[t]
			if !ok {
				equal = false // reported above as missing
				continue
			}
			if first == -1 {
				first = n
			} else if n != first {
				equal = false
			}
			counts = append(counts, fmt.Sprintf("%s=%d", t, n))
		}
		if !equal && len(counts) == len(group) {
			res.Problems.Add(inputPos(cfg, group[0]).At(diag.CoPartition,
				"topics %s must have the same partition count (%s)", strings.Join(group, ", "), strings.Join(counts, ", ")).
				WithHint("repartition one of them (or rekey before the join) so both have the same partition count"))
		}
	}
	return res
}

// checkTxnTimeout compares processing.transaction_timeout with the brokers'
// transaction.max.timeout.ms (15 minutes by default): a larger timeout makes
// every InitProducerId fail with INVALID_TRANSACTION_TIMEOUT, so an
// exactly-once instance could never start. A cluster that does not say
// (no DescribeConfigs permission, a broker without the setting) is not
// checked here; the producer's error then names the cause.
func checkTxnTimeout(ctx context.Context, adm *kadm.Client, cfg *config.Config, res *Result) {
	if cfg.Processing.Guarantee != config.ExactlyOnce {
		return
	}
	meta, err := adm.BrokerMetadata(ctx)
	if err != nil || len(meta.Brokers) == 0 {
		return
	}
	rcs, err := adm.DescribeBrokerConfigs(ctx, meta.Brokers[0].NodeID)
	if err != nil {
		return
	}
	for _, rc := range rcs {
		i := slices.IndexFunc(rc.Configs, func(c kadm.Config) bool { return c.Key == maxTxnTimeoutKey })
		if rc.Err != nil || i < 0 {
			continue
		}
		ms, err := strconv.ParseInt(rc.Configs[i].MaybeValue(), 10, 64)
		if err != nil {
			continue
		}
		res.MaxTxnTimeout = time.Duration(ms) * time.Millisecond
		if got := cfg.Processing.TransactionTimeout; got > res.MaxTxnTimeout {
			res.Problems.Add(diag.Pos{File: cfg.File, Path: "processing.transaction_timeout"}.At(diag.TxnTimeoutTooLarge,
				"processing.transaction_timeout %s exceeds the brokers' %s (%s)", got, maxTxnTimeoutKey, res.MaxTxnTimeout).
				WithHint("lower processing.transaction_timeout to at most %s, or raise %s on every broker", res.MaxTxnTimeout, maxTxnTimeoutKey))
		}
		return
	}
}

const maxTxnTimeoutKey = "transaction.max.timeout.ms"

// checkRecordLimit warns (VX4007) for each topic Veltrix writes to whose
// max.message.bytes is below kafka.max_record_bytes: a record between the
// two passes Veltrix's own size check (VX5006) and is then refused by the
// broker, which fails the whole transaction. Existing topics are compared
// with their own setting; a topic run would create, with the brokers'
// message.max.bytes. A cluster that does not say is not checked.
func checkRecordLimit(ctx context.Context, adm *kadm.Client, cfg *config.Config, topics []string, res *Result) {
	limit := int64(cfg.Kafka.MaxRecordBytes)
	if limit <= 0 {
		return
	}
	warn := func(topic string, max int64, created bool) {
		msg := fmt.Sprintf("kafka.max_record_bytes %d exceeds %s %d of topic %q", limit, topicMaxBytesKey, max, topic)
		if created {
			msg = fmt.Sprintf("kafka.max_record_bytes %d exceeds the brokers' %s %d, which topic %q would be created with", limit, brokerMaxBytesKey, max, topic)
		}
		res.Warnings.Add(diag.Pos{File: cfg.File, Path: "kafka.max_record_bytes"}.At(diag.RecordLimitAboveTopic, "%s", msg).
			With(fmt.Sprintf("<= %d", max), strconv.FormatInt(limit, 10)).
			WithHint("lower kafka.max_record_bytes to at most %d, or raise max.message.bytes of %q", max, topic).AsWarning())
	}
	var existing []string
	for _, t := range topics {
		if !slices.Contains(res.MissingOutput, t) {
			existing = append(existing, t)
		}
	}
	if len(existing) > 0 {
		rcs, err := adm.DescribeTopicConfigs(ctx, existing...)
		if err == nil {
			for _, rc := range rcs {
				if v, ok := configInt(rc, topicMaxBytesKey); ok && limit > v {
					warn(rc.Name, v, false)
				}
			}
		}
	}
	if len(res.MissingOutput) == 0 {
		return
	}
	meta, err := adm.BrokerMetadata(ctx)
	if err != nil || len(meta.Brokers) == 0 {
		return
	}
	rcs, err := adm.DescribeBrokerConfigs(ctx, meta.Brokers[0].NodeID)
	if err != nil || len(rcs) == 0 {
		return
	}
	if v, ok := configInt(rcs[0], brokerMaxBytesKey); ok && limit > v {
		for _, t := range res.MissingOutput {
			warn(t, v, true)
		}
	}
}

// The topic and broker settings bounding a record batch.
const (
	topicMaxBytesKey  = "max.message.bytes"
	brokerMaxBytesKey = "message.max.bytes"
)

// configInt returns the integer value of key in rc.
func configInt(rc kadm.ResourceConfig, key string) (int64, bool) {
	if rc.Err != nil {
		return 0, false
	}
	i := slices.IndexFunc(rc.Configs, func(c kadm.Config) bool { return c.Key == key })
	if i < 0 {
		return 0, false
	}
	v, err := strconv.ParseInt(rc.Configs[i].MaybeValue(), 10, 64)
	return v, err == nil
}

// Prepare runs Check and, when it found no problem, creates the missing
// repartition topics (with the partition count of the topics they are
// co-partitioned with, else of their rule's inputs) and the missing output
// topics (with the cluster's default partition count and replication
// factor). It returns what Check found, with the created topics'
// partition counts.
func Prepare(ctx context.Context, adm *kadm.Client, cfg *config.Config, topo *topology.Topology) (Result, error) {
	res := Check(ctx, adm, cfg, topo)
	if len(res.Problems) > 0 {
		return res, res.Problems.Err()
	}
	var problems diag.List
	var created []string
	for _, it := range topo.InternalTopics() {
		if it.Kind != "repartition" || !slices.Contains(res.MissingOutput, it.Topic) {
			continue
		}
		n := repartitionCount(topo, it, res.Partitions)
		resp, err := adm.CreateTopic(ctx, n, -1, topicConfigs(RepartitionConfigs), it.Topic)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			problems.Add(outputPos(cfg, topo, it.Topic).At(diag.OutputUnavailable, "create repartition topic %q: %v", it.Topic, err))
			continue
		}
		res.Partitions[it.Topic] = max(resp.NumPartitions, n)
		created = append(created, it.Topic)
		res.MissingOutput = slices.DeleteFunc(res.MissingOutput, func(t string) bool { return t == it.Topic })
	}
	if len(problems) > 0 {
		return res, problems.Err()
	}
	dlqs := map[string]bool{}
	for _, r := range topo.Rules {
		if r.DLQ != "" {
			dlqs[r.DLQ] = true
		}
	}
	for _, t := range res.MissingOutput {
		var configs map[string]*string
		if dlqs[t] {
			configs = topicConfigs(DLQConfigs)
		}
		r, err := adm.CreateTopic(ctx, -1, -1, configs, t)
		switch {
		case errors.Is(err, kerr.TopicAlreadyExists):
			// Another instance created it meanwhile.
			created = append(created, t)
		case err != nil:
			problems.Add(outputPos(cfg, topo, t).At(diag.OutputUnavailable, "create output topic %q: %v", t, err))
		default:
			res.Partitions[t] = r.NumPartitions
			created = append(created, t)
		}
	}
	if len(problems) > 0 {
		return res, problems.Err()
	}
	// The first transaction must find the new topics' leaders.
	listed, err := topicwait.Led(ctx, adm, 30*time.Second, created...)
	maps.Copy(res.Partitions, listed)
	return res, err
}

// RepartitionConfigs are the topic configs of the repartition topics Veltrix
// creates, as Kafka Streams sets them: records are kept until they are
// processed (no time limit; the engine deletes consumed records with
// DeleteRecords after commits), in 50 MiB segments so that deleted records
// free their space soon.
var RepartitionConfigs = map[string]string{
	"cleanup.policy": "delete",
	"retention.ms":   "-1",
	"segment.bytes":  "52428800",
}

// DLQConfigs are the topic configs of a dead-letter topic Veltrix creates:
// deleted by time (a week, Kafka's default, written out so that a cluster
// whose default policy is compaction does not compact failed records by
// key). Other output topics are created with the cluster's defaults.
var DLQConfigs = map[string]string{
	"cleanup.policy": "delete",
	"retention.ms":   "604800000",
}

func topicConfigs(m map[string]string) map[string]*string {
	out := make(map[string]*string, len(m))
	for k, v := range m {
		out[k] = &v
	}
	return out
}

// Tasks is the number of tasks of the topology: the largest partition count
// of its input topics.
func (r Result) Tasks(topo *topology.Topology) int32 {
	return r.MaxPartitions(topo.InputTopics())
}

// MaxPartitions is the largest partition count among topics.
func (r Result) MaxPartitions(topics []string) int32 {
	var n int32
	for _, t := range topics {
		n = max(n, r.Partitions[t])
	}
	return n
}

// repartitionCount is the partition count a missing repartition topic gets:
// that of an existing topic it must be co-partitioned with, else the
// largest of its rule's inputs.
func repartitionCount(topo *topology.Topology, it topology.InternalTopic, partitions map[string]int32) int32 {
	for _, group := range topo.CoPartitioned() {
		if !slices.Contains(group, it.Topic) {
			continue
		}
		for _, t := range group {
			if n, ok := partitions[t]; ok && t != it.Topic {
				return n
			}
		}
	}
	var n int32
	if r := topo.Rule(it.Rule); r != nil {
		for _, t := range r.From {
			n = max(n, partitions[t])
		}
	}
	if n == 0 {
		n = -1 // the cluster's default
	}
	return n
}

func inputPos(cfg *config.Config, topic string) diag.Pos {
	for _, r := range cfg.Rules {
		for i, t := range r.From {
			if t == topic && i < len(r.FromPos) {
				return r.FromPos[i]
			}
		}
	}
	return diag.Pos{File: cfg.File}
}

func outputPos(cfg *config.Config, topo *topology.Topology, topic string) diag.Pos {
	for _, r := range topo.Rules {
		if slices.Contains(r.Outputs, topic) || r.DLQ == topic {
			for _, rc := range cfg.Rules {
				if rc.Name == r.Name {
					return rc.Pos
				}
			}
		}
	}
	return diag.Pos{File: cfg.File}
}
