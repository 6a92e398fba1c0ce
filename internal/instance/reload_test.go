package instance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/testbroker"
	"github.com/veltrix/veltrix/internal/topology"
	"github.com/veltrix/veltrix/pkg/diag"
)

// Reload applies a changed threshold and refuses, with its code, a changed
// setting, a changed shape and a configuration with problems, keeping the
// running version each time.
func TestReloadAppliesRuleChangesAndRefusesTheRest(t *testing.T) {
	b := testbroker.New(t, testbroker.WithTopics(6, "orders"))
	dir := t.TempDir()
	path := filepath.Join(dir, "veltrix.yaml")
	write := func(commit, min, sum string) {
		t.Helper()
		yaml := fmt.Sprintf(`app:
  id: reload-app
  state_dir: %s
kafka:
  brokers: [%s]
processing:
  commit_interval: %s
http:
  listen: ""
rules:
  - name: big
    from: orders
    steps:
      - filter: event.total >= %s
      - aggregate: {store: totals, count: true, sum: %s}
      - to: big-totals
`, filepath.Join(dir, "state"), b.Addr(), commit, min, sum)
		if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	load := func() (*config.Config, *topology.Topology, error) {
		cfg, err := config.Load(path, config.WithEnv(func(string) (string, bool) { return "", false }))
		if err != nil {
			return nil, nil, err
		}
		topo, err := topology.Build(cfg)
		return cfg, topo, err
	}
	write("100ms", "10", "event.total")
	cfg, topo, err := load()
	if err != nil {
		t.Fatal(err)
	}
	in := New(cfg, topo, WithLoader(load))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	started := in.Version()

	rctx, rcancel := context.WithTimeout(context.Background(), time.Minute)
	defer rcancel()
	for _, tc := range []struct {
		name             string
		commit, min, sum string
		code             diag.Code // "" when applied
		result           string
		inMessage        string
	}{
		{name: "setting", commit: "200ms", min: "10", sum: "event.total", code: diag.ReloadSettingChanged, result: "refused", inMessage: "processing"},
		{name: "shape", commit: "100ms", min: "10", sum: "event.tax", code: diag.ReloadShapeChanged, result: "refused", inMessage: "store totals"},
		{name: "invalid", commit: "100ms", min: "10 +", sum: "event.total", code: diag.ExprSyntax, result: "invalid"},
		{name: "threshold", commit: "100ms", min: "50", sum: "event.total", result: "applied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := in.Version()
			write(tc.commit, tc.min, tc.sum)
			v, err := in.Reload(rctx)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("reload: %v", err)
				}
				if v == before || v != in.Version() {
					t.Fatalf("version %s after the reload (was %s, Version() %s), want a new one", v, before, in.Version())
				}
			} else {
				list := diag.AsList(err)
				if len(list) == 0 || list[0].Code != tc.code || !strings.Contains(list[0].Message, tc.inMessage) {
					t.Fatalf("reload = %v, want %s mentioning %q", err, tc.code, tc.inMessage)
				}
				if v != before || in.Version() != before {
					t.Fatalf("version %s after a refused reload, want %s", in.Version(), before)
				}
			}
			if n := testutil.ToFloat64(in.metrics.ConfigReloads.WithLabelValues(tc.result)); n < 1 {
				t.Errorf("veltrix_config_reloads_total{result=%q} = %v, want >= 1", tc.result, n)
			}
		})
	}
	if in.Version() == started {
		t.Error("the version did not change with the applied reload")
	}
}
