package engine_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/veltrix/veltrix/internal/engine"
	"github.com/veltrix/veltrix/internal/testbroker"
)

// An instance the group gives no partition (more instances than
// partitions) is ready: a rolling deploy waiting for its readiness must not
// stall.
func TestInstanceWithoutPartitionsIsReady(t *testing.T) {
	b := testbroker.New(t, testbroker.WithTopics(1, "orders"),
		testbroker.WithFake(kfake.GroupMinSessionTimeout(100*time.Millisecond)))
	addr := b.Addr()
	rules := `rules:
  - name: copy
    from: orders
    steps:
      - to: orders.copy
`
	cfgA, topoA := loadTopology(t, addr, "exactly_once", rules)
	a := engine.New(cfgA, topoA)
	ra := start(a)
	defer ra.stop()
	waitReady(t, a, ra, "the instance with the partition")
	cfgB, topoB := loadTopology(t, addr, "exactly_once", rules)
	bEng := engine.New(cfgB, topoB)
	rb := start(bEng)
	defer rb.stop()
	waitReady(t, bEng, rb, "the instance without partitions")
	if !a.Ready() {
		t.Errorf("the first instance is no longer ready")
	}
}

func waitReady(t *testing.T, e *engine.Engine, r *running, who string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !e.Ready() {
		if err := r.failed(); err != nil {
			t.Fatalf("%s stopped: %v", who, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after a minute", who)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
