package engine

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/metrics"
	"github.com/veltrix/veltrix/internal/state"
	"github.com/veltrix/veltrix/internal/topology"
	"github.com/veltrix/veltrix/pkg/diag"
)

// outcomes is the topology.Observer the engine passes for every record: it
// reports what metrics.Metrics.Outcome reports, but keeps each rule's
// counters and histogram instead of looking them up by label values (a hash
// of the labels and a map look-up under a lock) on every record.
type outcomes struct {
	m     *metrics.Metrics
	rules sync.Map // rule name -> *ruleMetrics
}

// ruleMetrics are one rule's children of the rule metrics.
type ruleMetrics struct {
	records [4]prometheus.Counter // by outcomeIndex
	latency prometheus.Observer
}

func newOutcomes(m *metrics.Metrics) *outcomes { return &outcomes{m: m} }

// outcomeIndex is the place of an outcome in ruleMetrics.records, or -1.
func outcomeIndex(o topology.Outcome) int {
	switch o {
	case topology.OutcomeMatched:
		return 0
	case topology.OutcomeFiltered:
		return 1
	case topology.OutcomeError:
		return 2
	case topology.OutcomeDLQ:
		return 3
	}
	return -1
}

func (c *outcomes) rule(name string) *ruleMetrics {
	if r, ok := c.rules.Load(name); ok {
		return r.(*ruleMetrics)
	}
	r := &ruleMetrics{latency: c.m.ProcessingLatency.WithLabelValues(name)}
	for _, o := range []topology.Outcome{topology.OutcomeMatched, topology.OutcomeFiltered, topology.OutcomeError, topology.OutcomeDLQ} {
		r.records[outcomeIndex(o)] = c.m.RuleRecords.WithLabelValues(name, string(o))
	}
	actual, _ := c.rules.LoadOrStore(name, r)
	return actual.(*ruleMetrics)
}

// Outcome implements topology.Observer.
func (c *outcomes) Outcome(rule string, outcome topology.Outcome, code diag.Code, took time.Duration) {
	i := outcomeIndex(outcome)
	if i < 0 {
		c.m.Outcome(rule, outcome, code, took)
		return
	}
	r := c.rule(rule)
	r.records[i].Inc()
	if code != "" {
		c.m.EventErrors.WithLabelValues(rule, string(code)).Inc()
	}
	if took > 0 {
		r.latency.Observe(took.Seconds())
	}
}

// counters caches the children of one counter vector labelled by topic.
type counters struct {
	vec *prometheus.CounterVec
	m   sync.Map // topic -> prometheus.Counter
}

func (c *counters) get(topic string) prometheus.Counter {
	if v, ok := c.m.Load(topic); ok {
		return v.(prometheus.Counter)
	}
	v, _ := c.m.LoadOrStore(topic, c.vec.WithLabelValues(topic))
	return v.(prometheus.Counter)
}

// taskOutcomes is one task's Observer: it counts the common outcomes
// locally and adds them to the shared counters once per batch (flush), so
// that tasks on several cores do not contend for the counters per record.
// Errors and the sampled latencies go to the shared metrics at once.
//
// A per-record error (a code under on_error skip or dlq) is also logged, with
// the record's topic, partition and offset: at most one line per
// errorLogEvery per task, the next line counting those left out, so that a
// run of bad records does not flood the log.
type taskOutcomes struct {
	c     *outcomes
	rules []ruleCount

	log        *slog.Logger
	current    func() *kgo.Record // the record being processed
	lastLog    time.Time
	suppressed int64
}

// errorLogEvery bounds the per-record error lines of one task.
const errorLogEvery = 100 * time.Millisecond

type ruleCount struct {
	name string
	m    *ruleMetrics
	n    [4]int64 // by outcomeIndex, since the last flush
}

// Outcome implements topology.Observer.
func (t *taskOutcomes) Outcome(rule string, outcome topology.Outcome, code diag.Code, took time.Duration) {
	i := outcomeIndex(outcome)
	if i < 0 || code != "" {
		t.c.Outcome(rule, outcome, code, took)
		if code != "" {
			t.logError(rule, outcome, code)
		}
		return
	}
	rc := t.rule(rule)
	rc.n[i]++
	if took > 0 {
		rc.m.latency.Observe(took.Seconds())
	}
}

