package engine

import (
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/pkg/metrics"
	"github.com/veltrix/veltrix/topology"
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
