package engine_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/engine"
	"github.com/veltrix/veltrix/internal/metrics"
)

// TestNearlyFullStateDiskPausesProcessing: when the state directory's file
// system falls below app.state_min_free_bytes, the engine finishes what it
// has, then consumes, writes and commits nothing and is not ready, and
// carries on once there is room, every record exactly once (at least once
// under at_least_once: no record is lost, and here none is repeated).
func TestNearlyFullStateDiskPausesProcessing(t *testing.T) {
	for _, guarantee := range []string{"exactly_once", "at_least_once"} {
		t.Run(guarantee, func(t *testing.T) {
			brokers := newCluster(t, "orders", "orders.copy")
			cfg, topo := loadTopology(t, brokers, guarantee, `rules:
  - name: copy
    from: orders
    steps:
      - to: orders.copy
`)
			var free, checks atomic.Int64
			free.Store(1 << 40)
			m := metrics.New(prometheus.NewRegistry())
			eng := engine.New(cfg, topo, engine.WithMetrics(m), engine.WithDiskFree(func(dir string) (int64, error) {
				if dir != cfg.App.StateDir {
					return 0, fmt.Errorf("asked for %s, not the state dir", dir)
				}
				checks.Add(1)
				return free.Load(), nil
			}))
			r := start(eng)
			defer r.stop()

			batch := func(from int) []*kgo.Record {
				var recs []*kgo.Record
				for i := from; i < from+10; i++ {
					recs = append(recs, &kgo.Record{Topic: "orders", Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf(`{"n":%d}`, i))})
				}
				return recs
			}
			produce(t, brokers, batch(0))
			if got := readCommitted(t, r, brokers, 10, time.Minute, "orders.copy"); len(got) != 10 {
				t.Fatalf("%d outputs with room on the disk, want 10", len(got))
			}

			free.Store(1 << 20) // 1 MiB, below the default 64 MiB
			waitFor(t, r, "the engine to pause", func() bool { return !eng.Ready() })
			before := eng.Stats()
			produce(t, brokers, batch(10))
			c := checks.Load()
			waitFor(t, r, "three more disk checks", func() bool { return checks.Load() >= c+3 })
			if after := eng.Stats(); after.Consumed != before.Consumed || after.Committed != before.Committed {
				t.Errorf("while paused: consumed %d -> %d, committed %d -> %d; want no change", before.Consumed, after.Consumed, before.Committed, after.Committed)
			}
			if eng.Ready() {
				t.Error("ready while the disk is nearly full")
			}
			if got := testutil.ToFloat64(m.StateDiskFree); got != 1<<20 {
				t.Errorf("veltrix_state_disk_free_bytes = %v, want %d", got, 1<<20)
			}

			free.Store(1 << 40)
			waitFor(t, r, "the engine to be ready again", eng.Ready)
			got := readCommitted(t, r, brokers, 20, time.Minute, "orders.copy")
			seen := map[string]int{}
			for _, rec := range got {
				seen[string(rec.Key)]++
			}
			for i := range 20 {
				if n := seen[fmt.Sprint(i)]; n != 1 {
					t.Errorf("record %d output %d times, want once", i, n)
				}
			}
		})
	}
}

// waitFor waits (at most a minute) until cond holds, failing when the
// engine stops.
func waitFor(t *testing.T, r *running, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if err := r.failed(); err != nil {
			t.Fatalf("engine stopped while waiting for %s: %v", what, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within a minute", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