func (t *taskOutcomes) rule(name string) *ruleCount {
	for i := range t.rules {
		if t.rules[i].name == name {
			return &t.rules[i]
		}
	}
	t.rules = append(t.rules, ruleCount{name: name, m: t.c.rule(name)})
	return &t.rules[len(t.rules)-1]
}

// flush adds the counts since the last flush to the shared counters.
func (t *taskOutcomes) flush() {
	for i := range t.rules {
		rc := &t.rules[i]
		for j, n := range rc.n {
			if n > 0 {
				rc.m.records[j].Add(float64(n))
				rc.n[j] = 0
			}
		}
	}
}

// logError logs a per-record error, rate-limited (see taskOutcomes).
func (t *taskOutcomes) logError(rule string, outcome topology.Outcome, code diag.Code) {
	if t.log == nil || t.current == nil {
		return
	}
	now := time.Now()
	if now.Sub(t.lastLog) < errorLogEvery {
		t.suppressed++
		return
	}
	t.lastLog = now
	attrs := []any{"rule", rule, "code", code, "outcome", outcome}
	if r := t.current(); r != nil {
		attrs = append(attrs, "topic", r.Topic, "partition", r.Partition, "offset", r.Offset)
	}
	if t.suppressed > 0 {
		attrs = append(attrs, "not_logged_since_last", t.suppressed)
		t.suppressed = 0
	}
	t.log.Warn("record failed", attrs...)
}

// Consumer lag.
//
// veltrix_consumer_lag{topic,partition} is, for each input partition this
// instance owns, the partition's end offset (the last stable offset: what a
// read_committed consumer can read) minus the group's committed offset (the
// log start offset before the first commit). It is computed every lag
// interval from the cluster, so an idle partition, or one whose fetches
// stopped, still shows its lag, and a partition with records waiting but
// never fetched is not shown as 0. The series of a partition is dropped as
// soon as this instance no longer owns it (checked every lagOwnedEvery), so
// no instance reports a stale lag for a partition another one now
// processes; all series are dropped when Run returns.
//
// The lag stops at the last stable offset, so records behind an open
// transaction do not count: veltrix_open_transaction_age_seconds says how
// long the partition's last stable offset has been held where it is with
// records behind it (its high watermark above it). A transaction cannot
// stay open longer than the brokers' transaction.max.timeout.ms; one that
// holds a partition longer is hanging (a lost marker: docs/operations.md),
// and the tracker logs VX4008 once for it.
//
// The partitions an instance writes and no rule reads are watched for open
// transactions too, without a lag: every partition of the output and DLQ
// topics (a hanging transaction there holds read_committed readers
// downstream; each instance reports them, the alert takes the maximum), and
// the changelog partitions of the instance's tasks (one there fails the
// partition's next restore).

// defaultLagInterval is how often the lag is read from the cluster: three
// requests (two ListOffsets, one OffsetFetch) per interval and instance,
// for the owned and the written partitions together.
const defaultLagInterval = 5 * time.Second

// lagOwnedEvery is how often the shown series are compared with the owned
// partitions (local state only, no request).
const lagOwnedEvery = 250 * time.Millisecond

// defaultMaxTxnTimeout is Kafka's default transaction.max.timeout.ms, for a
// cluster that does not say its own.
const defaultMaxTxnTimeout = 15 * time.Minute

// hangingAfter is how long a transaction may hold a partition before the
// tracker calls it hanging: the brokers' longest transaction timeout, and a
// minute for the coordinator's periodic check of expired transactions
// (every 10 s by default) and the tracker's interval.
func hangingAfter(maxTxnTimeout time.Duration) time.Duration {
	if maxTxnTimeout <= 0 {
		maxTxnTimeout = defaultMaxTxnTimeout
	}
	return maxTxnTimeout + time.Minute
}

