package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/topicwait"
)

// numCustomers is the number of distinct customer ids in the generated data.
const numCustomers = 100_000

// harness owns the broker process, the pre-filled input topic and the
// expected results every scenario is checked against.
type harness struct {
	cfg         config
	tmp         string    // temp dir for the veltrix binary, configs and state
	veltrix     string    // path to the built veltrix binary ("" if the build failed)
	buildErr    error     // why veltrix is missing
	kstreamsCP  string    // java class path of the Kafka Streams application ("" if its build failed)
	kstreamsErr error     // why it is missing
	self        string    // path to this program, re-executed for child scenarios
	broker      *exec.Cmd // the dev broker (nil on Apache Kafka)
	kafkaDir    string    // the Apache Kafka node's directory ("" on the dev broker)
	brokerPid   int       // the broker's process, for its CPU time
	addr        string
	adm         *kadm.Client
	admCl       *kgo.Client
	input       string
	avgBytes    float64 // mean key+value size of an input record
	round       int     // the round running (from 1)

	// expected per-customer count and sum of totals over the input.
	custCount []int64
	custSum   []float64
}

// splitmix64 is a fixed, seedless mixer: record i always gets the same customer
// and total, so the expected results can be recomputed without storing them.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func customerOf(i int) int     { return int(splitmix64(uint64(i)) % numCustomers) }
func totalOf(i int) float64    { return float64(splitmix64(uint64(i)^0x5bd1e995)%100_000) / 100 }
func orderKey(i int) []byte    { return fmt.Appendf(nil, "o-%07d", i) }
func customerKey(c int) string { return fmt.Sprintf("c-%06d", c) }

// orderEvent appends the JSON value of order i (about 200 bytes) to b. A
// non-zero sentNs is written first, for the latency scenario.
func orderEvent(b []byte, i int, sentNs int64) []byte {
	b = append(b, '{')
	if sentNs != 0 {
		b = append(b, `"sent_ns":`...)
		b = strconv.AppendInt(b, sentNs, 10)
		b = append(b, ',')
	}
	b = append(b, `"type":"order.created","order_id":"`...)
	b = fmt.Appendf(b, "o-%07d", i)
	b = append(b, `","customer_id":"`...)
	b = fmt.Appendf(b, "c-%06d", customerOf(i))
	b = append(b, `","total":`...)
	b = strconv.AppendFloat(b, totalOf(i), 'f', 2, 64)
	b = append(b, `,"currency":"EUR","items":`...)
	b = strconv.AppendInt(b, int64(1+i%5), 10)
	b = append(b, `,"channel":"web","country":"DE","created_at":"2025-11-26T10:00:00.000Z","shipping":"standard","coupon":null}`...)
	return b
}

// newHarness builds veltrix, starts the broker and pre-fills the input topic.
func newHarness(ctx context.Context, cfg config) (*harness, error) {
	tmp, err := os.MkdirTemp("", "veltrix-bench-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	h := &harness{cfg: cfg, tmp: tmp, self: self, input: "bench-orders-" + cfg.runID}
	h.buildVeltrix(ctx)
	if h.needsKStreams() {
		h.buildKStreams(ctx)
	}
	start := h.startBroker
	if cfg.broker == brokerKafka {
		start = h.startKafka
	}
	if err := start(ctx); err != nil {
		return h, err
	}
	if err := h.adminClient(); err != nil {
		return h, err
	}
	if err := h.prefill(ctx); err != nil {
		return h, err
	}
	return h, nil
}

// buildVeltrix builds cmd/veltrix into the temp dir, or takes BENCH_VELTRIX.
func (h *harness) buildVeltrix(ctx context.Context) {
	if h.cfg.veltrixBin != "" {
		h.veltrix = h.cfg.veltrixBin
		return
	}
	out := filepath.Join(h.tmp, "veltrix")
	logf("building veltrix from %s", h.cfg.repo)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/veltrix")
	cmd.Dir = h.cfg.repo
	if msg, err := cmd.CombinedOutput(); err != nil {
		h.buildErr = fmt.Errorf("go build ./cmd/veltrix: %w: %s", err, tail(string(msg), 400))
		logf("WARNING: %v", h.buildErr)
		return
	}
	h.veltrix = out
}

// startBroker runs `veltrix broker` on a free port (memory only). If veltrix
// could not be built, the same embedded broker runs from this program's
// hidden -child broker mode, still as a separate process.
func (h *harness) startBroker(ctx context.Context) error {
	var cmd *exec.Cmd
	args := []string{"--listen", "127.0.0.1:0", "--partitions", strconv.Itoa(h.cfg.partitions)}
	if h.veltrix != "" {
		cmd = exec.Command(h.veltrix, append([]string{"broker"}, args...)...)
	} else {
		cmd = exec.Command(h.self, "-child", "broker", "-partitions", strconv.Itoa(h.cfg.partitions))
	}
	cmd.Env = envWithoutPprof()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("broker stderr: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start broker: %w", err)
	}
	h.broker, h.brokerPid = cmd, cmd.Process.Pid
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if _, rest, ok := strings.Cut(line, "listening on "); ok {
				addr, _, _ := strings.Cut(rest, " ")
				select {
				case addrc <- addr:
				default:
				}
			}
		}
	}()
	select {
	case h.addr = <-addrc:
	case <-time.After(30 * time.Second):
		return errors.New("broker did not report its address within 30s")
	case <-ctx.Done():
		return ctx.Err()
	}
	logf("broker listening on %s (pid %d)", h.addr, cmd.Process.Pid)
	return nil
}

