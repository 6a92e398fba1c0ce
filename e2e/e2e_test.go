// Package e2e runs the built veltrix binary against `veltrix broker` as a
// separate process, with kcat (librdkafka) as an independent Kafka client:
// kcat produces the input and reads the output with
// isolation.level=read_committed.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var veltrixBin string

func TestMain(m *testing.M) {
	if _, err := exec.LookPath("kcat"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: kcat is required (Debian/Ubuntu: apt-get install -y kcat; `make test` installs it when run as root)")
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "veltrix-e2e")
	if err != nil {
		panic(err)
	}
	veltrixBin = filepath.Join(dir, "veltrix")
	build := exec.Command("go", "build", "-o", veltrixBin, "../cmd/veltrix")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build veltrix:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running veltrix subprocess.
type proc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
}

type syncBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chan struct{}, 1)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.String()
}

func start(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(veltrixBin, args...)
	p := &proc{cmd: cmd, stderr: newSyncBuffer(), done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatalf("start veltrix %v: %v", args, err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("veltrix %s stderr:\n%s", args[0], tail(p.stderr.String(), 40))
		}
	})
	return p
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("veltrix did not exit cleanly: %v\n%s", err, tail(p.stderr.String(), 20))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("veltrix did not stop within 30s of SIGTERM")
	}
}

// kill ends the process at once (SIGKILL): no commit, no abort, no group leave.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	err := <-p.done
	p.done <- err
}

var listenRE = regexp.MustCompile(`listening on (\S+)`)

// startBroker runs `veltrix broker` on a free port and returns its address.
func startBroker(t *testing.T) string {
	t.Helper()
	return waitListening(t, start(t, "broker", "--listen", "127.0.0.1:0", "--partitions", "6", "--data-dir", t.TempDir()))
}

// waitListening returns the address a broker process reports.
func waitListening(t *testing.T, p *proc) string {
	t.Helper()
	return p.logged(t, listenRE, "broker address")
}

// logged waits (up to 20 s) for re to match the process's log and returns
// its first group.
func (p *proc) logged(t *testing.T, re *regexp.Regexp, what string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(p.stderr.String()); m != nil {
			return m[1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s in the log:\n%s", what, tail(p.stderr.String(), 20))
	return ""
}

func kcatProduce(t *testing.T, brokers, topic string, lines []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kcat", "-P", "-b", brokers, "-t", topic, "-K", "\t", "-z", "none")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat produce: %v\n%s", err, out)
	}
}

// kcatRecord is one record as kcat printed it.
type kcatRecord struct{ Topic, Key, Value string }

