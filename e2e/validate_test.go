package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// validate --brokers checks the topology against the cluster, read-only:
// a missing input topic (VX4001) and a transaction timeout above the
// brokers' maximum (VX4006) fail with exit 2; a good configuration passes
// and creates nothing.
func TestValidateBrokers(t *testing.T) {
	brokers := startBroker(t, "orders")
	good := writeConfig(t, brokers, t.TempDir())
	missingInput := writeAppConfig(t, "e2e", brokers, t.TempDir(), `
  - name: pay
    from: payments
    steps:
      - to: payments.out
`)
	longTxn := writeConfig(t, brokers, t.TempDir())
	b, err := os.ReadFile(longTxn)
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.Replace(string(b), "  commit_interval: 100ms", "  commit_interval: 100ms\n  transaction_timeout: 20m", 1))
	if err := os.WriteFile(longTxn, b, 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, cfg string
		code      int
		want      string
	}{
		{"valid", good, 0, ""},
		{"missing input", missingInput, 2, `VX4001 rules[0].from: input topic "payments" does not exist`},
		{"transaction timeout", longTxn, 2, "VX4006 processing.transaction_timeout"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, veltrixBin, "validate", "-c", tc.cfg, "--brokers").CombinedOutput()
		cancel()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code || !strings.Contains(string(out), tc.want) {
			t.Errorf("%s: exit %d, want %d with %q:\n%s", tc.name, code, tc.code, tc.want, out)
		}
	}
	// Read-only: the outputs validate found missing were not created.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "kcat", "-L", "-b", brokers).CombinedOutput()
	if err != nil {
		t.Fatalf("kcat -L: %v\n%s", err, out)
	}
	if strings.Contains(string(out), `"orders.high-value"`) || strings.Contains(string(out), `"payments.out"`) {
		t.Errorf("validate created output topics:\n%s", out)
	}
}
