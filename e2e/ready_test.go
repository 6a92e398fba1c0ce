package e2e

import (
	"net/http"
	"testing"
	"time"
)

// /readyz follows the brokers: 200 while polls succeed, 503 once none has
// for http.ready_timeout (the brokers are gone), 200 again when they are
// back.
func TestReadyzFollowsTheBrokers(t *testing.T) {
	b := startOwnBroker(t, "orders")
	lines, _ := events(100)
	kcatProduce(t, b.addr, "orders", lines)
	run := startEnv(t, []string{"VELTRIX_HTTP_READY_TIMEOUT=6s"}, "run", "-c", writeConfig(t, b.addr, t.TempDir()))
	addr := run.httpAddr(t)
	waitStatus(t, addr, http.StatusOK, time.Minute, "ready while the brokers answer")
	b.stop(t)
	waitStatus(t, addr, http.StatusServiceUnavailable, time.Minute, "not ready with the brokers gone")
	b.restart(t)
	waitStatus(t, addr, http.StatusOK, 2*time.Minute, "ready again with the brokers back")
	run.stop(t)
}

// waitStatus polls /readyz until it answers want.
func waitStatus(t *testing.T, addr string, want int, timeout time.Duration, what string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(timeout)
	got := 0
	for {
		if resp, err := client.Get("http://" + addr + "/readyz"); err == nil {
			got = resp.StatusCode
			resp.Body.Close()
			if got == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: /readyz answered %d for %v, want %d", what, got, timeout, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