// kcatReadCommitted reads the topics from the start with
// isolation.level=read_committed until want records are there or the
// deadline passes; it returns what it read last.
func kcatReadCommitted(t *testing.T, brokers string, want int, timeout time.Duration, topics ...string) []kcatRecord {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var recs []kcatRecord
	for {
		recs = recs[:0]
		for _, topic := range topics {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			out, err := exec.CommandContext(ctx, "kcat", "-C", "-b", brokers, "-t", topic,
				"-X", "isolation.level=read_committed", "-o", "beginning", "-e", "-q",
				"-f", "%t\t%k\t%s\n").Output()
			cancel()
			if err != nil {
				// The topic may not exist yet.
				continue
			}
			sc := bufio.NewScanner(bytes.NewReader(out))
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				parts := strings.SplitN(sc.Text(), "\t", 3)
				if len(parts) == 3 {
					recs = append(recs, kcatRecord{parts[0], parts[1], parts[2]})
				}
			}
		}
		if len(recs) >= want || time.Now().After(deadline) {
			return recs
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func writeConfig(t *testing.T, brokers, stateDir string) string {
	return writeAppConfig(t, "e2e", brokers, stateDir, `
  - name: big-orders
    from: orders
    on_error: dlq
    steps:
      - filter: event.type == "order.created" && event.total >= 100
      - set: {flag: '"high_value"', cents: int(event.total * 100.0)}
      - to: orders.high-value
`)
}

// writeAppConfig writes the config of an exactly-once app with 100 ms
// commits, its HTTP API on a random port and the given rules (YAML list
// items), and returns its path.
func writeAppConfig(t *testing.T, app, brokers, stateDir, rules string) string {
	t.Helper()
	cfg := fmt.Sprintf(`app:
  id: %s
  state_dir: %s
kafka:
  brokers: [%s]
  session_timeout: 6s
  rebalance_timeout: 10s
processing:
  guarantee: exactly_once
  commit_interval: 100ms
http:
  listen: 127.0.0.1:0
rules:%s`, app, stateDir, brokers, rules)
	path := filepath.Join(t.TempDir(), "veltrix.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// events returns n kcat input lines ("key\tjson") and the expected outputs by key.
func events(n int) ([]string, map[string]float64) {
	lines := make([]string, 0, n)
	want := map[string]float64{}
	for i := range n {
		typ := "order.created"
		if i%3 == 0 {
			typ = "order.paid"
		}
		total := float64(i%250) + 0.25
		key := fmt.Sprintf("o-%05d", i)
		lines = append(lines, fmt.Sprintf(`%s	{"type":%q,"order_id":%q,"total":%g}`, key, typ, key, total))
		if typ == "order.created" && total >= 100 {
			want[key] = total
		}
	}
	return lines, want
}

func checkOutputs(t *testing.T, got []kcatRecord, want map[string]float64) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range got {
		seen[r.Key]++
		total, ok := want[r.Key]
		if !ok {
			t.Fatalf("unexpected output %s: %s", r.Key, r.Value)
		}
		var v struct {
			Flag  string  `json:"flag"`
			Cents int64   `json:"cents"`
			Total float64 `json:"total"`
		}
		if err := json.Unmarshal([]byte(r.Value), &v); err != nil || v.Flag != "high_value" || v.Total != total || v.Cents != int64(total*100) {
			t.Fatalf("output %s = %s (err %v), want flag high_value, total %g, cents %d", r.Key, r.Value, err, total, int64(total*100))
		}
	}
	dups, missing := 0, 0
	for k := range want {
		switch seen[k] {
		case 0:
			missing++
		case 1:
		default:
			dups++
		}
	}
	if dups > 0 || missing > 0 || len(got) != len(want) {
		t.Fatalf("read %d outputs, want %d: %d keys duplicated, %d missing", len(got), len(want), dups, missing)
	}
}

func TestEndToEndWithKcat(t *testing.T) {
	brokers := startBroker(t)
	lines, want := events(10_000)
	kcatProduce(t, brokers, "orders", lines)

	run := start(t, "run", "-c", writeConfig(t, brokers, t.TempDir()))
	got := kcatReadCommitted(t, brokers, len(want), 2*time.Minute, "orders.high-value")
	run.stop(t)
	checkOutputs(t, got, want)
}

func TestCrashRestartExactlyOnce(t *testing.T) {
	brokers := startBroker(t)
	lines, want := events(20_000)
	cfg := writeConfig(t, brokers, t.TempDir())
	// Produce in slices while the processor is killed and restarted, so
	// kills land mid-stream with transactions open.
	const kills = 3
	slice := len(lines) / (kills + 1)
	for i := range kills {
		kcatProduce(t, brokers, "orders", lines[i*slice:(i+1)*slice])
		p := start(t, "run", "-c", cfg)
		// Wait until this incarnation has made progress, then kill it.
		kcatReadCommitted(t, brokers, 1+i*len(want)/(kills+1), time.Minute, "orders.high-value")
		p.kill()
	}
	kcatProduce(t, brokers, "orders", lines[kills*slice:])
	p := start(t, "run", "-c", cfg)
	got := kcatReadCommitted(t, brokers, len(want), 3*time.Minute, "orders.high-value")
	p.stop(t)
	checkOutputs(t, got, want)
}

// The broker goes away mid-stream and comes back (same port and data dir):
// the processor waits, recovers, and the output is still exactly once.
func TestBrokerOutageLosesNothing(t *testing.T) {
	dataDir := t.TempDir()
	b := start(t, "broker", "--listen", "127.0.0.1:0", "--partitions", "6", "--data-dir", dataDir)
	brokers := waitListening(t, b)
	lines, want := events(4_000)
	kcatProduce(t, brokers, "orders", lines[:2_000])
	run := start(t, "run", "-c", writeConfig(t, brokers, t.TempDir()))
	kcatReadCommitted(t, brokers, 1, time.Minute, "orders.high-value")

	b.stop(t)
	waitLog(t, run, "fetch error", 1, 30*time.Second) // it noticed, and is still running
	select {
	case err := <-run.done:
		t.Fatalf("veltrix run exited while the broker was down: %v", err)
	default:
	}
	b = start(t, "broker", "--listen", brokers, "--partitions", "6", "--data-dir", dataDir)
	waitListening(t, b)
	kcatProduce(t, brokers, "orders", lines[2_000:])
	got := kcatReadCommitted(t, brokers, len(want), 2*time.Minute, "orders.high-value")
	run.stop(t)
	checkOutputs(t, got, want)
}
