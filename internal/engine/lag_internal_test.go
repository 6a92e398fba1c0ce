package engine

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/veltrix/veltrix/internal/metrics"
	"github.com/veltrix/veltrix/internal/testlog"
	"github.com/veltrix/veltrix/pkg/diag"
)

// fakeCluster is what the lag tracker reads: the owned partitions (changed
// by the test as a rebalance would) and each partition's lag.
type fakeCluster struct {
	mu    sync.Mutex
	owned map[string][]int32
	lags  map[string]map[int32]int64
	// txns are partitions with records behind an open transaction: their
	// last stable and end offsets.
	txns   map[string]map[int32]partitionOffsets
	err    error
	during func() // runs inside the offsets request
	asked  int
	// ends are the last stable and end offsets of the written topics'
	// partitions.
	ends map[string]map[int32]partitionOffsets
}

func (f *fakeCluster) ownedNow() map[string][]int32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.owned)
}

func (f *fakeCluster) set(owned map[string][]int32, lags map[string]map[int32]int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.owned, f.lags = owned, lags
}

func (f *fakeCluster) offsets(_ context.Context, owned, written map[string][]int32) (map[string]map[int32]partitionOffsets, map[string]map[int32]partitionOffsets, error) {
	f.mu.Lock()
	during := f.during
	f.asked++
	outputs := map[string]map[int32]partitionOffsets{}
	for topic := range written {
		if ps, ok := f.ends[topic]; ok {
			outputs[topic] = maps.Clone(ps)
		}
	}
	out := map[string]map[int32]partitionOffsets{}
	for topic, ps := range owned {
		for _, p := range ps {
			if v, ok := f.lags[topic][p]; ok {
				if out[topic] == nil {
					out[topic] = map[int32]partitionOffsets{}
				}
				o := f.txns[topic][p]
				o.lag = v
				out[topic][p] = o
			}
		}
	}
	err := f.err
	f.mu.Unlock()
	if during != nil {
		during()
	}
	return out, outputs, err
}

// gaugeSeries returns the series of a per-partition gauge as
// "topic/partition" -> value.
func gaugeSeries(t *testing.T, g *prometheus.GaugeVec) map[string]float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 64)
	g.Collect(ch)
	close(ch)
	out := map[string]float64{}
	for pm := range ch {
		var d dto.Metric
		if err := pm.Write(&d); err != nil {
			t.Fatal(err)
		}
		labels := map[string]string{}
		for _, l := range d.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		out[labels["topic"]+"/"+labels["partition"]] = d.GetGauge().GetValue()
	}
	return out
}