// WithLagInterval sets how often veltrix_consumer_lag is computed from the
// cluster's end and committed offsets (default 5s).
func WithLagInterval(d time.Duration) Option { return func(e *Engine) { e.lagEvery = d } }

// partitionOffsets is what the lag tracker reads of one owned partition.
type partitionOffsets struct {
	lag    int64 // stable - the group's committed offset, never below 0
	stable int64 // the last stable offset: read_committed readers stop there
	end    int64 // the high watermark: above stable while a transaction is open
}

// lagOffsets returns the offsets of the given owned partitions (with their
// lag) and of the written ones (lag unset; a topic's nil list: every
// partition), read together.
type lagOffsets func(ctx context.Context, owned, written map[string][]int32) (inputs, outputs map[string]map[int32]partitionOffsets, err error)

// lagTracker keeps veltrix_consumer_lag and
// veltrix_open_transaction_age_seconds to the owned partitions, and the
// latter to the written ones.
type lagTracker struct {
	m       *metrics.Metrics
	owned   func() map[string][]int32
	offsets lagOffsets
	// written returns, given the owned partitions, the partitions written
	// and not read whose open transactions are watched (a nil list: every
	// partition of the topic); nil: none.
	written func(owned map[string][]int32) map[string][]int32
	every   time.Duration
	now     func() time.Time
	log     *slog.Logger
	// hangingAfter is the age from which an open transaction is logged
	// as hanging (VX4008).
	hangingAfter time.Duration
	shown        map[string]map[int32]bool        // series set, by topic and partition
	held         map[string]map[int32]*heldOffset // partitions with an open transaction
}

// heldOffset is a last stable offset seen held by an open transaction.
type heldOffset struct {
	at     int64     // the offset
	since  time.Time // when the tracker first saw it held there
	warned bool      // VX4008 logged
}

// run updates the gauges until ctx ends, then drops every series it set.
func (l *lagTracker) run(ctx context.Context) {
	if l.shown == nil {
		l.shown = map[string]map[int32]bool{}
	}
	if l.held == nil {
		l.held = map[string]map[int32]*heldOffset{}
	}
	defer l.keep(nil, nil)
	check := time.NewTicker(min(lagOwnedEvery, l.every))
	defer check.Stop()
	next := time.Now() // the first computation at once
	for {
		owned := l.owned()
		written := l.writtenBy(owned)
		l.keep(owned, written)
		if now := time.Now(); !now.Before(next) {
			next = now.Add(l.every)
			l.update(ctx, owned, written)
		}
		select {
		case <-ctx.Done():
			return
		case <-check.C:
		}
	}
}

// update reads the offsets of the owned and written partitions and sets
// the series of those still owned or written once the answer is in (a
// revocation during the requests must not bring a series back).
func (l *lagTracker) update(ctx context.Context, owned, written map[string][]int32) {
	if len(owned) == 0 && len(written) == 0 {
		return
	}
	inputs, outputs, err := l.offsets(ctx, owned, written)
	if err != nil {
		return // the next interval tries again; the series keep their last value
	}
	now := l.now()
	still := l.owned()
	for topic, ps := range inputs {
		for p, o := range ps {
			if slices.Contains(still[topic], p) {
				l.m.Lag(topic, p, o.lag)
				l.showAge(topic, p, o, now, true)
			}
		}
	}
	stillWritten := l.writtenBy(still)
	for topic, ps := range outputs {
		for p, o := range ps {
			if watches(stillWritten, topic, p) {
				l.showAge(topic, p, o, now, false)
			}
		}
	}
}

// writtenBy returns the written partitions to watch while owned are owned
// (nil when the tracker watches none).
func (l *lagTracker) writtenBy(owned map[string][]int32) map[string][]int32 {
	if l.written == nil {
		return nil
	}
	return l.written(owned)
}

// watches reports whether a partition is in a map of watched partitions,
// where a topic's nil list stands for all of its partitions.
func watches(m map[string][]int32, topic string, p int32) bool {
	ps, ok := m[topic]
	return ok && (ps == nil || slices.Contains(ps, p))
}