// adminClient connects the harness's admin client to the broker.
func (h *harness) adminClient() error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.addr))
	if err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	h.admCl, h.adm = cl, kadm.NewClient(cl)
	return nil
}

// kafkaScript is deploy/kafka/kafka.sh in the repository.
func (h *harness) kafkaScript() string {
	return filepath.Join(h.cfg.repo, "deploy", "kafka", "kafka.sh")
}

// startKafka starts a one-node Apache Kafka cluster (deploy/kafka/kafka.sh,
// the version the tests use; the first start resolves its jars with Maven)
// on free ports, its data in the temp dir.
func (h *harness) startKafka(ctx context.Context) error {
	port, err := freePortPair()
	if err != nil {
		return err
	}
	h.kafkaDir = filepath.Join(h.tmp, "kafka")
	logf("starting Apache Kafka (one node) on 127.0.0.1:%d", port)
	cmd := exec.CommandContext(ctx, "bash", h.kafkaScript(), "start", h.kafkaDir, strconv.Itoa(port), "1")
	cmd.Env = envWithoutPprof()
	if os.Getenv("KAFKA_READY_TIMEOUT") == "" {
		// kafka.sh waits 120 s by default; on a loaded machine a node
		// has taken longer than that to listen.
		cmd.Env = append(cmd.Env, "KAFKA_READY_TIMEOUT=300")
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("start Apache Kafka: %w: %s", err, tail(string(out), 1500))
	}
	addr, ok := kafkaReadyAddr(string(out))
	if !ok {
		return fmt.Errorf("start Apache Kafka: no ready line in: %s", tail(string(out), 600))
	}
	h.addr = addr
	if b, err := os.ReadFile(filepath.Join(h.kafkaDir, "node1", "pid")); err == nil {
		h.brokerPid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	logf("Apache Kafka ready on %s (pid %d)", h.addr, h.brokerPid)
	return nil
}

// kafkaReadyAddr finds the address in kafka.sh start's last line,
// "ready 127.0.0.1:PORT".
func kafkaReadyAddr(out string) (string, bool) {
	var addr string
	for line := range strings.Lines(out) {
		if a, ok := strings.CutPrefix(strings.TrimSpace(line), "ready "); ok && a != "" {
			addr = a
		}
	}
	return addr, addr != ""
}

// freePortPair returns a port p such that p and p+1 (a node's broker and
// controller listeners) were free a moment ago, below Linux's ephemeral
// range.
func freePortPair() (int, error) {
	for p := 20000 + int(time.Now().UnixNano()%6000)*2; p < 32000; p += 2 {
		l1, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1))
		l1.Close()
		if err != nil {
			continue
		}
		l2.Close()
		return p, nil
	}
	return 0, errors.New("no two free consecutive ports between 20000 and 32000")
}

