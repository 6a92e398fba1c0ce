package engine_test

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/engine"
	"github.com/veltrix/veltrix/internal/metrics"
	"github.com/veltrix/veltrix/internal/testbroker"
)

// lagOf returns an instance's veltrix_consumer_lag series of topic by
// partition.
func lagOf(t *testing.T, m *metrics.Metrics, topic string) map[int32]float64 {
	t.Helper()
	return seriesOf(t, m.ConsumerLag, topic)
}

// seriesOf returns the series of a per-partition gauge of topic by
// partition.
func seriesOf(t *testing.T, g *prometheus.GaugeVec, topic string) map[int32]float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 64)
	g.Collect(ch)
	close(ch)
	out := map[int32]float64{}
	for pm := range ch {
		var d dto.Metric
		if err := pm.Write(&d); err != nil {
			t.Fatal(err)
		}
		var tp string
		var p int
		for _, l := range d.GetLabel() {
			switch l.GetName() {
			case "topic":
				tp = l.GetValue()
			case "partition":
				p, _ = strconv.Atoi(l.GetValue())
			}
		}
		if tp == topic {
			out[int32(p)] = d.GetGauge().GetValue()
		}
	}
	return out
}

// veltrix_consumer_lag on a broker: every owned input partition has a
// series, the idle ones (never fetched a record) included, at 0 once the
// input is committed; when a second instance joins, each partition is
// shown by exactly one instance (the first drops the series of the
// partitions it gave away).
func TestConsumerLagFollowsOwnership(t *testing.T) {
	b := testbroker.New(t, testbroker.WithTopics(4, "lag.in"),
		testbroker.WithFake(kfake.GroupMinSessionTimeout(100*time.Millisecond)))
	addr := b.Addr()
	rules := `rules:
  - name: copy
    from: lag.in
    steps:
      - to: lag.out
`
	var recs []*kgo.Record
	for i := range 20 {
		recs = append(recs, &kgo.Record{Topic: "lag.in", Partition: 0, Value: []byte(`{"n":` + strconv.Itoa(i) + `}`)})
	}
	produce(t, addr, recs)

	newInstance := func() (*engine.Engine, *metrics.Metrics) {
		cfg, topo := loadTopology(t, addr, "exactly_once", rules)
		m := metrics.New(prometheus.NewRegistry())
		return engine.New(cfg, topo, engine.WithMetrics(m), engine.WithLagInterval(100*time.Millisecond)), m
	}
	wait := func(what string, r []*running, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for !ok() {
			for _, run := range r {
				if err := run.failed(); err != nil {
					t.Fatalf("%s: an instance stopped: %v", what, err)
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not reached within a minute", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	a, ma := newInstance()
	ra := start(a)
	defer ra.stop()
	all := map[int32]float64{0: 0, 1: 0, 2: 0, 3: 0}
	wait("one instance shows lag 0 for all four partitions", []*running{ra}, func() bool {
		return maps.Equal(lagOf(t, ma, "lag.in"), all)
	})

	bEng, mb := newInstance()
	rb := start(bEng)
	defer rb.stop()
	var la, lb map[int32]float64
	wait("two instances show disjoint series covering the four partitions", []*running{ra, rb}, func() bool {
		la, lb = lagOf(t, ma, "lag.in"), lagOf(t, mb, "lag.in")
		if len(la) == 0 || len(lb) == 0 || len(la)+len(lb) != 4 {
			return false
		}
		union := maps.Clone(la)
		maps.Copy(union, lb)
		return maps.Equal(union, all)
	})
	if ok, reason := a.Live(); !ok {
		t.Errorf("a running instance is not live: %s", reason)
	}
	t.Logf("instance a shows %v, b shows %v", slices.Sorted(maps.Keys(la)), slices.Sorted(maps.Keys(lb)))

	// The second instance stops: the first takes every partition back.
	if err := rb.stop(); err != nil {
		t.Fatal(err)
	}
	wait("the remaining instance shows all four partitions again", []*running{ra}, func() bool {
		return maps.Equal(lagOf(t, ma, "lag.in"), all)
	})
	if n := len(lagOf(t, mb, "lag.in")); n != 0 {
		t.Errorf("the stopped instance still shows %d lag series", n)
	}
}

// openTxnAge returns an instance's veltrix_open_transaction_age_seconds of
// one partition (-1: no series).
func openTxnAge(t *testing.T, m *metrics.Metrics, topic string, partition int32) float64 {
	t.Helper()
	if v, ok := seriesOf(t, m.OpenTransaction, topic)[partition]; ok {
		return v
	}
	return -1
}

// Another producer's transaction held open on an input partition and an
// output partition, on a broker: the record behind it is not processed
// (read_committed), the consumer lag does not count it, and
// veltrix_open_transaction_age_seconds of both partitions grows while the
// transaction stays open; once it commits, the record is processed and the
// ages are back at 0.
func TestOpenTransactionAgeOnABroker(t *testing.T) {
	addr := newCluster(t, "held.in")
	rules := `rules:
  - name: copy
    from: held.in
    steps:
      - to: held.out
`
	produce(t, addr, []*kgo.Record{{Topic: "held.in", Partition: 0, Value: []byte(`{"n":0}`)}})
	cfg, topo := loadTopology(t, addr, "exactly_once", rules)
	m := metrics.New(prometheus.NewRegistry())
	r := start(engine.New(cfg, topo, engine.WithMetrics(m), engine.WithLagInterval(100*time.Millisecond)))
	defer r.stop()
	if got := readCommitted(t, r, addr, 1, time.Minute, "held.out"); len(got) != 1 {
		t.Fatalf("%d outputs of the first record, want 1", len(got))
	}

	txn, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID("held-"+t.Name()),
		kgo.TransactionTimeout(time.Minute), kgo.DefaultProduceTopic("held.in"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte(`{"n":1}`)},
		&kgo.Record{Topic: "held.out", Partition: 0, Value: []byte(`{"other":true}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	wait := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); !ok(); time.Sleep(20 * time.Millisecond) {
			if err := r.failed(); err != nil {
				t.Fatalf("%s: the instance stopped: %v", what, err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within a minute (age %v, lag %v)", what, openTxnAge(t, m, "held.in", 0), lagOf(t, m, "held.in"))
			}
		}
	}
	wait("the age of the open transaction passes 1 s", func() bool { return openTxnAge(t, m, "held.in", 0) >= 1 })
	wait("the output partition's age passes 1 s", func() bool { return openTxnAge(t, m, "held.out", 0) >= 1 })
	if lag := lagOf(t, m, "held.in")[0]; lag != 0 {
		t.Errorf("consumer lag %v while the only record waiting is behind an open transaction, want 0", lag)
	}
	if got := readCommitted(t, r, addr, 2, 500*time.Millisecond, "held.out"); len(got) != 1 {
		t.Errorf("%d outputs while the second record's transaction is open, want 1", len(got))
	}

	if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if got := readCommitted(t, r, addr, 3, time.Minute, "held.out"); len(got) != 3 {
		t.Fatalf("%d records in held.out after the commit, want 3 (two outputs, the other producer's record)", len(got))
	}
	wait("the ages are 0 after the commit", func() bool {
		return openTxnAge(t, m, "held.in", 0) == 0 && openTxnAge(t, m, "held.out", 0) == 0
	})
}

// Output topics a reload adds are watched for open transactions from then
// on, on every partition, and those it drops are not.
func TestReloadedOutputsAreWatched(t *testing.T) {
	addr := newCluster(t, "watch.in")
	rules := func(out string) string {
		return `rules:
  - name: copy
    from: watch.in
    steps:
      - to: ` + out + "\n"
	}
	cfg, topo := loadTopology(t, addr, "exactly_once", rules("watch.a"))
	m := metrics.New(prometheus.NewRegistry())
	eng := engine.New(cfg, topo, engine.WithMetrics(m), engine.WithLagInterval(50*time.Millisecond))
	r := start(eng)
	defer r.stop()
	watched := func(topic string) int { return len(seriesOf(t, m.OpenTransaction, topic)) }
	waitFor(t, r, "open transaction age series of every partition of the output", func() bool { return watched("watch.a") == 6 })

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, next := loadTopology(t, addr, "exactly_once", rules("watch.b"))
	if err := eng.Reload(ctx, next); err != nil {
		t.Fatalf("reload: %v", err)
	}
	waitFor(t, r, "series of the new output's partitions and none of the old one's", func() bool {
		return watched("watch.b") == 6 && watched("watch.a") == 0
	})
}