// showAge sets the open transaction age series of a partition (input:
// one the instance reads).
func (l *lagTracker) showAge(topic string, p int32, o partitionOffsets, now time.Time, input bool) {
	l.m.OpenTransactionAge(topic, p, l.openFor(topic, p, o, now, input))
	if l.shown[topic] == nil {
		l.shown[topic] = map[int32]bool{}
	}
	l.shown[topic][p] = true
}

// openFor returns how long an open transaction has held the partition's
// last stable offset where it is now (0 when no record is behind it), and
// logs VX4008 once when that passes hangingAfter (input: a partition the
// instance reads, else one it writes).
func (l *lagTracker) openFor(topic string, p int32, o partitionOffsets, now time.Time, input bool) time.Duration {
	if o.end <= o.stable {
		delete(l.held[topic], p)
		return 0
	}
	h := l.held[topic][p]
	if h == nil || h.at != o.stable {
		if l.held[topic] == nil {
			l.held[topic] = map[int32]*heldOffset{}
		}
		h = &heldOffset{at: o.stable, since: now}
		l.held[topic][p] = h
	}
	age := now.Sub(h.since)
	if age >= l.hangingAfter && !h.warned {
		h.warned = true
		msg := "an open transaction has held an input partition longer than the brokers let a transaction run: it is likely hanging, and the records behind it are not processed"
		if !input {
			msg = "an open transaction has held a partition this instance writes longer than the brokers let a transaction run: it is likely hanging, and read_committed readers of the partition (a changelog's restore) wait behind it"
		}
		l.log.Warn(msg, "code", diag.TransactionHanging, "topic", topic, "partition", p,
			"last_stable_offset", o.stable, "records_behind", o.end-o.stable, "open_for", age.Round(time.Second),
			"hint", state.HangingTransactionHint)
	}
	return age
}

// keep drops the series of every partition neither in owned nor in written
// (all of them for nil, nil).
func (l *lagTracker) keep(owned, written map[string][]int32) {
	for topic, ps := range l.shown {
		for p := range ps {
			if !slices.Contains(owned[topic], p) && !watches(written, topic, p) {
				l.m.DropLag(topic, p)
				delete(ps, p)
				delete(l.held[topic], p)
			}
		}
		if len(ps) == 0 {
			delete(l.shown, topic)
			delete(l.held, topic)
		}
	}
}