// brokerCPU returns the broker process's CPU time so far (user + sys, from
// /proc/<pid>/stat; false when unavailable).
func (h *harness) brokerCPU() (float64, bool) {
	if h.brokerPid <= 0 {
		return 0, false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", h.brokerPid))
	if err != nil {
		return 0, false
	}
	return parseStatCPU(string(b))
}

// clockTicks is USER_HZ, the unit of CPU times in /proc/<pid>/stat: 100 on
// every Linux platform Go supports.
const clockTicks = 100

// parseStatCPU reads utime + stime (fields 14 and 15) from the text of
// /proc/<pid>/stat, in seconds. The command name (field 2) may hold spaces,
// so fields are counted after its closing parenthesis.
func parseStatCPU(stat string) (float64, bool) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return float64(u+s) / clockTicks, true
}

// createTopic creates a topic with the configured partition count and waits
// until its partitions have leaders (Apache Kafka answers before they do).
func (h *harness) createTopic(ctx context.Context, topic string) error {
	resp, err := h.adm.CreateTopic(ctx, int32(h.cfg.partitions), 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err == nil {
		_, err = topicwait.Led(ctx, h.adm, 30*time.Second, topic)
	}
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

// deleteTopics removes the topics whose names contain id (best effort), so the
// broker's memory stays flat across scenarios.
func (h *harness) deleteTopics(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topics, err := h.adm.ListTopics(ctx)
	if err != nil {
		return
	}
	var del []string
	for _, t := range topics.Names() {
		if strings.Contains(t, id) {
			del = append(del, t)
		}
	}
	if len(del) > 0 {
		_, _ = h.adm.DeleteTopics(ctx, del...)
	}
}

// prefill produces cfg.records order events to the input topic and computes
// the expected per-customer results.
func (h *harness) prefill(ctx context.Context) error {
	if err := h.createTopic(ctx, h.input); err != nil {
		return err
	}
	n := h.cfg.records
	h.custCount = make([]int64, numCustomers)
	h.custSum = make([]float64, numCustomers)
	for i := range n {
		c := customerOf(i)
		h.custCount[c]++
		h.custSum[c] += totalOf(i)
	}
	bytesSum, err := h.fillOrders(ctx, h.input, n)
	if err != nil {
		return err
	}
	h.avgBytes = float64(bytesSum) / float64(max(n, 1))
	return nil
}

// fillOrders produces order events 0..n-1 to topic with a batching producer
// and returns their total key+value size.
func (h *harness) fillOrders(ctx context.Context, topic string, n int) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.addr), kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20),
		kgo.MaxBufferedRecords(200_000))
	if err != nil {
		return 0, fmt.Errorf("producer: %w", err)
	}
	defer cl.Close()
	var (
		mu       sync.Mutex
		firstErr error
		bytesSum int64
	)
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}
	}
	start := time.Now()
	lastLog := start
	for i := range n {
		key, val := orderKey(i), orderEvent(nil, i, 0)
		bytesSum += int64(len(key) + len(val))
		cl.Produce(ctx, &kgo.Record{Key: key, Value: val}, promise)
		if time.Since(lastLog) > 2*time.Second {
			lastLog = time.Now()
			logf("fill %s: %d/%d records produced (%.0f rec/s)", topic, i, n, float64(i)/time.Since(start).Seconds())
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, fmt.Errorf("fill %s: flush: %w", topic, err)
	}
	if firstErr != nil {
		return 0, fmt.Errorf("fill %s: produce: %w", topic, firstErr)
	}
	el := time.Since(start)
	logf("fill %s: %d records (%.0f B avg) in %.1fs (%.0f rec/s)", topic, n, float64(bytesSum)/float64(max(n, 1)),
		el.Seconds(), float64(n)/el.Seconds())
	return bytesSum, nil
}

// close stops the broker and removes the temp dir.
func (h *harness) close() {
	if h.admCl != nil {
		h.admCl.Close()
	}
	if h.kafkaDir != "" {
		cmd := exec.Command("bash", h.kafkaScript(), "stop", h.kafkaDir)
		if out, err := cmd.CombinedOutput(); err != nil {
			logf("WARNING: stop Apache Kafka: %v: %s", err, tail(string(out), 300))
		}
	}
	if h.broker != nil && h.broker.Process != nil {
		_ = h.broker.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = h.broker.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = h.broker.Process.Kill()
		}
	}
	_ = os.RemoveAll(h.tmp)
}

