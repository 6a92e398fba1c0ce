package e2e

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startEnv is start with extra environment variables (NAME=value).
func startEnv(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	return startWith(t, append(os.Environ(), env...), args...)
}

// exitCode waits up to timeout for the process to exit and returns its exit
// code.
func (p *proc) exitCode(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
		return 0
	case <-time.After(timeout):
		t.Fatalf("veltrix did not exit within %v:\n%s", timeout, tail(p.stderr.String(), 20))
		return -1
	}
}

// closedAddr is an address on 127.0.0.1 where nothing listens (yet).
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// With nothing listening, veltrix run retries for kafka.startup_timeout,
// logging each attempt, then exits with code 3, in JSON when log.format is
// json: every line of its log is a JSON object.
func TestRunUnreachableClusterExits3(t *testing.T) {
	cfg := writeConfig(t, closedAddr(t), t.TempDir())
	run := startEnv(t, []string{"VELTRIX_KAFKA_STARTUP_TIMEOUT=2s", "VELTRIX_LOG_FORMAT=json"}, "run", "-c", cfg)
	if code := run.exitCode(t, 60*time.Second); code != 3 {
		t.Fatalf("exit code %d, want 3:\n%s", code, tail(run.stderr.String(), 20))
	}
	log := run.stderr.String()
	if n := strings.Count(log, "cluster not reachable"); n < 2 {
		t.Errorf("%d retry lines, want at least 2:\n%s", n, log)
	}
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Errorf("log line is not JSON (%v): %s", err, line)
			continue
		}
		if v["msg"] == "cluster not reachable; retrying" && (v["err"] == nil || v["retry_in"] == nil) {
			t.Errorf("retry line without err or retry_in: %s", line)
		}
	}
}

// A broker that comes up while veltrix run is retrying: the instance starts
// and processes.
func TestRunWaitsForCluster(t *testing.T) {
	// The input topic exists before the instance can reach the cluster (a
	// missing input is exit 2, not a retry): the broker is started with it,
	// stopped, and started again on the same data below.
	b := startOwnBroker(t, "orders")
	addr := b.addr
	b.stop(t)
	run := startEnv(t, []string{"VELTRIX_KAFKA_STARTUP_TIMEOUT=5m"}, "run", "-c", writeConfig(t, addr, t.TempDir()))
	waitLog(t, run, "cluster not reachable", 2, 30*time.Second)
	b.restart(t)
	lines, want := events(200)
	kcatProduce(t, addr, "orders", lines)
	got := kcatReadCommitted(t, addr, len(want), 2*time.Minute, "orders.high-value")
	run.stop(t)
	checkOutputs(t, got, want)
}

// The broker goes away while the instance runs; SIGTERM then ends the
// process within processing.shutdown_timeout (plus a margin), with exit code
// 1 and a line saying what was abandoned when the stop could not finish, and
// a second signal ends it at once.
func TestShutdownTimeoutBrokerGone(t *testing.T) {
	b := startOwnBroker(t, "orders")
	lines, want := events(2_000)
	kcatProduce(t, b.addr, "orders", lines)
	run := startEnv(t, []string{"VELTRIX_PROCESSING_SHUTDOWN_TIMEOUT=3s"}, "run", "-c", writeConfig(t, b.addr, t.TempDir()))
	kcatReadCommitted(t, b.addr, len(want), time.Minute, "orders.high-value")
	b.stop(t)
	waitLog(t, run, "fetch error", 1, 30*time.Second)
	kcatDown := time.Now()
	_ = run.cmd.Process.Signal(syscall.SIGTERM)
	code := run.exitCode(t, 3*time.Second+15*time.Second)
	t.Logf("exit %d after %v", code, time.Since(kcatDown))
	switch code {
	case 0: // the stop finished in time
	case 1:
		if !strings.Contains(run.stderr.String(), "shutdown_timeout passed") {
			t.Errorf("exit 1 without the abandon line:\n%s", tail(run.stderr.String(), 20))
		}
	default:
		t.Fatalf("exit code %d, want 0 or 1", code)
	}
}

// A second SIGTERM ends a stop that cannot finish at once, with exit code 1.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	b := startOwnBroker(t, "orders")
	lines, want := events(200)
	kcatProduce(t, b.addr, "orders", lines)
	run := startEnv(t, []string{"VELTRIX_PROCESSING_SHUTDOWN_TIMEOUT=5m"}, "run", "-c", writeConfig(t, b.addr, t.TempDir()))
	kcatReadCommitted(t, b.addr, len(want), time.Minute, "orders.high-value")
	b.stop(t)
	waitLog(t, run, "fetch error", 1, 30*time.Second)
	_ = run.cmd.Process.Signal(syscall.SIGTERM)
	waitLog(t, run, "stopping", 1, 10*time.Second)
	_ = run.cmd.Process.Signal(syscall.SIGTERM)
	switch code := run.exitCode(t, 15*time.Second); code {
	case 0: // the first stop finished before the second signal
	case 1:
		if !strings.Contains(run.stderr.String(), "second signal") {
			t.Errorf("exit 1 without the second-signal line:\n%s", tail(run.stderr.String(), 20))
		}
	default:
		t.Fatalf("exit code %d, want 0 or 1", code)
	}
}

// The broker stops answering (SIGSTOP: connections stay open, no response
// comes) while the instance processes a steady input, so a transaction is
// open or ending: the stop cannot finish, and SIGTERM ends the process within
// processing.shutdown_timeout plus a margin, with exit code 1 and a line
// saying what was abandoned. Dev broker only (its process is the test's).
func TestShutdownTimeoutBrokerFrozen(t *testing.T) {
	b := startOwnBroker(t, "orders")
	lines, _ := events(2_000)
	kcatProduce(t, b.addr, "orders", lines[:1_000])
	run := startEnv(t, []string{"VELTRIX_PROCESSING_SHUTDOWN_TIMEOUT=3s"}, "run", "-c", writeConfig(t, b.addr, t.TempDir()))
	kcatReadCommitted(t, b.addr, 1, time.Minute, "orders.high-value")
	kcatProduce(t, b.addr, "orders", lines[1_000:])
	b.signal(t, syscall.SIGSTOP)
	t.Cleanup(func() { b.signal(t, syscall.SIGCONT) })
	_ = run.cmd.Process.Signal(syscall.SIGTERM)
	begin := time.Now()
	code := run.exitCode(t, 3*time.Second+20*time.Second)
	t.Logf("exit %d after %v", code, time.Since(begin))
	if code != 1 {
		t.Fatalf("exit code %d, want 1 (stop abandoned):\n%s", code, tail(run.stderr.String(), 20))
	}
	if !strings.Contains(run.stderr.String(), "shutdown_timeout passed") {
		t.Errorf("exit 1 without the abandon line:\n%s", tail(run.stderr.String(), 20))
	}
}
