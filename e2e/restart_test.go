package e2e

import (
	"os"
	"path/filepath"
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
	rewriteConfig(t, cfg, "session_timeout: 6s", "session_timeout: 40s", "rebalance_timeout: 10s", "rebalance_timeout: 40s")
	kcatProduce(t, brokers, "orders", lines[:2_000])
	p := start(t, "run", "-c", cfg)
	kcatReadCommitted(t, brokers, 1, time.Minute, "orders.high-value")
	p.kill()

	// Well inside the old session: a restart that waited for it would
	// not be done.
	restartAndReadAll(t, brokers, cfg, lines[2_000:], want, "(old session 40 s)")
}

// restartAndReadAll starts veltrix again, produces the rest of the input and
// reads every output read_committed within 20 s of the restart; the outputs
// must be exactly once.
func restartAndReadAll(t *testing.T, brokers, cfg string, rest []string, want map[string]float64, why string) {
	t.Helper()
	restarted := time.Now()
	p := start(t, "run", "-c", cfg)
	kcatProduce(t, brokers, "orders", rest)
	got := kcatReadCommitted(t, brokers, len(want), 20*time.Second, "orders.high-value")
	took := time.Since(restarted)
	p.stop(t)
	checkOutputs(t, got, want)
	t.Logf("all outputs %s after the restart %s", took.Round(100*time.Millisecond), why)
}

// An instance killed with kill -9 inside an open transaction and started
// again without its state dir (a lost disk, an emptyDir volume) ends that
// transaction at once: its transactional id follows its group instance id,
// not a file in the state dir. A new id would leave the dead transaction
// open until processing.transaction_timeout (60 s here), and every
// read_committed reader of its partitions, the restarted instance's own
// outputs included, would wait for it.
func TestRestartWithoutStateEndsTheDeadTransaction(t *testing.T) {
	brokers := startBroker(t, "orders")
	lines, want := events(2_000)
	state := filepath.Join(t.TempDir(), "state")
	cfg := writeConfig(t, brokers, state)
	// The first run keeps its transaction open: it is killed inside it.
	rewriteConfig(t, cfg, "commit_interval: 100ms", "commit_interval: 50s\n  transaction_timeout: 60s")
	kcatProduce(t, brokers, "orders", lines[:1_000])
	p := start(t, "run", "-c", cfg)
	if got := kcatRead(t, brokers, "read_uncommitted", 1, time.Minute, "orders.high-value"); len(got) == 0 {
		t.Fatal("no output written inside the first run's transaction")
	}
	if got := kcatReadCommitted(t, brokers, 1, 0, "orders.high-value"); len(got) != 0 {
		t.Fatalf("%d outputs committed before the kill; the transaction should still be open", len(got))
	}
	p.kill()

	// The same state dir path (so the same member), without its contents.
	if err := os.RemoveAll(state); err != nil {
		t.Fatal(err)
	}
	rewriteConfig(t, cfg, "commit_interval: 50s", "commit_interval: 100ms")
	// Well inside the dead transaction's 60 s timeout.
	restartAndReadAll(t, brokers, cfg, lines[1_000:], want, "without state (dead transaction's timeout 60 s)")
}
