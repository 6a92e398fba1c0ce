package broker

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// batch is a record batch of a test log: kind is data (plain records), txn
// (transactional records), commit or abort (markers).
type batch struct {
	pid   int64
	epoch int16
	kind  string
}

// scanOf observes the batches as a scan of one partition does.
func scanOf(topic string, partition int32, batches []batch) *partScan {
	ps := newPartScan(topic, partition)
	for _, b := range batches {
		switch b.kind {
		case "data":
			ps.observe(b.pid, b.epoch, 0, false)
		case "txn":
			ps.observe(b.pid, b.epoch, attrTransactional, false)
		case "commit", "abort":
			ps.observe(b.pid, b.epoch, attrTransactional|attrControl, b.kind == "commit")
		default:
			panic("batch kind " + b.kind)
		}
	}
	return ps
}

func TestScanFindsUnfinishedTransactions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		batches []batch
		want    map[int64]int16
	}{
		{"empty log", nil, map[int64]int16{}},
		{"plain records", []batch{{-1, -1, "data"}, {7, 0, "data"}}, map[int64]int16{}},
		{"committed", []batch{{1, 0, "txn"}, {1, 0, "txn"}, {1, 0, "commit"}}, map[int64]int16{}},
		{"open at the end", []batch{{1, 0, "txn"}, {1, 0, "commit"}, {1, 0, "txn"}}, map[int64]int16{1: 0}},
		{"crash-aborted then a committed one of a new epoch", []batch{{1, 0, "txn"}, {1, 1, "txn"}, {1, 1, "commit"}}, map[int64]int16{}},
		{"a marker with nothing open", []batch{{1, 0, "abort"}, {1, 0, "commit"}}, map[int64]int16{}},
		{"epoch of the last batch", []batch{{1, 3, "txn"}, {1, 4, "txn"}}, map[int64]int16{1: 4}},
		{"producers apart", []batch{{1, 0, "txn"}, {2, 5, "txn"}, {1, 0, "abort"}, {3, 0, "txn"}, {2, 5, "data"}},
			map[int64]int16{2: 5, 3: 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := scanOf("t", 0, tc.batches)
			if !maps.Equal(ps.last, tc.want) {
				t.Fatalf("unfinished = %v, want %v", ps.last, tc.want)
			}
		})
	}
}

