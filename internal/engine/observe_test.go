package engine

import (
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/metrics"
	"github.com/veltrix/veltrix/internal/topology"
	"github.com/veltrix/veltrix/pkg/diag"
)

// fetchOf builds a poll's fetches: one partition per count, records
// numbered on from *next (their timestamp is their number in seconds).
func fetchOf(next *int, counts ...int) kgo.Fetches {
	var ps []kgo.FetchPartition
	for p, n := range counts {
		var recs []*kgo.Record
		for range n {
			recs = append(recs, &kgo.Record{Timestamp: time.Unix(int64(*next), 0)})
			*next++
		}
		ps = append(ps, kgo.FetchPartition{Partition: int32(p), Records: recs})
	}
	return kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: "t", Partitions: ps}}}}
}

func TestLatencySamplerTakesEveryNth(t *testing.T) {
	var s latencySampler
	next := 0
	s.add(fetchOf(&next, 100, 30))
	s.add(fetchOf(&next, 0, 70, 1))
	var got []int64
	for _, ts := range s.ts {
		got = append(got, ts.Unix())
	}
	if want := []int64{0, 64, 128, 192}; !slices.Equal(got, want) {
		t.Errorf("sampled %v, want %v", got, want)
	}
	s.reset()
	if s.n != 0 || len(s.ts) != 0 {
		t.Errorf("reset left %d, %v", s.n, s.ts)
	}
}

// TestOutcomesMatchMetrics checks the shared observer and a task's
// (which counts locally until flush) against the metrics they report.
func TestOutcomesMatchMetrics(t *testing.T) {
	for _, perTask := range []bool{false, true} {
		m := metrics.New(prometheus.NewRegistry())
		var o topology.Observer = newOutcomes(m)
		flush := func() {}
		if perTask {
			to := &taskOutcomes{c: newOutcomes(m)}
			o, flush = to, to.flush
		}
		o.Outcome("r", topology.OutcomeMatched, "", time.Millisecond)
		o.Outcome("r", topology.OutcomeMatched, "", 0)
		o.Outcome("r", topology.OutcomeDLQ, diag.MissingField, 0)
		o.Outcome("s", topology.OutcomeFiltered, "", 0)
		o.Outcome("s", topology.Outcome("other"), "", 0)
		flush()
		flush() // a second flush adds nothing
		checkOutcomeMetrics(t, m)
	}
}

func checkOutcomeMetrics(t *testing.T, m *metrics.Metrics) {
	t.Helper()
	for _, c := range []struct {
		rule, outcome string
		want          float64
	}{{"r", "matched", 2}, {"r", "dlq", 1}, {"r", "error", 0}, {"s", "filtered", 1}, {"s", "other", 1}} {
		if got := testutil.ToFloat64(m.RuleRecords.WithLabelValues(c.rule, c.outcome)); got != c.want {
			t.Errorf("rule_records_total{%s,%s} = %v, want %v", c.rule, c.outcome, got, c.want)
		}
	}
	if got := testutil.ToFloat64(m.EventErrors.WithLabelValues("r", string(diag.MissingField))); got != 1 {
		t.Errorf("event_errors_total = %v", got)
	}
	for rule, want := range map[string]uint64{"r": 1, "s": 0} {
		var d dto.Metric
		if err := m.ProcessingLatency.WithLabelValues(rule).(prometheus.Histogram).Write(&d); err != nil {
			t.Fatal(err)
		}
		if got := d.GetHistogram().GetSampleCount(); got != want {
			t.Errorf("processing_latency_seconds{%s} count = %d, want %d", rule, got, want)
		}
	}
}

func TestCountersCacheChildren(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry())
	var c counters
	c.vec = m.RecordsProduced
	c.get("a").Inc()
	c.get("a").Inc()
	if got := testutil.ToFloat64(m.RecordsProduced.WithLabelValues("a")); got != 2 {
		t.Errorf("records_produced_total{a} = %v", got)
	}
}