// child is one measured scenario process.
type child struct {
	cmd     *exec.Cmd
	started time.Time
	exited  chan struct{} // closed when the process has exited
	waitErr error
	stderr  *tailBuffer
	hwm     atomic.Int64 // largest VmHWM read from /proc/<pid>/status, bytes
}

// startChild starts a measured process; its stderr is kept (the last few KiB)
// for failure notes.
func startChild(name string, args ...string) (*child, error) {
	return startChildEnv(nil, nil, name, args...)
}

// startChildEnv is startChild with an environment (nil: this process's
// environment without VELTRIX_PPROF) that also passes each stderr line to
// onLine (from one goroutine), when onLine is not nil.
func startChildEnv(env []string, onLine func(string), name string, args ...string) (*child, error) {
	c := &child{cmd: exec.Command(name, args...), exited: make(chan struct{}), stderr: &tailBuffer{max: 4096}}
	if env == nil {
		env = envWithoutPprof()
	}
	c.cmd.Env = env
	c.cmd.Stdout = io.Discard
	c.cmd.Stderr = c.stderr
	if onLine != nil {
		c.cmd.Stderr = io.MultiWriter(c.stderr, &lineWriter{fn: onLine})
	}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c.started = time.Now()
	go func() { c.waitErr = c.cmd.Wait(); close(c.exited) }()
	go c.watchRSS()
	return c, nil
}

// pprofVar is the variable that makes `veltrix` serve Go's profiling
// endpoints (cmd/veltrix/pprof.go); BENCH_PPROF sets it for the measured
// `veltrix run` processes only.
const pprofVar = "VELTRIX_PPROF"

// envWithoutPprof is this process's environment without VELTRIX_PPROF, so
// that the broker and the other children never take the profiling port.
func envWithoutPprof() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, pprofVar+"=") {
			env = append(env, kv)
		}
	}
	return env
}

// runVeltrix starts `veltrix run -c path` as a measured process, serving
// pprof at BENCH_PPROF when that is set.
func (h *harness) runVeltrix(onLine func(string), path string) (*child, error) {
	env := envWithoutPprof()
	if a := os.Getenv("BENCH_PPROF"); a != "" {
		env = append(env, pprofVar+"="+a)
	}
	return startChildEnv(env, onLine, h.veltrix, "run", "-c", path)
}

// hasExited reports whether the process has already exited.
func (c *child) hasExited() bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}

// watchRSS samples the process's peak RSS every 20 ms until it exits.
//
// The rusage of a child cannot be used for this: Go starts children with
// vfork, and on exec Linux folds the high-water RSS of the old address
// space, the harness's own, into the child's ru_maxrss, so every child would
// report at least the harness's peak. VmHWM in /proc/<pid>/status is the
// high-water mark of the child's own address space since its exec. Growth in
// the last 20 ms before exit can be missed.
func (c *child) watchRSS() {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if v, ok := vmHWM(c.cmd.Process.Pid); ok && v > c.hwm.Load() {
			c.hwm.Store(v)
		}
		select {
		case <-c.exited:
			return
		case <-t.C:
		}
	}
}

// vmHWM reads the peak resident set size of a process, in bytes, from
// /proc/<pid>/status (false when unavailable: not Linux, or the process is
// gone).
func vmHWM(pid int) (int64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	return parseVmHWM(string(b))
}

// parseVmHWM finds "VmHWM: <n> kB" in the text of /proc/<pid>/status.
func parseVmHWM(status string) (int64, bool) {
	for line := range strings.Lines(status) {
		v, ok := strings.CutPrefix(line, "VmHWM:")
		if !ok {
			continue
		}
		v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
		kb, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, false
		}
		return kb * 1024, true
	}
	return 0, false
}

