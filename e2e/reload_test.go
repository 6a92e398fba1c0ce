package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A threshold changed in the file applies on SIGHUP without a restart: the
// aggregate behind it keeps its totals, and the outputs, read with kcat
// (read_committed), are exactly once. A change of the aggregation is
// refused (VX6002) and the running rules stay.
func TestReloadOnSIGHUPKeepsState(t *testing.T) {
	brokers := startBroker(t, "payments")
	rules := func(min int, sum string) string {
		return fmt.Sprintf(`
  - name: big-payments
    from: payments
    steps:
      - filter: event.amount >= %d
      - aggregate: {store: totals, count: true, sum: %s}
      - to: payments.totals
`, min, sum)
	}
	path := writeAppConfig(t, "e2e-reload", brokers, t.TempDir(), rules(50, "event.amount"))
	p := start(t, "run", "-c", path)
	addr := p.httpAddr(t)

	// Amounts 0..99 for 20 accounts, twice: the first batch counted from
	// 50 up, the second from 20 up.
	batch := func() []string {
		var lines []string
		for i := range 100 {
			lines = append(lines, fmt.Sprintf("acct-%02d\t{\"amount\":%d}", i%20, i))
		}
		return lines
	}
	want := map[string][2]int{}
	add := func(min int) (n int) {
		for i := range 100 {
			if i >= min {
				k := fmt.Sprintf("acct-%02d", i%20)
				w := want[k]
				want[k] = [2]int{w[0] + 1, w[1] + i}
				n++
			}
		}
		return n
	}
	kcatProduce(t, brokers, "payments", batch())
	first := add(50)
	kcatReadCommitted(t, brokers, first, time.Minute, "payments.totals")

	version := func() string { return statusVersion(t, addr) }
	reload := func(body string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(strings.SplitAfter(mustRead(t, path), "rules:")[0]+body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	before := version()
	// A shape change first: refused, logged with its code.
	reload(rules(20, "event.fee"))
	p.logged(t, regexp.MustCompile(`(VX6002)`), "the refused reload")
	if v := version(); v != before {
		t.Fatalf("config_version %s after a refused reload, want %s", v, before)
	}
	reload(rules(20, "event.amount"))
	deadline := time.Now().Add(time.Minute)
	for version() == before {
		if time.Now().After(deadline) {
			t.Fatal("config_version did not change after SIGHUP")
		}
		time.Sleep(50 * time.Millisecond)
	}

	kcatProduce(t, brokers, "payments", batch())
	second := add(20)
	got := kcatReadCommitted(t, brokers, first+second, time.Minute, "payments.totals")
	if len(got) != first+second {
		t.Fatalf("%d outputs, want %d (%d before the reload, %d after)", len(got), first+second, first, second)
	}
	last := map[string]string{}
	for _, r := range got {
		last[r.Key] = r.Value
	}
	for k, w := range want {
		var v struct {
			Count int     `json:"count"`
			Sum   float64 `json:"sum"`
		}
		if err := json.Unmarshal([]byte(last[k]), &v); err != nil || v.Count != w[0] || v.Sum != float64(w[1]) {
			t.Errorf("%s = %s, want count %d sum %d", k, last[k], w[0], w[1])
		}
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// With app.watch_config, saving the file is enough: the version changes
// without a signal.
func TestReloadOnFileChange(t *testing.T) {
	brokers := startBroker(t, "payments")
	rule := `
  - name: big-payments
    from: payments
    steps:
      - filter: event.amount >= MIN
      - to: payments.big
`
	path := writeAppConfig(t, "e2e-watch", brokers, t.TempDir(), strings.Replace(rule, "MIN", "50", 1))
	cfg := strings.Replace(mustRead(t, path), "app:\n", "app:\n  watch_config: true\n", 1)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, "run", "-c", path)
	addr := p.httpAddr(t)
	before := statusVersion(t, addr)
	next := strings.SplitAfter(cfg, "rules:")[0] + strings.Replace(rule, "MIN", "20", 1)
	if err := os.WriteFile(path, []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for statusVersion(t, addr) == before {
		if time.Now().After(deadline) {
			t.Fatal("config_version did not change after the file changed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	kcatProduce(t, brokers, "payments", []string{"a\t{\"amount\":30}", "b\t{\"amount\":10}"})
	if got := kcatReadCommitted(t, brokers, 1, time.Minute, "payments.big"); len(got) != 1 || got[0].Key != "a" {
		t.Fatalf("outputs %v, want the 30 only (the new threshold 20)", got)
	}
}

// statusVersion returns /v1/status's config_version.
func statusVersion(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Version string `json:"config_version"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st.Version
}
