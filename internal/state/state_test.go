package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/veltrix/veltrix/internal/testbroker"
	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/processors"
)

const testApp = "app"

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func openDB(tb testing.TB, dir string) *DB {
	tb.Helper()
	db, err := Open(Options{Dir: dir, AppID: testApp, CacheSize: 8 << 20, MemTableSize: 4 << 20, Logger: discard})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

func openTask(tb testing.TB, db *DB, partition int32, stores ...string) *Task {
	tb.Helper()
	task, err := db.OpenTask(partition, stores...)
	if err != nil {
		tb.Fatalf("OpenTask: %v", err)
	}
	return task
}

func mustGet(tb testing.TB, s processors.Store, key string) (string, bool) {
	tb.Helper()
	v, ok, err := s.Get([]byte(key))
	if err != nil {
		tb.Fatalf("Get(%q): %v", key, err)
	}
	return string(v), ok
}

func mustPut(tb testing.TB, s processors.Store, key, value string) {
	tb.Helper()
	if err := s.Put([]byte(key), []byte(value)); err != nil {
		tb.Fatalf("Put(%q): %v", key, err)
	}
}

// settleAll waits until the open tasks' last commits are in Pebble, where
// db.Get and db.Scan read.
func settleAll(tb testing.TB, db *DB) {
	tb.Helper()
	db.mu.Lock()
	defer db.mu.Unlock()
	for _, t := range db.tasks {
		if err := t.settle(); err != nil {
			tb.Fatalf("settle: %v", err)
		}
	}
}

func committedGet(tb testing.TB, db *DB, store string, p int32, key string) (string, bool) {
	tb.Helper()
	settleAll(tb, db)
	v, ok, err := db.Get(store, p, []byte(key))
	if err != nil {
		tb.Fatalf("db.Get: %v", err)
	}
	return string(v), ok
}

func TestTransactionSemantics(t *testing.T) {
	db := openDB(t, t.TempDir())
	task := openTask(t, db, 3, "counts", "seen")
	counts, seen := task.Store("counts"), task.Store("seen")
	topic := ChangelogTopic(testApp, "counts")

	// Reads see the open transaction; the committed view does not.
	mustPut(t, counts, "a", "1")
	if v, ok := mustGet(t, counts, "a"); !ok || v != "1" {
		t.Fatalf("open txn read = %q,%v, want 1", v, ok)
	}
	if _, ok := committedGet(t, db, "counts", 3, "a"); ok {
		t.Fatal("committed view sees an open transaction")
	}
	// Abort discards.
	task.Abort()
	if _, ok := mustGet(t, counts, "a"); ok {
		t.Fatal("aborted write still visible")
	}
	if task.Dirty() {
		t.Fatal("dirty after abort")
	}

	// Coalescing: three updates of a and a put+delete of b give one record each.
	mustPut(t, counts, "a", "1")
	mustPut(t, counts, "a", "2")
	mustPut(t, counts, "a", "3")
	mustPut(t, counts, "b", "x")
	if err := counts.Delete([]byte("b")); err != nil {
		t.Fatal(err)
	}
	recs, err := task.Changelog()
	if err != nil {
		t.Fatal(err)
	}
	want := []kgo.Record{
		{Topic: topic, Partition: 3, Key: []byte("a"), Value: []byte("3")},
		{Topic: topic, Partition: 3, Key: []byte("b"), Value: nil},
	}
	if fmt.Sprint(recs) != fmt.Sprint(want) || recs[1].Value != nil {
		t.Fatalf("Changelog = %v, want %v", recs, want)
	}
	// Scan sees the open transaction, within the store's range only.
	mustPut(t, seen, "a", "other-store")
	var keys []string
	if err := counts.Scan(nil, func(k, v []byte) bool { keys = append(keys, string(k)+"="+string(v)); return true }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(keys) != "[a=3]" {
		t.Fatalf("Scan = %v", keys)
	}

	// Commit without an offset for a dirty store fails and discards.
	if err := task.Commit(map[string]int64{topic: 41}); err == nil {
		t.Fatal("Commit without the seen store's offset succeeded")
	}
	if _, ok := mustGet(t, counts, "a"); ok {
		t.Fatal("failed commit left the batch")
	}

	// Commit applies data and checkpoints together.
	mustPut(t, counts, "a", "3")
	mustPut(t, seen, "z", "1")
	if err := task.Commit(map[string]int64{topic: 41, ChangelogTopic(testApp, "seen"): 7}); err != nil {
		t.Fatal(err)
	}
	if v, ok := committedGet(t, db, "counts", 3, "a"); !ok || v != "3" {
		t.Fatalf("committed a = %q,%v", v, ok)
	}
	if off, ok, _ := task.Checkpoint("counts"); !ok || off != 42 {
		t.Fatalf("checkpoint counts = %d,%v want 42", off, ok)
	}
	if off, ok, _ := task.Checkpoint("seen"); !ok || off != 8 {
		t.Fatalf("checkpoint seen = %d,%v want 8", off, ok)
	}
	if recs, _ := task.Changelog(); len(recs) != 0 {
		t.Fatalf("changelog after commit = %v", recs)
	}
	// A tombstone commits as a delete.
	if err := counts.Delete([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := task.Commit(map[string]int64{topic: 42}); err != nil {
		t.Fatal(err)
	}
	if _, ok := committedGet(t, db, "counts", 3, "a"); ok {
		t.Fatal("deleted key still committed")
	}
	// Other partitions are other ranges.
	if _, ok := committedGet(t, db, "seen", 4, "z"); ok {
		t.Fatal("partition 4 sees partition 3")
	}
	if _, err := db.OpenTask(3, "counts"); !errors.Is(err, ErrTaskOpen) {
		t.Fatalf("second OpenTask = %v, want ErrTaskOpen", err)
	}
	if err := task.Commit(map[string]int64{"other.topic": 1}); !errors.Is(err, ErrUnknownStore) {
		t.Fatalf("Commit with an unknown topic = %v", err)
	}
}

func TestScanPrefixLimit(t *testing.T) {
	db := openDB(t, t.TempDir())
	task := openTask(t, db, 0, "s")
	s := task.Store("s")
	for _, k := range []string{"a1", "a2", "a3", "b1", "\xff"} {
		mustPut(t, s, k, "v"+k)
	}
	if err := task.Commit(map[string]int64{ChangelogTopic(testApp, "s"): 0}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		prefix string
		limit  int
		want   string
	}{
		{"a", 0, "[a1 a2 a3]"},
		{"a", 2, "[a1 a2]"},
		{"", 0, "[a1 a2 a3 b1 \xff]"},
		{"c", 0, "[]"},
		{"\xff", 0, "[\xff]"},
	}
	settleAll(t, db)
	for _, tt := range tests {
		kvs, err := db.Scan("s", 0, []byte(tt.prefix), tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, kv := range kvs {
			keys = append(keys, string(kv.Key))
			if string(kv.Value) != "v"+string(kv.Key) {
				t.Errorf("value of %q = %q", kv.Key, kv.Value)
			}
		}
		if got := fmt.Sprint(keys); got != tt.want && !(tt.want == "[]" && keys == nil) {
			t.Errorf("Scan(%q, %d) = %s, want %s", tt.prefix, tt.limit, got, tt.want)
		}
	}
}

func TestCheckpointSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(Options{Dir: dir, AppID: testApp, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	task := openTask(t, db, 1, "s")
	mustPut(t, task.Store("s"), "k", "v")
	if err := task.Commit(map[string]int64{ChangelogTopic(testApp, "s"): 99}); err != nil {
		t.Fatal(err)
	}
	if err := task.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, dir)
	if db.Wiped() {
		t.Fatal("healthy state dir was wiped")
	}
	if off, ok, err := db.Checkpoint("s", 1); err != nil || !ok || off != 100 {
		t.Fatalf("checkpoint after reopen = %d,%v,%v want 100", off, ok, err)
	}
	if v, ok := committedGet(t, db, "s", 1, "k"); !ok || v != "v" {
		t.Fatalf("k after reopen = %q,%v", v, ok)
	}
}

// corrupt overwrites every file in dir but LOCK with garbage.
func corrupt(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || e.Name() == "LOCK" {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), bytes.Repeat([]byte("garbage!"), 64), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// --- Kafka-backed tests ---

// newCluster gives the test a cluster (Apache Kafka with VELTRIX_TEST_KAFKA,
// else kfake) with the changelog topics, compacted like the ones
// EnsureChangelogs creates, and the client options to reach it.
func newCluster(t testing.TB, partitions int32, changelogs ...string) (*testbroker.Broker, []kgo.Opt) {
	t.Helper()
	var opts []testbroker.Option
	for _, topic := range changelogs {
		opts = append(opts, testbroker.WithTopicConfig(topic, partitions, map[string]string{"cleanup.policy": "compact"}))
	}
	b := testbroker.New(t, opts...)
	return b, []kgo.Opt{kgo.SeedBrokers(b.Addrs()...)}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// txnProducer produces records in transactions to explicit partitions.
func txnProducer(t testing.TB, kopts []kgo.Opt, id string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append(kopts,
		kgo.TransactionalID(id),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0),
	)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produceTxn produces recs in one transaction and commits or aborts it,
// returning the last offset per topic.
func produceTxn(t testing.TB, ctx context.Context, cl *kgo.Client, commit bool, recs ...*kgo.Record) map[string]int64 {
	t.Helper()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	last := make(map[string]int64)
	results := cl.ProduceSync(ctx, recs...)
	if err := results.FirstErr(); err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		last[r.Record.Topic] = max(last[r.Record.Topic], r.Record.Offset)
	}
	end := kgo.TryAbort
	if commit {
		end = kgo.TryCommit
	}
	if err := cl.EndTransaction(ctx, end); err != nil {
		t.Fatal(err)
	}
	return last
}

func rec(topic string, p int32, k, v string) *kgo.Record {
	r := &kgo.Record{Topic: topic, Partition: p, Key: []byte(k)}
	if v != "" {
		r.Value = []byte(v)
	}
	return r
}

func toKgo(recs []kgo.Record) []*kgo.Record {
	out := make([]*kgo.Record, len(recs))
	for i := range recs {
		out[i] = &recs[i]
	}
	return out
}

func TestRestore(t *testing.T) {
	topic := ChangelogTopic(testApp, "s")
	_, kopts := newCluster(t, 2, topic)
	ctx := testCtx(t)
	prod := txnProducer(t, kopts, "restore-test")

	produceTxn(t, ctx, prod, true, rec(topic, 1, "k1", "a"), rec(topic, 1, "k2", "b"), rec(topic, 0, "k9", "other-partition"))
	produceTxn(t, ctx, prod, false, rec(topic, 1, "k1", "ABORTED"), rec(topic, 1, "k3", "ABORTED"))
	produceTxn(t, ctx, prod, true, rec(topic, 1, "k2", ""), rec(topic, 1, "k4", "d"))

	adm := kadm.NewClient(prod)
	lso := func() int64 {
		ends, err := adm.ListCommittedOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		o, _ := ends.Lookup(topic, 1)
		return o.Offset
	}

	db := openDB(t, t.TempDir())
	task := openTask(t, db, 1, "s")
	var first []int64
	err := task.Restore(ctx, RestoreOptions{Kafka: kopts, IdleTimeout: 10 * time.Second, Progress: func(store string, n int64) {
		first = append(first, n)
	}})
	if err != nil {
		t.Fatal(err)
	}
	s := task.Store("s")
	for k, want := range map[string]string{"k1": "a", "k4": "d"} {
		if v, ok := mustGet(t, s, k); !ok || v != want {
			t.Errorf("%s = %q,%v want %q", k, v, ok, want)
		}
	}
	for _, k := range []string{"k2", "k3", "k9"} {
		if v, ok := mustGet(t, s, k); ok {
			t.Errorf("%s = %q, want absent", k, v)
		}
	}
	end := lso()
	if off, ok, _ := task.Checkpoint("s"); !ok || off != end {
		t.Fatalf("checkpoint = %d,%v want the LSO %d", off, ok, end)
	}
	if len(first) < 2 || first[0] != end || first[len(first)-1] != 0 {
		t.Fatalf("progress = %v, want %d ... 0", first, end)
	}

	// A restore from the checkpoint reads only the tail: a local change to
	// a head key survives it, the new tail record arrives.
	if err := db.pdb.Set(dataKey("s", 1, []byte("k1")), []byte("local"), nil); err != nil {
		t.Fatal(err)
	}
	produceTxn(t, ctx, prod, true, rec(topic, 1, "k5", "e"))
	var second []int64
	if err := task.Restore(ctx, RestoreOptions{Kafka: kopts, Progress: func(_ string, n int64) { second = append(second, n) }}); err != nil {
		t.Fatal(err)
	}
	if v, _ := mustGet(t, s, "k1"); v != "local" {
		t.Errorf("k1 = %q: the restore re-read the head", v)
	}
	if v, ok := mustGet(t, s, "k5"); !ok || v != "e" {
		t.Errorf("k5 = %q,%v", v, ok)
	}
	if second[0] != lso()-end {
		t.Errorf("tail restore started with %d remaining, want %d", second[0], lso()-end)
	}
	if off, _, _ := task.Checkpoint("s"); off != lso() {
		t.Errorf("checkpoint = %d, want %d", off, lso())
	}
}

// TestEngineCycle drives a task the way the engine does: writes, changelog
// produced in the Kafka transaction, Commit with the produced offsets; then an
// unknown outcome (committed in Kafka, aborted locally) caught up by Restore,
// and a corrupt state dir restored in full.
func TestEngineCycle(t *testing.T) {
	topic := ChangelogTopic(testApp, "counts")
	_, kopts := newCluster(t, 4, topic)
	ctx := testCtx(t)
	prod := txnProducer(t, kopts, "engine")
	dir := t.TempDir()
	db, err := Open(Options{Dir: dir, AppID: testApp, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	task := openTask(t, db, 2, "counts")
	if err := task.Restore(ctx, RestoreOptions{Kafka: kopts}); err != nil {
		t.Fatal(err)
	}
	s := task.Store("counts")

	cycle := func(localCommit bool, kv ...string) {
		for i := 0; i < len(kv); i += 2 {
			mustPut(t, s, kv[i], kv[i+1])
		}
		recs, err := task.Changelog()
		if err != nil {
			t.Fatal(err)
		}
		offsets := produceTxn(t, ctx, prod, true, toKgo(recs)...)
		if localCommit {
			if err := task.Commit(offsets); err != nil {
				t.Fatal(err)
			}
		} else {
			task.Abort() // the outcome was unknown to the engine
			if err := task.Restore(ctx, RestoreOptions{Kafka: kopts}); err != nil {
				t.Fatal(err)
			}
		}
	}
	cycle(true, "x", "1", "y", "1", "x", "2")
	cycle(false, "x", "3", "z", "1")
	cycle(true, "y", "5", "empty", "")
	want := map[string]string{"x": "3", "y": "5", "z": "1", "empty": ""}
	check := func(db *DB) {
		t.Helper()
		for k, w := range want {
			if v, ok := committedGet(t, db, "counts", 2, k); !ok || v != w {
				t.Errorf("%s = %q,%v want %q", k, v, ok, w)
			}
		}
	}
	check(db)
	// The task reads the same through its store: the restore after the
	// unknown outcome replaced what its read cache held (x was 2).
	for k, w := range want {
		if v, ok := mustGet(t, s, k); !ok || v != w {
			t.Errorf("store read %s = %q,%v want %q", k, v, ok, w)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	corrupt(t, dir)
	db = openDB(t, dir)
	if !db.Wiped() {
		t.Fatal("corrupt state dir not wiped")
	}
	if _, ok := committedGet(t, db, "counts", 2, "x"); ok {
		t.Fatal("data survived the wipe")
	}
	task = openTask(t, db, 2, "counts")
	if err := task.Restore(ctx, RestoreOptions{Kafka: kopts}); err != nil {
		t.Fatal(err)
	}
	check(db)
}

func TestCheckpointOutsideLogRestoresInFull(t *testing.T) {
	topic := ChangelogTopic(testApp, "s")
	_, kopts := newCluster(t, 1, topic)
	ctx := testCtx(t)
	produceTxn(t, ctx, txnProducer(t, kopts, "p"), true, rec(topic, 0, "a", "1"))

	db := openDB(t, t.TempDir())
	task := openTask(t, db, 0, "s")
	// A checkpoint far beyond the end (the topic was recreated) and a stale key.
	mustPut(t, task.Store("s"), "stale", "x")
	if err := task.Commit(map[string]int64{topic: 1000}); err != nil {
		t.Fatal(err)
	}
	if err := task.Restore(ctx, RestoreOptions{Kafka: kopts}); err != nil {
		t.Fatal(err)
	}
	if _, ok := mustGet(t, task.Store("s"), "stale"); ok {
		t.Error("stale key survived a full restore")
	}
	if v, ok := mustGet(t, task.Store("s"), "a"); !ok || v != "1" {
		t.Errorf("a = %q,%v", v, ok)
	}
}

func TestEnsureChangelogs(t *testing.T) {
	b := testbroker.New(t,
		testbroker.WithTopicConfig("app.wrongparts.changelog", 2, map[string]string{"cleanup.policy": "compact"}),
		testbroker.WithTopicConfig("app.deletepolicy.changelog", 3, nil),
		testbroker.WithTopicConfig("app.windowed.changelog", 3, map[string]string{"cleanup.policy": "compact,delete"}),
	)
	ctx := testCtx(t)
	adm := b.Admin()

	// Creates missing ones, compacted, with the partition count.
	if err := EnsureChangelogs(ctx, adm, map[string]int32{"app.new.changelog": 3, "app.windowed.changelog": 3}); err != nil {
		t.Fatalf("create: %v", err)
	}
	cfg, err := adm.DescribeTopicConfigs(ctx, "app.new.changelog")
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := cfg.On("app.new.changelog", nil)
	compact := false
	for _, c := range rc.Configs {
		compact = compact || (c.Key == "cleanup.policy" && c.MaybeValue() == "compact")
	}
	if !compact {
		t.Errorf("created changelog is not compacted: %+v", rc.Configs)
	}
	// Accepts the correct ones again.
	if err := EnsureChangelogs(ctx, adm, map[string]int32{"app.new.changelog": 3}); err != nil {
		t.Fatalf("validate: %v", err)
	}

	tests := []struct {
		name   string
		topics map[string]int32
		want   int // VX4003 problems
	}{
		{"wrong partition count", map[string]int32{"app.new.changelog": 4}, 1},
		{"existing wrong partition count", map[string]int32{"app.wrongparts.changelog": 3}, 1},
		{"not compacted", map[string]int32{"app.deletepolicy.changelog": 3}, 1},
		{"all problems at once", map[string]int32{"app.wrongparts.changelog": 3, "app.deletepolicy.changelog": 1, "app.new.changelog": 3}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := EnsureChangelogs(ctx, adm, tt.topics)
			list := diag.AsList(err)
			if len(list) != tt.want {
				t.Fatalf("got %d problems (%v), want %d", len(list), err, tt.want)
			}
			for _, e := range list {
				if e.Code != diag.ChangelogInvalid || e.Hint == "" {
					t.Errorf("problem %v: want code %s with a hint", e, diag.ChangelogInvalid)
				}
			}
		})
	}
}

func TestPartitionForMatchesKgo(t *testing.T) {
	kp := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	keys := [][]byte{{}, []byte("a"), []byte("ab"), []byte("abc"), []byte("abcd"), []byte("order-42"), []byte("customer-\xff\x00\x80"), bytes.Repeat([]byte("x"), 1001)}
	for i := range 2000 {
		keys = append(keys, fmt.Appendf(nil, "key-%d", i))
	}
	for _, n := range []int32{1, 2, 3, 6, 12, 100, 1024} {
		for _, k := range keys {
			if got, want := PartitionFor(k, n), int32(kp.Partition(&kgo.Record{Key: k}, int(n))); got != want {
				t.Fatalf("PartitionFor(%q, %d) = %d, kgo says %d", k, n, got, want)
			}
		}
	}
}

// failingOpenFS fails every file open with err, as a machine out of file
// descriptors (or a disk that refuses) does.
type failingOpenFS struct {
	vfs.FS
	err error
}

func (f failingOpenFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: f.err}
}

// A failure of the machine when opening the state (too many open files,
// permission denied, a full disk) is an error that keeps the data; only
// corrupt or foreign data is wiped.
func TestOpenKeepsStateOnMachineErrors(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.EACCES, syscall.ENOSPC} {
		t.Run(errno.Error(), func(t *testing.T) {
			dir := t.TempDir()
			db := openDB(t, dir)
			task := openTask(t, db, 1, "s")
			mustPut(t, task.Store("s"), "k", "v")
			if err := task.Commit(map[string]int64{ChangelogTopic(testApp, "s"): 7}); err != nil {
				t.Fatal(err)
			}
			if err := errors.Join(task.Close(), db.Close()); err != nil {
				t.Fatal(err)
			}

			_, err := Open(Options{Dir: dir, AppID: testApp, Logger: discard, FS: failingOpenFS{vfs.Default, errno}})
			if !errors.Is(err, errno) {
				t.Fatalf("open with %v: err %v, want it named", errno, err)
			}
			db = openDB(t, dir)
			if db.Wiped() {
				t.Fatal("the state was wiped after a machine error")
			}
			if v, ok := committedGet(t, db, "s", 1, "k"); !ok || v != "v" {
				t.Fatalf("k = %q,%v after the failed open, want v", v, ok)
			}
		})
	}
}

// A restore whose fetches stall for longer than its idle timeout (a slow or
// throttled broker, a leader moving) waits for the records: it finishes only
// when its position reached the end, never by taking the silence for an
// empty tail. (The stall is injected on the dev broker; on Apache Kafka the
// test checks the same restore without it.)
func TestRestoreWaitsOutStalledFetches(t *testing.T) {
	topic := ChangelogTopic(testApp, "s")
	b, kopts := newCluster(t, 1, topic)
	ctx := testCtx(t)
	prod := txnProducer(t, kopts, "stall-test")
	produceTxn(t, ctx, prod, true, rec(topic, 0, "k1", "a"), rec(topic, 0, "k2", "b"))

	if fake := b.Fake(); fake != nil {
		stallUntil := time.Now().Add(2 * time.Second)
		fake.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
			fake.KeepControl()
			if wait := time.Until(stallUntil); wait > 0 {
				fake.SleepControl(func() { time.Sleep(wait) })
			}
			return nil, nil, false
		})
	}
	db := openDB(t, t.TempDir())
	task := openTask(t, db, 0, "s")
	if err := task.Restore(ctx, RestoreOptions{Kafka: kopts, IdleTimeout: 200 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"k1": "a", "k2": "b"} {
		if v, ok := mustGet(t, task.Store("s"), k); !ok || v != want {
			t.Errorf("%s = %q,%v after the restore, want %q", k, v, ok, want)
		}
	}
}

// A restore that starts while the previous owner's last transaction on the
// changelog is still open (committed a moment later, as when its markers
// are not written yet) waits for it to end and restores its records: the
// group already counts that transaction's input as processed.
func TestRestoreWaitsForThePreviousOwnersTransaction(t *testing.T) {
	topic := ChangelogTopic(testApp, "s")
	_, kopts := newCluster(t, 1, topic)
	ctx := testCtx(t)
	prod := txnProducer(t, kopts, "previous-owner")
	produceTxn(t, ctx, prod, true, rec(topic, 0, "k1", "a"))
	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := prod.ProduceSync(ctx, rec(topic, 0, "k2", "b")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	committed := make(chan error, 1)
	go func() {
		time.Sleep(500 * time.Millisecond)
		committed <- prod.EndTransaction(ctx, kgo.TryCommit)
	}()
	db := openDB(t, t.TempDir())
	task := openTask(t, db, 0, "s")
	if err := task.Restore(ctx, RestoreOptions{Kafka: kopts}); err != nil {
		t.Fatal(err)
	}
	if err := <-committed; err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"k1": "a", "k2": "b"} {
		if v, ok := mustGet(t, task.Store("s"), k); !ok || v != want {
			t.Errorf("%s = %q,%v after the restore, want %q", k, v, ok, want)
		}
	}
}

// A transaction that stays open on the changelog past the settle timeout
// fails the restore with the partition, the offsets and where to read on:
// such a transaction is a hanging one (its coordinator no longer knows it)
// and needs an operator; restoring around it could lose committed records.
func TestRestoreFailsOnAHangingTransaction(t *testing.T) {
	topic := ChangelogTopic(testApp, "s")
	_, kopts := newCluster(t, 1, topic)
	ctx := testCtx(t)
	prod := txnProducer(t, kopts, "hanging")
	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := prod.ProduceSync(ctx, rec(topic, 0, "k1", "a")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, t.TempDir())
	task := openTask(t, db, 0, "s")
	err := task.Restore(ctx, RestoreOptions{Kafka: kopts, SettleTimeout: 300 * time.Millisecond})
	if err == nil {
		t.Fatal("restore succeeded over an open transaction")
	}
	for _, want := range []string{"restore partition 0", topic, "last stable offset 0, high watermark 1", "kafka-transactions.sh find-hanging", "docs/operations.md"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// A local copy that has been out of sync with its changelog for longer than
// the changelog's delete.retention.ms may hold keys whose tombstones
// compaction has since removed: a restore from its checkpoint would never
// see them deleted. Such a task is restored in full; a recent one only
// reads the tail.
func TestOldCheckpointRestoresInFull(t *testing.T) {
	topic := ChangelogTopic(testApp, "s")
	_, kopts := newCluster(t, 1, topic)
	ctx := testCtx(t)
	prod := txnProducer(t, kopts, "old-checkpoint")
	produceTxn(t, ctx, prod, true, rec(topic, 0, "k1", "a"))

	for _, tc := range []struct {
		name string
		away time.Duration
		kept bool // the local-only key survives the restore
	}{
		{"an hour away: the tail is enough", time.Hour, true},
		{"longer away than delete.retention.ms (24h): restored in full", 25 * time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
			dir := t.TempDir()
			db, err := Open(Options{Dir: dir, AppID: testApp, Logger: discard, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			task := openTask(t, db, 0, "s")
			if err := task.Restore(ctx, RestoreOptions{Kafka: kopts}); err != nil {
				t.Fatal(err)
			}
			if err := task.Close(); err != nil {
				t.Fatal(err)
			}
			// A key this copy still has, whose tombstone (written while
			// the task was elsewhere) compaction has removed.
			if err := db.pdb.Set(dataKey("s", 0, []byte("gone")), []byte("stale"), nil); err != nil {
				t.Fatal(err)
			}
			now = now.Add(tc.away)
			task = openTask(t, db, 0, "s")
			if err := task.Restore(ctx, RestoreOptions{Kafka: kopts}); err != nil {
				t.Fatal(err)
			}
			if _, ok := mustGet(t, task.Store("s"), "gone"); ok != tc.kept {
				t.Errorf("local-only key present after the restore: %v, want %v", ok, tc.kept)
			}
			if v, ok := mustGet(t, task.Store("s"), "k1"); !ok || v != "a" {
				t.Errorf("k1 = %q,%v, want a", v, ok)
			}
			_ = task.Close()
		})
	}
}
