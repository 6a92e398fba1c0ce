package engine

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/veltrix/veltrix/internal/metrics"
)

// fakeCluster is what the lag tracker reads: the owned partitions (changed
// by the test as a rebalance would) and each partition's lag.
type fakeCluster struct {
	mu     sync.Mutex
	owned  map[string][]int32
	lags   map[string]map[int32]int64
	err    error
	during func() // runs inside the offsets request
	asked  int
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

func (f *fakeCluster) lag(_ context.Context, owned map[string][]int32) (map[string]map[int32]int64, error) {
	f.mu.Lock()
	during := f.during
	f.asked++
	out := map[string]map[int32]int64{}
	for topic, ps := range owned {
		for _, p := range ps {
			if v, ok := f.lags[topic][p]; ok {
				if out[topic] == nil {
					out[topic] = map[int32]int64{}
				}
				out[topic][p] = v
			}
		}
	}
	err := f.err
	f.mu.Unlock()
	if during != nil {
		during()
	}
	return out, err
}

// lagSeries returns the consumer lag series as "topic/partition" -> value.
func lagSeries(t *testing.T, m *metrics.Metrics) map[string]float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 64)
	m.ConsumerLag.Collect(ch)
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

// waitSeries waits until the lag series are exactly want.
func waitSeries(t *testing.T, m *metrics.Metrics, want map[string]float64, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := lagSeries(t, m)
		if maps.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: lag series %v, want %v", what, got, want)
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
	l := &lagTracker{m: m, owned: f.ownedNow, lag: f.lag, every: 20 * time.Millisecond}
	go func() { l.run(ctx); close(done) }()

	// Every owned partition has a series, idle ones (lag 0) included; a
	// partition not owned (orders/2) has none.
	waitSeries(t, m, map[string]float64{"orders/0": 5, "orders/1": 0, "payments/0": 3}, "owned partitions")

	// Computed periodically, not only when records arrive.
	f.set(map[string][]int32{"orders": {0, 1}, "payments": {0}},
		map[string]map[int32]int64{"orders": {0: 0, 1: 7}, "payments": {0: 3}})
	waitSeries(t, m, map[string]float64{"orders/0": 0, "orders/1": 7, "payments/0": 3}, "the next interval")

	// A revoked partition's series goes; an assigned one appears.
	f.set(map[string][]int32{"orders": {1, 2}}, map[string]map[int32]int64{"orders": {0: 4, 1: 7, 2: 9}})
	waitSeries(t, m, map[string]float64{"orders/1": 7, "orders/2": 9}, "after a rebalance")

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
	waitSeries(t, m, map[string]float64{"orders/1": 7, "orders/2": 9}, "after a failed request")

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
	waitSeries(t, m, map[string]float64{"orders/2": 100}, "revoked during the request")

	// Run returns: no series left.
	cancel()
	<-done
	if got := testutil.CollectAndCount(m.ConsumerLag); got != 0 {
		t.Errorf("%d lag series after the tracker stopped, want 0", got)
	}
}
