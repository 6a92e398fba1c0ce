package e2e

import (
	"os"
	"strings"
	"testing"
	"time"
)

// An instance killed with kill -9 and started again at once (same state dir)
// gets its partitions back at once, through static group membership: it
// does not wait out its old session (40 s here), and the outputs stay exactly
// once.
func TestRestartAfterKillResumesAtOnce(t *testing.T) {
	brokers := startBroker(t, "orders")
	lines, want := events(4_000)
	cfg := writeConfig(t, brokers, t.TempDir())
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.NewReplacer("session_timeout: 6s", "session_timeout: 40s", "rebalance_timeout: 10s", "rebalance_timeout: 40s").Replace(string(b)))
	if err := os.WriteFile(cfg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	kcatProduce(t, brokers, "orders", lines[:2_000])
	p := start(t, "run", "-c", cfg)
	kcatReadCommitted(t, brokers, 1, time.Minute, "orders.high-value")
	p.kill()

	restarted := time.Now()
	p = start(t, "run", "-c", cfg)
	kcatProduce(t, brokers, "orders", lines[2_000:])
	// Well inside the old session: a restart that waited for it would
	// not be done.
	got := kcatReadCommitted(t, brokers, len(want), 20*time.Second, "orders.high-value")
	took := time.Since(restarted)
	p.stop(t)
	checkOutputs(t, got, want)
	t.Logf("all outputs %s after the restart (old session 40 s)", took.Round(100*time.Millisecond))
}
