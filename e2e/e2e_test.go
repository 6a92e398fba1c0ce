// Package e2e runs the built veltrix binary against a broker in a separate
// process, with kcat (librdkafka) as an independent Kafka client: kcat
// produces the input and reads the output with isolation.level=read_committed.
//
// The broker is `veltrix broker` (the dev broker), or Apache Kafka when
// VELTRIX_TEST_KAFKA names one (make test-kafka). A test that stops the
// broker itself starts a cluster of its own with deploy/kafka/kafka.sh.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/veltrix/veltrix/internal/testbroker"
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
	return startWith(t, nil, args...)
}

// startWith starts veltrix with args and the environment env (nil: this
// process's); the process is killed when the test ends.
func startWith(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(veltrixBin, args...)
	cmd.Env = env
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

// startBroker returns the address of a broker whose input topics (6
// partitions each) exist: `veltrix broker` on a free port, or the Apache
// Kafka cluster of VELTRIX_TEST_KAFKA, emptied for this test.
func startBroker(t *testing.T, inputs ...string) string {
	t.Helper()
	if testbroker.Kafka() {
		return testbroker.New(t, testbroker.WithTopics(6, inputs...)).Addr()
	}
	return waitListening(t, start(t, "broker", "--listen", "127.0.0.1:0", "--partitions", "6", "--data-dir", t.TempDir(),
		"--topics", strings.Join(inputs, ",")))
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
	return kcatRead(t, brokers, "read_committed", want, timeout, topics...)
}

// kcatRead is kcatReadCommitted with the given isolation.level.
func kcatRead(t *testing.T, brokers, isolation string, want int, timeout time.Duration, topics ...string) []kcatRecord {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var recs []kcatRecord
	for {
		recs = recs[:0]
		for _, topic := range topics {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			out, err := exec.CommandContext(ctx, "kcat", "-C", "-b", brokers, "-t", topic,
				"-X", "isolation.level="+isolation, "-o", "beginning", "-e", "-q",
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

// rewriteConfig replaces, in the config file at path, each old string of
// the old, new pairs with its new one.
func rewriteConfig(t *testing.T, path string, oldnew ...string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.NewReplacer(oldnew...).Replace(string(b))), 0o644); err != nil {
		t.Fatal(err)
	}
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
	brokers := startBroker(t, "orders")
	lines, want := events(10_000)
	kcatProduce(t, brokers, "orders", lines)

	run := start(t, "run", "-c", writeConfig(t, brokers, t.TempDir()))
	got := kcatReadCommitted(t, brokers, len(want), 2*time.Minute, "orders.high-value")
	run.stop(t)
	checkOutputs(t, got, want)
}

func TestCrashRestartExactlyOnce(t *testing.T) {
	brokers := startBroker(t, "orders")
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
	b := startOwnBroker(t, "orders")
	brokers := b.addr
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
	b.restart(t)
	kcatProduce(t, brokers, "orders", lines[2_000:])
	got := kcatReadCommitted(t, brokers, len(want), 2*time.Minute, "orders.high-value")
	run.stop(t)
	checkOutputs(t, got, want)
}

// ownBroker is a broker a test may stop and start again on the same address
// and data: `veltrix broker`, or on Apache Kafka a one-node cluster of the
// test's own (deploy/kafka/kafka.sh), so that the shared cluster stays up.
type ownBroker struct {
	addr, dir string
	proc      *proc // the dev broker
}

func startOwnBroker(t *testing.T, inputs ...string) *ownBroker {
	t.Helper()
	b := &ownBroker{dir: t.TempDir()}
	if !testbroker.Kafka() {
		b.proc = start(t, "broker", "--listen", "127.0.0.1:0", "--partitions", "6", "--data-dir", b.dir, "--topics", strings.Join(inputs, ","))
		b.addr = waitListening(t, b.proc)
		return b
	}
	port := freePorts(t, 2) // the broker's and its controller's
	b.addr = kafkaSh(t, "start", b.dir, strconv.Itoa(port))
	t.Cleanup(func() { kafkaSh(t, "stop", b.dir) })
	for _, in := range inputs {
		kafkaSh(t, "create-topic", b.dir, in, "6")
	}
	return b
}

func (b *ownBroker) stop(t *testing.T) {
	t.Helper()
	if b.proc != nil {
		b.proc.stop(t)
		return
	}
	kafkaSh(t, "stop", b.dir)
}

func (b *ownBroker) restart(t *testing.T) {
	t.Helper()
	if b.proc != nil {
		b.proc = start(t, "broker", "--listen", b.addr, "--partitions", "6", "--data-dir", b.dir)
		waitListening(t, b.proc)
		return
	}
	_, port, _ := net.SplitHostPort(b.addr)
	kafkaSh(t, "start", b.dir, port)
}

// signal sends sig to the broker's process (SIGSTOP freezes it, SIGCONT
// thaws it).
func (b *ownBroker) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if b.proc != nil {
		if err := b.proc.cmd.Process.Signal(sig); err != nil {
			t.Fatalf("signal the broker: %v", err)
		}
		return
	}
	pid, err := os.ReadFile(filepath.Join(b.dir, "node1", "pid"))
	if err != nil {
		t.Fatalf("broker pid: %v", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(pid)))
	if err != nil {
		t.Fatalf("broker pid %q: %v", pid, err)
	}
	if err := syscall.Kill(n, sig); err != nil {
		t.Fatalf("signal the broker: %v", err)
	}
}

// kafkaSh runs deploy/kafka/kafka.sh and returns the address of its last
// line when that is "ready ADDR".
func kafkaSh(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "../deploy/kafka/kafka.sh", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("kafka.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	addr, _ := strings.CutPrefix(lines[len(lines)-1], "ready ")
	return addr
}

// freePorts finds n consecutive free ports on 127.0.0.1 and returns the
// first.
func freePorts(t *testing.T, n int) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		first := l.Addr().(*net.TCPAddr).Port
		ls := []net.Listener{l}
		for i := 1; i < n; i++ {
			if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", first+i)); err == nil {
				ls = append(ls, l)
			}
		}
		for _, l := range ls {
			l.Close()
		}
		if len(ls) == n {
			return first
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}