// stop sends SIGTERM (SIGKILL after 10 s) and returns the process's CPU time
// (user+sys, from its rusage) and peak RSS (VmHWM sampled while it ran; the
// rusage figure, which includes the harness's, only if that is unavailable).
func (c *child) stop() (cpuSeconds float64, peakRSS int64) {
	if !c.hasExited() {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.exited:
		case <-time.After(10 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
	}
	if ru, ok := c.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		cpuSeconds = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		peakRSS = ru.Maxrss * 1024 // KiB on Linux
	}
	if hwm := c.hwm.Load(); hwm > 0 {
		peakRSS = hwm
	}
	return cpuSeconds, peakRSS
}

// exitNote describes why a child exited early.
func (c *child) exitNote() string {
	return fmt.Sprintf("process exited early (%v): %s", c.waitErr, strings.TrimSpace(tail(c.stderr.String(), 300)))
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// lineWriter calls fn with each complete line written to it (without the
// newline).
type lineWriter struct {
	buf []byte
	fn  func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.fn(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 64<<10 { // an endless line: keep memory bounded
		w.buf = w.buf[:0]
	}
	return len(p), nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// checker verifies a scenario's output record by record.
type checker interface {
	add(r *kgo.Record)
	received() int
	complete() bool // every expected record has arrived
	verdict() error // nil if the output is exactly as expected
}

// copyChecker expects every input record exactly once, keyed by its order id;
// with marker set, every value must contain it.
type copyChecker struct {
	seen     []bool
	n, dups  int
	distinct int
	bad      int
	marker   []byte
}

func newCopyChecker(records int, marker string) *copyChecker {
	return &copyChecker{seen: make([]bool, records), marker: []byte(marker)}
}

func (c *copyChecker) add(r *kgo.Record) {
	c.n++
	i, err := strconv.Atoi(strings.TrimPrefix(string(r.Key), "o-"))
	if err != nil || i < 0 || i >= len(c.seen) {
		c.bad++
		return
	}
	if len(c.marker) > 0 && !bytes.Contains(r.Value, c.marker) {
		c.bad++
	}
	if c.seen[i] {
		c.dups++
		return
	}
	c.seen[i] = true
	c.distinct++
}

func (c *copyChecker) received() int  { return c.n }
func (c *copyChecker) complete() bool { return c.distinct == len(c.seen) }
func (c *copyChecker) verdict() error {
	switch {
	case c.bad > 0:
		return fmt.Errorf("%d records with an unknown key or a value missing %q", c.bad, c.marker)
	case c.dups > 0:
		return fmt.Errorf("%d duplicate records", c.dups)
	case c.distinct != len(c.seen):
		return fmt.Errorf("got %d of %d records", c.distinct, len(c.seen))
	}
	return nil
}

// countChecker expects records keyed by customer id whose value is the running
// count (a decimal number, or a JSON object with count and sum). Per customer
// the last record read (records of one key share a partition, so this is the
// last one written) and the highest count must both carry the final count,
// and the final sum when the value has one. With exact, there must also be
// one record per input record (each update emitted); without, updates may be
// coalesced (fewer records).
type countChecker struct {
	wantCount []int64
	wantSum   []float64
	gotN      []int64
	maxCount  []int64
	sumAtMax  []float64
	lastCount []int64
	lastSum   []float64
	hasSum    bool
	exact     bool
	n, bad    int
	total     int // input records
	keys      int // customers with at least one order
	finished  int // customers whose final count has arrived
}

func newCountChecker(count []int64, sum []float64, total int, exact bool) *countChecker {
	c := &countChecker{wantCount: count, wantSum: sum, gotN: make([]int64, len(count)),
		maxCount: make([]int64, len(count)), sumAtMax: make([]float64, len(count)),
		lastCount: make([]int64, len(count)), lastSum: make([]float64, len(count)), total: total, exact: exact}
	for _, n := range count {
		if n > 0 {
			c.keys++
		}
	}
	return c
}

// aggValue is the JSON value an aggregate step emits.
type aggValue struct {
	Count int64    `json:"count"`
	Sum   *float64 `json:"sum"`
}

func (c *countChecker) add(r *kgo.Record) {
	c.n++
	cust, err := strconv.Atoi(strings.TrimPrefix(string(r.Key), "c-"))
	if err != nil || cust < 0 || cust >= len(c.wantCount) {
		c.bad++
		return
	}
	var v aggValue
	if len(r.Value) > 0 && r.Value[0] == '{' {
		var ok bool
		if v, ok = parseAggValue(r.Value); !ok {
			c.bad++
			return
		}
	} else if v.Count, err = strconv.ParseInt(string(r.Value), 10, 64); err != nil {
		c.bad++
		return
	}
	c.gotN[cust]++
	c.lastCount[cust] = v.Count
	if v.Sum != nil {
		c.lastSum[cust] = *v.Sum
	}
	if v.Count > c.maxCount[cust] {
		if v.Count == c.wantCount[cust] {
			c.finished++
		}
		c.maxCount[cust] = v.Count
		if v.Sum != nil {
			c.hasSum = true
			c.sumAtMax[cust] = *v.Sum
		}
	}
}

// parseAggValue reads count and sum of an aggregate's JSON object value.
// It runs on every output record while the scenario is timed, on the
// measured process's machine, so it reads only those two members, without
// encoding/json (which costs about 1 µs a record, a CPU second per million);
// a value it cannot read is decoded with encoding/json.
func parseAggValue(b []byte) (v aggValue, ok bool) {
	if b[len(b)-1] != '}' {
		return v, false
	}
	count, okCount := numberAfter(b, `"count":`)
	sum, okSum := numberAfter(b, `"sum":`)
	if okCount && !bytes.ContainsAny(count, ".eE") {
		if n, err := strconv.ParseInt(string(count), 10, 64); err == nil {
			v.Count = n
			if okSum {
				f, err := strconv.ParseFloat(string(sum), 64)
				if err == nil {
					v.Sum = &f
					return v, true
				}
			} else if !bytes.Contains(b, []byte(`"sum"`)) {
				return v, true
			}
		}
	}
	v = aggValue{}
	return v, json.Unmarshal(b, &v) == nil
}

// numberAfter returns the JSON number that follows the first occurrence of
// name in b.
func numberAfter(b []byte, name string) ([]byte, bool) {
	i := bytes.Index(b, []byte(name))
	if i < 0 {
		return nil, false
	}
	b = b[i+len(name):]
	n := 0
	for n < len(b) && (b[n] >= '0' && b[n] <= '9' || b[n] == '-' || b[n] == '+' || b[n] == '.' || b[n] == 'e' || b[n] == 'E') {
		n++
	}
	return b[:n], n > 0
}

func (c *countChecker) received() int { return c.n }
func (c *countChecker) complete() bool {
	if c.exact {
		return c.n >= c.total
	}
	return c.finished == c.keys
}
func (c *countChecker) verdict() error {
	if c.bad > 0 {
		return fmt.Errorf("%d records with an unknown key or an unreadable value", c.bad)
	}
	if c.exact && c.n != c.total {
		return fmt.Errorf("got %d records, want %d", c.n, c.total)
	}
	for i, want := range c.wantCount {
		if (c.exact && c.gotN[i] != want) || c.maxCount[i] != want {
			return fmt.Errorf("customer %s: %d records, final count %d, want %d", customerKey(i), c.gotN[i], c.maxCount[i], want)
		}
		if c.lastCount[i] != want {
			return fmt.Errorf("customer %s: last record has count %d, want %d", customerKey(i), c.lastCount[i], want)
		}
		if c.hasSum && want > 0 {
			if !closeTo(c.sumAtMax[i], c.wantSum[i]) || !closeTo(c.lastSum[i], c.wantSum[i]) {
				return fmt.Errorf("customer %s: final sum %.2f (last record %.2f), want %.2f", customerKey(i), c.sumAtMax[i], c.lastSum[i], c.wantSum[i])
			}
		}
	}
	return nil
}

// closeTo reports whether two sums agree up to float rounding (the processor
// may add in another order than the harness).
func closeTo(got, want float64) bool {
	d := got - want
	tol := 1e-6 * max(1, want)
	return d <= tol && -d <= tol
}

// probeFirstWrite reports when the first record is written to topic, seen by
// a read_uncommitted consumer (before any commit), then stops. The channel is
// closed without a value if ctx ends or the probe fails.
func (h *harness) probeFirstWrite(ctx context.Context, topic string) <-chan time.Time {
	ch := make(chan time.Time, 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.addr), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		close(ch)
		return ch
	}
	go func() {
		defer close(ch)
		defer cl.Close()
		pctx, cancel := context.WithTimeout(ctx, h.cfg.timeout)
		defer cancel()
		for pctx.Err() == nil {
			if fs := cl.PollRecords(pctx, 1); fs.NumRecords() > 0 {
				ch <- time.Now()
				return
			}
		}
	}()
	return ch
}

// measurement is what the output reader saw.
type measurement struct {
	first, last time.Time // receive times of the first and last output batch
	nFirst      int       // records in the first received batch
	firstWrite  time.Time // when a read_uncommitted probe saw the first output record
	done        bool
	note        string
}

// readOutput reads topic with read_committed until chk is complete, the child
// exits early, or the timeout passes; then it reads for a short grace period
// to catch duplicates (not timed).
func (h *harness) readOutput(ctx context.Context, name, topic string, chk checker, c *child, timeout time.Duration) (m measurement) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.addr), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		m.note = fmt.Sprintf("output consumer: %v", err)
		return m
	}
	defer cl.Close()
	pctx, stopProbe := context.WithCancel(ctx)
	probe := h.probeFirstWrite(pctx, topic)
	defer func() {
		stopProbe()
		if t, ok := <-probe; ok {
			m.firstWrite = t
		}
	}()
	deadline := time.Now().Add(timeout)
	lastLog := time.Now()
	poll := func(d time.Duration) int {
		pctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		fs := cl.PollFetches(pctx)
		now := time.Now()
		n := 0
		fs.EachRecord(func(r *kgo.Record) { chk.add(r); n++ })
		if n > 0 && !m.done {
			if m.first.IsZero() {
				m.first, m.nFirst = now, n
			}
			m.last = now
		}
		return n
	}
	for !chk.complete() {
		exited := c != nil && c.hasExited()
		poll(250 * time.Millisecond)
		if chk.complete() {
			break
		}
		if exited {
			m.note = c.exitNote()
			return m
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			m.note = fmt.Sprintf("timed out after %s with %d records read", timeout, chk.received())
			return m
		}
		if time.Since(lastLog) > 2*time.Second {
			lastLog = time.Now()
			logf("%s: %d records out (%.0fs)", name, chk.received(), time.Since(c.started).Seconds())
		}
	}
	m.done = true
	for poll(500*time.Millisecond) > 0 { // late extras are duplicates
	}
	return m
}