// trackLag runs the lag tracker of Run until ctx ends, with its own client
// (base: brokers, TLS, SASL, logger).
func (e *Engine) trackLag(ctx context.Context, base []kgo.Opt) {
	cl, err := kgo.NewClient(append(slices.Clone(base), kgo.ClientID("veltrix-"+e.cfg.App.ID+"-lag"))...)
	if err != nil {
		e.log.Warn("consumer lag not tracked", "err", err)
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	every := e.lagEvery
	if every <= 0 {
		every = defaultLagInterval
	}
	// A reload keeps the inputs and stores (the topology's shape) but may
	// change the outputs: they are read from the rules in use each time.
	inputs := e.topo.InputTopics()
	var changelogs []string
	for _, s := range e.topo.Stores() {
		changelogs = append(changelogs, s.Changelog)
	}
	outputs := func() []string {
		var out []string
		for _, t := range e.Rules().OutputTopics() {
			if !slices.Contains(inputs, t) {
				out = append(out, t)
			}
		}
		return out
	}
	l := &lagTracker{m: e.metrics, owned: e.ownedInputs, every: every, now: e.now, log: e.log,
		hangingAfter: hangingAfter(e.maxTxnTimeout),
		offsets: func(ctx context.Context, owned, written map[string][]int32) (map[string]map[int32]partitionOffsets, map[string]map[int32]partitionOffsets, error) {
			return clusterOffsets(ctx, adm, e.cfg.App.ID, owned, written)
		},
		written: func(owned map[string][]int32) map[string][]int32 {
			return writtenPartitions(outputs(), changelogs, owned)
		}}
	l.run(ctx)
}

// writtenPartitions returns the partitions an instance writes and no rule
// reads, whose open transactions it watches: every partition (a nil list)
// of the output and DLQ topics, and the partitions of its tasks (the
// partition numbers of the owned input partitions) of each changelog.
func writtenPartitions(outputs, changelogs []string, owned map[string][]int32) map[string][]int32 {
	out := make(map[string][]int32, len(outputs)+len(changelogs))
	for _, t := range outputs {
		out[t] = nil
	}
	var tasks []int32
	for _, ps := range owned {
		tasks = append(tasks, ps...)
	}
	if len(tasks) == 0 {
		return out
	}
	slices.Sort(tasks)
	tasks = slices.Compact(tasks)
	for _, t := range changelogs {
		out[t] = tasks
	}
	return out
}

// ownedInputs returns the input partitions this instance holds now.
func (e *Engine) ownedInputs() map[string][]int32 {
	ts := e.tasks.Load()
	if ts == nil {
		return nil
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	out := make(map[string][]int32, len(ts.held))
	for topic, ps := range ts.held {
		for p, held := range ps {
			if held {
				out[topic] = append(out[topic], p)
			}
		}
	}
	return out
}

// clusterOffsets reads the last stable and end offsets of the owned and
// written partitions' topics, and the group's committed offsets of the
// owned ones, each with one request. It returns the owned partitions'
// offsets with the lag: stable - committed (stable - log start before the
// first commit; never below 0); and the written topics' offsets.
func clusterOffsets(ctx context.Context, adm *kadm.Client, group string, owned, written map[string][]int32) (inputs, outputs map[string]map[int32]partitionOffsets, _ error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	topics := append(slices.Collect(maps.Keys(owned)), slices.Collect(maps.Keys(written))...)
	slices.Sort(topics)
	all, err := topicOffsets(ctx, adm, slices.Compact(topics))
	if err != nil {
		return nil, nil, err
	}
	outputs = map[string]map[int32]partitionOffsets{}
	for t := range written {
		if ps, ok := all[t]; ok {
			outputs[t] = ps
		}
	}
	if len(owned) == 0 {
		return nil, outputs, nil
	}
	inputTopics := slices.Sorted(maps.Keys(owned))
	committed, err := adm.FetchOffsetsForTopics(ctx, group, inputTopics...)
	if err != nil {
		return nil, nil, fmt.Errorf("fetch committed offsets: %w", err)
	}
	var starts kadm.ListedOffsets
	inputs = map[string]map[int32]partitionOffsets{}
	for topic, ps := range owned {
		for _, p := range ps {
			o, ok := all[topic][p]
			if !ok {
				continue
			}
			pos := int64(-1)
			if c, ok := committed.Lookup(topic, p); ok && c.Err == nil {
				pos = c.At
			}
			if pos < 0 {
				if starts == nil {
					if starts, err = adm.ListStartOffsets(ctx, inputTopics...); err != nil {
						return nil, nil, fmt.Errorf("list start offsets: %w", err)
					}
				}
				s, ok := starts.Lookup(topic, p)
				if !ok || s.Err != nil {
					continue
				}
				pos = s.Offset
			}
			if inputs[topic] == nil {
				inputs[topic] = map[int32]partitionOffsets{}
			}
			o.lag = max(o.stable-pos, 0)
			inputs[topic][p] = o
		}
	}
	return inputs, outputs, nil
}

// topicOffsets reads the last stable and end offsets of every partition of
// topics, with one request each; partitions whose last stable offset could
// not be read are left out.
func topicOffsets(ctx context.Context, adm *kadm.Client, topics []string) (map[string]map[int32]partitionOffsets, error) {
	stables, err := adm.ListCommittedOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list last stable offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list end offsets: %w", err)
	}
	out := map[string]map[int32]partitionOffsets{}
	stables.Each(func(stable kadm.ListedOffset) {
		if stable.Err != nil || stable.Offset < 0 {
			return
		}
		end := stable.Offset
		if e, ok := ends.Lookup(stable.Topic, stable.Partition); ok && e.Err == nil {
			end = e.Offset
		}
		if out[stable.Topic] == nil {
			out[stable.Topic] = map[int32]partitionOffsets{}
		}
		out[stable.Topic][stable.Partition] = partitionOffsets{stable: stable.Offset, end: end}
	})
	return out, nil
}