// waitSeries waits until the series of g are exactly want.
func waitSeries(t *testing.T, g *prometheus.GaugeVec, want map[string]float64, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := gaugeSeries(t, g)
		if maps.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: series %v, want %v", what, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLagTracker(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry())
	f := &fakeCluster{}
	f.set(map[string][]int32{"orders": {0, 1}, "payments": {0}},
		map[string]map[int32]int64{"orders": {0: 5, 1: 0, 2: 9}, "payments": {0: 3}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	l := &lagTracker{m: m, owned: f.ownedNow, offsets: f.offsets, every: 20 * time.Millisecond, now: time.Now}
	go func() { l.run(ctx); close(done) }()

	// Every owned partition has a series, idle ones (lag 0) included; a
	// partition not owned (orders/2) has none.
	waitSeries(t, m.ConsumerLag, map[string]float64{"orders/0": 5, "orders/1": 0, "payments/0": 3}, "owned partitions")

	// Computed periodically, not only when records arrive.
	f.set(map[string][]int32{"orders": {0, 1}, "payments": {0}},
		map[string]map[int32]int64{"orders": {0: 0, 1: 7}, "payments": {0: 3}})
	waitSeries(t, m.ConsumerLag, map[string]float64{"orders/0": 0, "orders/1": 7, "payments/0": 3}, "the next interval")

	// A revoked partition's series goes; an assigned one appears.
	f.set(map[string][]int32{"orders": {1, 2}}, map[string]map[int32]int64{"orders": {0: 4, 1: 7, 2: 9}})
	waitSeries(t, m.ConsumerLag, map[string]float64{"orders/1": 7, "orders/2": 9}, "after a rebalance")

	// A failed request keeps the last values.
	f.mu.Lock()
	f.err, f.lags = errors.New("broker gone"), map[string]map[int32]int64{"orders": {1: 100, 2: 100}}
	asked := f.asked
	f.mu.Unlock()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		f.mu.Lock()
		n := f.asked
		f.mu.Unlock()
		if n >= asked+2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no request after the failure")
		}
	}
	waitSeries(t, m.ConsumerLag, map[string]float64{"orders/1": 7, "orders/2": 9}, "after a failed request")

	// A revocation while the request is out: the answer does not bring the
	// revoked partition's series back.
	f.mu.Lock()
	f.err = nil
	f.during = func() {
		f.mu.Lock()
		f.owned = map[string][]int32{"orders": {2}}
		f.mu.Unlock()
	}
	f.mu.Unlock()
	waitSeries(t, m.ConsumerLag, map[string]float64{"orders/2": 100}, "revoked during the request")

	// Run returns: no series left.
	cancel()
	<-done
	if got := testutil.CollectAndCount(m.ConsumerLag); got != 0 {
		t.Errorf("%d lag series after the tracker stopped, want 0", got)
	}
	if got := testutil.CollectAndCount(m.OpenTransaction); got != 0 {
		t.Errorf("%d open transaction series after the tracker stopped, want 0", got)
	}
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// hangingLogged counts the VX4008 lines in logs.
func hangingLogged(logs *testlog.Buffer) int {
	return strings.Count(logs.String(), "code="+string(diag.TransactionHanging))
}

// Records behind an open transaction are not lag (read_committed cannot
// read them): veltrix_open_transaction_age_seconds says how long the
// transaction has held the partition's last stable offset, from 0 again
// when the offset moves (that transaction ended, another is open) and 0
// when no record is behind it; past hangingAfter the transaction is logged
// as hanging, once (VX4008).
func TestOpenTransactionAge(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry())
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	logs := &testlog.Buffer{}
	f := &fakeCluster{}
	owned := map[string][]int32{"orders": {0, 1}}
	lags := map[string]map[int32]int64{"orders": {0: 0, 1: 2}}
	open := func(stable, end int64) map[string]map[int32]partitionOffsets {
		return map[string]map[int32]partitionOffsets{"orders": {0: {stable: stable, end: end}, 1: {stable: 40, end: 40}}}
	}
	f.set(owned, lags)
	f.txns = open(10, 15)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	l := &lagTracker{m: m, owned: f.ownedNow, offsets: f.offsets, every: 10 * time.Millisecond, now: clock.now,
		log: slog.New(slog.NewTextHandler(logs, nil)), hangingAfter: time.Minute}
	go func() { l.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	waitSeries(t, m.OpenTransaction, map[string]float64{"orders/0": 0, "orders/1": 0}, "first seen")
	waitSeries(t, m.ConsumerLag, map[string]float64{"orders/0": 0, "orders/1": 2}, "lag, records behind the transaction not counted")
	clock.add(30 * time.Second)
	waitSeries(t, m.OpenTransaction, map[string]float64{"orders/0": 30, "orders/1": 0}, "held 30 s")
	if n := hangingLogged(logs); n != 0 {
		t.Fatalf("VX4008 logged %d times after 30 s, before hangingAfter", n)
	}
	clock.add(31 * time.Second)
	waitSeries(t, m.OpenTransaction, map[string]float64{"orders/0": 61, "orders/1": 0}, "held past hangingAfter")
	clock.add(30 * time.Second)
	waitSeries(t, m.OpenTransaction, map[string]float64{"orders/0": 91, "orders/1": 0}, "still held")
	if n := hangingLogged(logs); n != 1 {
		t.Fatalf("VX4008 logged %d times, want once: %s", n, logs)
	}
	for _, want := range []string{"topic=orders", "partition=0", "last_stable_offset=10", "records_behind=5", "kafka-transactions.sh find-hanging"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the VX4008 line lacks %q: %s", want, logs)
		}
	}

	// The transaction ended and another one is open behind the new
	// offset: its age counts from when the tracker saw it.
	f.mu.Lock()
	f.txns = open(15, 18)
	f.mu.Unlock()
	waitSeries(t, m.OpenTransaction, map[string]float64{"orders/0": 0, "orders/1": 0}, "a new transaction")
	clock.add(10 * time.Second)
	waitSeries(t, m.OpenTransaction, map[string]float64{"orders/0": 10, "orders/1": 0}, "the new transaction held 10 s")

	// Nothing behind the last stable offset: no open transaction.
	f.mu.Lock()
	f.txns = open(18, 18)
	f.mu.Unlock()
	waitSeries(t, m.OpenTransaction, map[string]float64{"orders/0": 0, "orders/1": 0}, "committed")
	if n := hangingLogged(logs); n != 1 {
		t.Errorf("VX4008 logged %d times in all, want once", n)
	}
}