// scenarioID names a scenario's topics, group and state in this run and
// round: every run of a scenario starts fresh.
func (h *harness) scenarioID(name string) string {
	return fmt.Sprintf("%s-%s-r%d", name, h.cfg.runID, h.round)
}

// starter starts a scenario's process reading h.input (or in) and writing out
// under consumer group (and app id) group.
type starter func(in, out, group string) (*child, error)

// runThroughput runs one process against the pre-filled input: a fresh output
// topic and group, the output read back and checked, then timed.
func (h *harness) runThroughput(ctx context.Context, name string, start starter, chk checker) result {
	id := h.scenarioID(name)
	out, group := "bench-out-"+id, "bench-"+id
	defer h.deleteTopics(id)
	if err := h.createTopic(ctx, out); err != nil {
		return failed(name, err.Error())
	}
	c, err := start(h.input, out, group)
	if err != nil {
		return failed(name, err.Error())
	}
	m := h.readOutput(ctx, name, out, chk, c, h.cfg.timeout)
	cpu, rss := c.stop()
	if !m.done {
		return failed(name, m.note)
	}
	if err := chk.verdict(); err != nil {
		return failed(name, "wrong output: "+err.Error())
	}
	n := h.cfg.records
	wall := m.last.Sub(c.started)
	rps, method := throughput(n, c.started, m)
	startup := m.first.Sub(c.started)
	if !m.firstWrite.IsZero() {
		startup = m.firstWrite.Sub(c.started)
	}
	note := ""
	if method != methodFirstWrite {
		note = "first write not seen: timed by " + method + " (coarser)"
	}
	return result{Note: note, Status: statusOK, Records: n, RecordsPerSec: rps, MBPerSec: rps * h.avgBytes / 1e6,
		CPUSeconds: cpu, PeakRSSBytes: rss, WallSeconds: wall.Seconds(), StartupSeconds: startup.Seconds(),
		Method: method}
}