func TestCutCommits(t *testing.T) {
	for _, tc := range []struct {
		name  string
		parts [][]batch
		want  []cutCommit
	}{
		{"nothing open", [][]batch{{{1, 4, "txn"}, {1, 4, "commit"}}, {{1, 4, "txn"}, {1, 4, "commit"}}}, nil},
		{"open everywhere: not cut", [][]batch{
			{{1, 4, "txn"}, {1, 4, "commit"}, {1, 5, "txn"}},
			{{1, 4, "txn"}, {1, 4, "commit"}, {1, 5, "txn"}},
		}, nil},
		{"committed on one partition, open on two", [][]batch{
			{{1, 4, "txn"}, {1, 4, "commit"}, {1, 5, "txn"}, {1, 5, "commit"}},
			{{1, 4, "txn"}, {1, 4, "commit"}, {1, 5, "txn"}},
			{{1, 3, "txn"}, {1, 3, "commit"}, {1, 5, "txn"}},
		}, []cutCommit{{producerID: 1, epoch: 5, committed: 1, aborted: 2}}},
		{"an abort marker is no commit", [][]batch{
			{{1, 4, "commit"}, {1, 5, "txn"}, {1, 5, "abort"}},
			{{1, 4, "commit"}, {1, 5, "txn"}},
		}, nil},
		{"the same epoch for every transaction: cannot tell", [][]batch{
			{{1, 4, "txn"}, {1, 4, "commit"}},
			{{1, 4, "txn"}, {1, 4, "commit"}, {1, 4, "txn"}},
		}, nil},
		{"other producers apart", [][]batch{
			{{1, 4, "commit"}, {2, 7, "commit"}, {2, 8, "txn"}, {2, 8, "commit"}},
			{{1, 4, "commit"}, {1, 5, "txn"}, {2, 7, "commit"}, {2, 8, "txn"}},
		}, []cutCommit{{producerID: 2, epoch: 8, committed: 1, aborted: 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var scans []*partScan
			for i, p := range tc.parts {
				scans = append(scans, scanOf("t", int32(i), p))
			}
			if got := cutCommits(scans); !slices.Equal(got, tc.want) {
				t.Fatalf("cut commits = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// brokerProcessTest begins a test that runs broker processes (skipped with
// -short): a context bounded by limit, and a data dir for the brokers.
func brokerProcessTest(t *testing.T, limit time.Duration) (context.Context, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs broker processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancel)
	return ctx, t.TempDir()
}

// childDirEnv names the data dir of a broker that this test binary runs as a
// child process (TestBrokerChildProcess), so that it can be killed with
// SIGKILL: a broker in this process cannot stop without saving its state.
const childDirEnv = "VELTRIX_BROKER_TEST_CHILD_DIR"

func TestBrokerChildProcess(t *testing.T) {
	dir := os.Getenv(childDirEnv)
	if dir == "" {
		t.Skip("the broker process of TestKillDuringTransaction")
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	b, err := Start(WithListen("127.0.0.1:0"), WithDataDir(dir), WithPartitions(2),
		WithLogger(slog.New(slog.NewTextHandler(os.Stdout, nil))))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", b.Addr())
	<-stop
	b.Close()
}

// child is a broker process.
type child struct {
	addr string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer // its log (stdout, where it logs before it listens) and stderr
}

var childAddrRE = regexp.MustCompile(`^listening on (\S+)`)

// startChild runs the broker on dir in a child process and waits until it
// listens.
func startChild(t *testing.T, dir string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(os.Args[0], "-test.run=^TestBrokerChildProcess$", "-test.timeout=10m")}
	c.cmd.Env = append(os.Environ(), childDirEnv+"="+dir)
	c.cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.out.Write(p)
	})
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.kill)
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.mu.Lock()
			c.out.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
			if m := childAddrRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatalf("broker process ended before it listened: %s", c.log())
		}
		c.addr = a
	case <-time.After(60 * time.Second):
		t.Fatalf("broker process did not listen within 60s: %s", c.log())
	}
	return c
}

func (c *child) log() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

// kill ends the broker with SIGKILL: no state is saved.
func (c *child) kill() {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

const crashTopic = "txns"

// produceTxn writes one record per partition, valued name-p, in a
// transaction, and commits it unless open is set (then it only flushes).
func produceTxn(ctx context.Context, t *testing.T, cl *kgo.Client, name string, open bool) {
	t.Helper()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatalf("begin %s: %v", name, err)
	}
	for p := range int32(2) {
		cl.Produce(ctx, &kgo.Record{Topic: crashTopic, Partition: p, Value: fmt.Appendf(nil, "%s-%d", name, p)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce %s: %v", name, err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush %s: %v", name, err)
	}
	if open {
		return
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit %s: %v", name, err)
	}
}

// createTopic creates the test topic with two partitions. (kfake saves an
// auto-created topic's name only when it stops cleanly.)
func createTopic(ctx context.Context, t *testing.T, addr string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, -1, nil, crashTopic); err != nil {
		t.Fatalf("create topic: %v", err)
	}
}

// checkStable checks that no transaction is open on the test topic: the last
// stable offset of each partition is its high watermark.
func checkStable(ctx context.Context, t *testing.T, addr string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	hwm, err := adm.ListEndOffsets(ctx, crashTopic)
	if err != nil {
		t.Fatal(err)
	}
	lso, err := adm.ListCommittedOffsets(ctx, crashTopic)
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(2) {
		h, _ := hwm.Lookup(crashTopic, p)
		l, _ := lso.Lookup(crashTopic, p)
		if h.Err != nil || l.Err != nil || h.Offset != l.Offset || h.Offset == 0 {
			t.Errorf("%s-%d: high watermark %d (%v), last stable offset %d (%v): want equal and past 0", crashTopic, p, h.Offset, h.Err, l.Offset, l.Err)
		}
	}
}

func txnClient(t *testing.T, addr string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID("crash-test"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// readCommitted writes a plain record, valued mark-p, to each partition and
// returns the values a read_committed consumer sees before those marks.
func readCommitted(ctx context.Context, t *testing.T, addr, mark string) []string {
	t.Helper()
	pr, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	for p := range int32(2) {
		r := &kgo.Record{Topic: crashTopic, Partition: p, Value: fmt.Appendf(nil, "%s-%d", mark, p)}
		if err := pr.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", mark, err)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(crashTopic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []string
	for marks := 0; marks < 2; {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read_committed did not reach the marks %s (got %v): %v", mark, got, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			switch v := string(r.Value); {
			case strings.HasPrefix(v, mark+"-"):
				marks++
			case strings.HasPrefix(v, "t"): // a transaction's record
				got = append(got, v)
			}
		})
	}
	slices.Sort(got)
	return got
}

// TestKillDuringTransaction kills the broker while a transaction is open,
// then again after the same producer committed another one: the open
// transaction must stay aborted, and the committed ones must stay visible.
func TestKillDuringTransaction(t *testing.T) {
	ctx, dir := brokerProcessTest(t, 2*time.Minute)
	want := []string{"t0-0", "t0-1", "t2-0", "t2-1"}

	b := startChild(t, dir)
	createTopic(ctx, t, b.addr)
	cl := txnClient(t, b.addr)
	produceTxn(ctx, t, cl, "t0", false)
	produceTxn(ctx, t, cl, "t1", true) // open when the broker dies
	b.kill()
	cl.Close()

	b = startChild(t, dir)
	if n := strings.Count(b.log(), "recovered: aborted the unfinished transaction"); n != 2 {
		t.Errorf("first restart: %d recovery lines, want 2 (one per partition):\n%s", n, b.log())
	}
	checkStable(ctx, t, b.addr)
	cl = txnClient(t, b.addr)
	produceTxn(ctx, t, cl, "t2", false)
	cl.Close()
	if got := readCommitted(ctx, t, b.addr, "m1"); !slices.Equal(got, want) {
		t.Errorf("after the first kill, read_committed = %v, want %v", got, want)
	}
	b.kill()

	b = startChild(t, dir)
	if strings.Contains(b.log(), "recovered:") {
		t.Errorf("second restart repaired a log with nothing open:\n%s", b.log())
	}
	checkStable(ctx, t, b.addr)
	if got := readCommitted(ctx, t, b.addr, "m2"); !slices.Equal(got, want) {
		t.Errorf("after the second kill, read_committed = %v, want %v", got, want)
	}
}

// TestCleanRestartKeepsAnOpenTransaction stops the broker cleanly while a
// transaction is open: the broker keeps it open across the restart, the
// recovery must not abort it, and its producer can still commit it.
func TestCleanRestartKeepsAnOpenTransaction(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	b, err := Start(WithListen("127.0.0.1:0"), WithDataDir(dir), WithPartitions(2))
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()
	createTopic(ctx, t, addr)
	cl := txnClient(t, addr)
	defer cl.Close()
	produceTxn(ctx, t, cl, "t0", true)
	b.Close()

	var logs bytes.Buffer
	b, err = Start(WithListen(addr), WithDataDir(dir), WithPartitions(2), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if strings.Contains(logs.String(), "recovered:") {
		t.Errorf("the restart aborted a transaction kept across a clean stop:\n%s", logs.String())
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit after the restart: %v", err)
	}
	if got, want := readCommitted(ctx, t, addr, "m"), []string{"t0-0", "t0-1"}; !slices.Equal(got, want) {
		t.Errorf("read_committed = %v, want %v", got, want)
	}
}

// TestScanReadsPastFullAnswers scans a live broker with fetch limits far
// below its log size: every partition is read to its end, and the one
// transaction left open is found on the partitions it wrote to.
func TestScanReadsPastFullAnswers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := Start(WithListen("127.0.0.1:0"), WithPartitions(3), WithTopics("plain"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	createTopic(ctx, t, b.Addr())

	pr, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	value := bytes.Repeat([]byte("x"), 200)
	for i := range 60 {
		r := &kgo.Record{Topic: "plain", Partition: int32(i % 3), Value: value}
		if err := pr.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl := txnClient(t, b.Addr())
	defer cl.Close()
	produceTxn(ctx, t, cl, "t0", false)
	produceTxn(ctx, t, cl, "t1", true) // open

	scanner, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.MaxVersions(kversion.V3_0_0()))
	if err != nil {
		t.Fatal(err)
	}
	defer scanner.Close()
	scans, err := scanLog(ctx, scanner, fetchLimits{request: 1000, partition: 600})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, ps := range scans {
		key := fmt.Sprintf("%s-%d", ps.topic, ps.partition)
		if _, dup := got[key]; dup {
			t.Errorf("%s scanned twice", key)
		}
		got[key] = len(ps.last)
		wantOpen := 0
		if ps.topic == crashTopic {
			wantOpen = 1
		}
		if len(ps.last) != wantOpen {
			t.Errorf("%s: %d unfinished transactions %v, want %d", key, len(ps.last), ps.last, wantOpen)
		}
		commits := 0
		for _, m := range ps.markers {
			if m.commit {
				commits++
			}
		}
		if commits != wantOpen || len(ps.markers) != wantOpen { // t0's COMMIT on the transaction's partitions
			t.Errorf("%s: markers %v, want %d COMMIT", key, ps.markers, wantOpen)
		}
		end := map[string]int64{"plain": 20, crashTopic: 3} // t0's record and marker, t1's record
		if ps.offset != end[ps.topic] {
			t.Errorf("%s: scan ended at offset %d, want %d", key, ps.offset, end[ps.topic])
		}
	}
	if len(got) != 5 {
		t.Errorf("scanned %v, want the 3 partitions of plain and 2 of %s", got, crashTopic)
	}
}

// TestKillInsideACommitIsReported builds the log a kill inside kfake's commit
// leaves (the COMMIT marker on one partition of the transaction, none on the
// other), kills the broker, and checks that the restart aborts the open part
// and says that the commit was cut.
func TestKillInsideACommitIsReported(t *testing.T) {
	ctx, dir := brokerProcessTest(t, time.Minute)

	b := startChild(t, dir)
	createTopic(ctx, t, b.addr)
	cl := txnClient(t, b.addr)
	defer cl.Close()
	produceTxn(ctx, t, cl, "t0", false)
	produceTxn(ctx, t, cl, "t1", true)
	pid, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The marker kfake's commit writes first, and then the kill.
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed = pid, epoch, true
	mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	mt.Topic, mt.Partitions = crashTopic, []int32{0}
	m.Topics = append(m.Topics, mt)
	req.Markers = append(req.Markers, m)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Markers[0].Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("write marker: error code %d", code)
	}
	b.kill()

	b = startChild(t, dir)
	log := b.log()
	if n := strings.Count(log, "recovered: aborted the unfinished transaction"); n != 1 {
		t.Errorf("%d recovery lines, want 1 (partition 1):\n%s", n, log)
	}
	want := fmt.Sprintf("killed while it committed a transaction of producer %d: it is committed on 1 partition(s) and now aborted on 1", pid)
	if !strings.Contains(log, want) {
		t.Errorf("no %q in the log:\n%s", want, log)
	}
	checkStable(ctx, t, b.addr)
}