// The partitions an instance writes and does not read are watched for open
// transactions too, without a lag series: every partition of its output and
// DLQ topics, and its tasks' changelog partitions. A hanging transaction
// there holds read_committed readers downstream (or the changelog's next
// restore).
func TestOpenTransactionAgeOfWrittenPartitions(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry())
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	logs := &testlog.Buffer{}
	f := &fakeCluster{
		ends: map[string]map[int32]partitionOffsets{
			"sums":                 {0: {stable: 7, end: 7}, 1: {stable: 3, end: 9}},
			"app.counts-changelog": {0: {stable: 1, end: 4}, 1: {stable: 5, end: 5}},
		},
	}
	f.set(map[string][]int32{"orders": {1}}, map[string]map[int32]int64{"orders": {1: 2}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	written := func(owned map[string][]int32) map[string][]int32 {
		return writtenPartitions([]string{"sums"}, []string{"app.counts-changelog"}, owned)
	}
	l := &lagTracker{m: m, owned: f.ownedNow, offsets: f.offsets, written: written,
		every: 10 * time.Millisecond, now: clock.now, log: slog.New(slog.NewTextHandler(logs, nil)), hangingAfter: time.Minute}
	go func() { l.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	waitSeries(t, m.OpenTransaction, map[string]float64{"orders/1": 0, "sums/0": 0, "sums/1": 0, "app.counts-changelog/1": 0},
		"every output partition and the task's changelog partition, not another task's")
	waitSeries(t, m.ConsumerLag, map[string]float64{"orders/1": 2}, "lag of the input only")
	clock.add(61 * time.Second)
	waitSeries(t, m.OpenTransaction, map[string]float64{"orders/1": 0, "sums/0": 0, "sums/1": 61, "app.counts-changelog/1": 0},
		"an output partition held past hangingAfter")
	// The line is logged before the gauge is set.
	if n := hangingLogged(logs); n != 1 {
		t.Fatalf("VX4008 logged %d times, want once: %s", n, logs)
	}
	for _, want := range []string{"topic=sums", "partition=1", "last_stable_offset=3", "records_behind=6", "read_committed"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the VX4008 line lacks %q: %s", want, logs)
		}
	}

	// The task is revoked: its changelog partition is no longer this
	// instance's to watch; the outputs still are.
	f.set(map[string][]int32{}, nil)
	waitSeries(t, m.OpenTransaction, map[string]float64{"sums/0": 0, "sums/1": 61}, "after the revocation")
	waitSeries(t, m.ConsumerLag, map[string]float64{}, "no input owned")
	if n := hangingLogged(logs); n != 1 {
		t.Errorf("VX4008 logged %d times in all, want once: %s", n, logs)
	}
}

func TestWrittenPartitions(t *testing.T) {
	for _, tc := range []struct {
		name       string
		outputs    []string
		changelogs []string
		owned      map[string][]int32
		want       map[string][]int32
	}{
		{name: "nothing owned: every output partition, no changelog",
			outputs: []string{"sums", "app.dlq"}, changelogs: []string{"app.counts-changelog"},
			want: map[string][]int32{"sums": nil, "app.dlq": nil}},
		{name: "the tasks' changelog partitions, once each",
			outputs: []string{"sums"}, changelogs: []string{"app.counts-changelog", "app.seen-changelog"},
			owned: map[string][]int32{"orders": {2, 0}, "app.r.repartition": {0, 5}},
			want:  map[string][]int32{"sums": nil, "app.counts-changelog": {0, 2, 5}, "app.seen-changelog": {0, 2, 5}}},
		{name: "no outputs, no stores", owned: map[string][]int32{"orders": {1}}, want: map[string][]int32{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := writtenPartitions(tc.outputs, tc.changelogs, tc.owned)
			if !maps.EqualFunc(got, tc.want, func(a, b []int32) bool { return (a == nil) == (b == nil) && slices.Equal(a, b) }) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
