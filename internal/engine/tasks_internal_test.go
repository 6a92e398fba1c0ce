package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/state"
	"github.com/veltrix/veltrix/internal/testbroker"
	"github.com/veltrix/veltrix/internal/topology"
)

// A member that missed a generation may have had its task taken over and
// given back with no callback here (franz-go's transactional session skips
// the revoke callback while a revocation is pending): the task catches up
// from its changelog before it is used, instead of going on with what this
// instance last saw. A sync without a partition takes its task away even
// with no revoke callback, so queries no longer read it here.
func TestTaskFollowsEverySyncedAssignment(t *testing.T) {
	changelog := state.ChangelogTopic("app", "s")
	b := testbroker.New(t, testbroker.WithTopicConfig(changelog, 2, map[string]string{"cleanup.policy": "compact"}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kopts := []kgo.Opt{kgo.SeedBrokers(b.Addrs()...)}
	e := New(&config.Config{App: config.App{ID: "app"}}, &topology.Topology{})
	db, err := state.Open(state.Options{Dir: filepath.Join(t.TempDir(), "stores"), AppID: "app", Logger: e.log})
	if err != nil {
		t.Fatal(err)
	}
	ts := newTasks(e, db, []string{"s"}, state.RestoreOptions{Kafka: kopts})
	defer ts.close()

	// Another owner's committed write to the task's changelog.
	other := func(value string) {
		t.Helper()
		cl, err := kgo.NewClient(append(kopts, kgo.TransactionalID("other-owner"), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: changelog, Partition: 1, Key: []byte("k"), Value: []byte(value)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
	read := func() string {
		t.Helper()
		pt, err := ts.get(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		v, _, err := pt.st.Store("s").Get([]byte("k"))
		if err != nil {
			t.Fatal(err)
		}
		return string(v)
	}

	cl := &member{id: "m1"}
	ts.attach(cl)
	synced := func(gen int32, ps ...int32) {
		t.Helper()
		cl.gen = gen
		ts.onSynced(map[string][]int32{"in": ps})
		if err := ts.sync(ctx); err != nil {
			t.Fatal(err)
		}
	}

	other("v1")
	synced(1, 1)
	if got := read(); got != "v1" {
		t.Fatalf("k = %q after the first restore, want v1", got)
	}
	if !ts.Owns(1) || len(cl.paused) != 0 {
		t.Fatalf("after the first sync: owns task 1 %v, paused %v; want owned and resumed", ts.Owns(1), cl.paused)
	}
	// This member missed generation 2 (its session expired): the
	// partition was another instance's, which wrote v2, and came back,
	// with no revoke callback here.
	other("v2")
	synced(3, 1)
	if got := read(); got != "v2" {
		t.Fatalf("k = %q after the task came back, want the other owner's v2", got)
	}
	// A sync without the partition takes it away, callback or not.
	synced(4)
	if ts.Owns(1) || ts.byPart[1] != nil {
		t.Fatalf("task 1 still owned (%v) or open (%v) after a sync without it", ts.Owns(1), ts.byPart[1] != nil)
	}
}

// member is a groupClient with a settable generation that keeps its paused
// partitions.
type member struct {
	id     string
	gen    int32
	paused map[string]map[int32]bool
}

func (m *member) GroupMetadata() (string, int32) { return m.id, m.gen }

func (m *member) PauseFetchPartitions(tps map[string][]int32) map[string][]int32 {
	if m.paused == nil {
		m.paused = map[string]map[int32]bool{}
	}
	for t, ps := range tps {
		if m.paused[t] == nil {
			m.paused[t] = map[int32]bool{}
		}
		for _, p := range ps {
			m.paused[t][p] = true
		}
	}
	return nil
}

func (m *member) ResumeFetchPartitions(tps map[string][]int32) {
	for t, ps := range tps {
		for _, p := range ps {
			delete(m.paused[t], p)
		}
		if len(m.paused[t]) == 0 {
			delete(m.paused, t)
		}
	}
}

// The client syncs with the group as soon as it is made, which may be
// before the session attaches it: the assignment waits for the client
// instead of using none (or the last session's).
func TestSyncBeforeAttachWaitsForTheClient(t *testing.T) {
	ts := newTasks(New(&config.Config{App: config.App{ID: "app"}}, &topology.Topology{}), nil, nil, state.RestoreOptions{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		ts.onSynced(map[string][]int32{"in": {1}})
	}()
	select {
	case <-done:
		t.Fatal("onSynced returned before a client was attached")
	case <-time.After(50 * time.Millisecond):
	}
	cl := &member{id: "m1", gen: 1}
	ts.attach(cl)
	<-done
	if !cl.paused["in"][1] {
		t.Fatalf("partition in/1 not paused on the attached client: %v", cl.paused)
	}
	ts.detach()
	if ts.cl != nil {
		t.Fatal("the client is still attached after detach")
	}
}

// The tasks a sync assigns restore together (up to processing.workers at
// once): each ends with its own partition's state, all their partitions
// are resumed, and what remains to restore adds up to zero.
func TestAssignedTasksRestoreTogether(t *testing.T) {
	const parts = 4
	changelog := state.ChangelogTopic("app", "s")
	b := testbroker.New(t, testbroker.WithTopicConfig(changelog, parts, map[string]string{"cleanup.policy": "compact"}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kopts := []kgo.Opt{kgo.SeedBrokers(b.Addrs()...)}
	cl, err := kgo.NewClient(append(kopts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for p := range int32(parts) {
		for i := range 500 {
			recs = append(recs, &kgo.Record{Topic: changelog, Partition: p, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "p%d-%d", p, i)})
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	e := New(&config.Config{App: config.App{ID: "app"}, Processing: config.Processing{Workers: 2}}, &topology.Topology{})
	db, err := state.Open(state.Options{Dir: filepath.Join(t.TempDir(), "stores"), AppID: "app", Logger: e.log})
	if err != nil {
		t.Fatal(err)
	}
	var left atomic.Int64
	ts := newTasks(e, db, []string{"s"}, state.RestoreOptions{Kafka: kopts,
		TaskProgress: func(p int32, store string, remaining int64) {
			left.Store(e.progress.restore(p, store, remaining, time.Now()))
		}})
	defer ts.close()
	m := &member{id: "m1", gen: 1}
	ts.attach(m)
	ts.onSynced(map[string][]int32{"in": {0, 1, 2, 3}})
	if err := ts.sync(ctx); err != nil {
		t.Fatal(err)
	}
	for p := range int32(parts) {
		pt := ts.byPart[p]
		if pt == nil || !ts.Owns(p) {
			t.Fatalf("task %d not open and owned after the sync", p)
		}
		v, _, err := pt.st.Store("s").Get([]byte("k499"))
		if err != nil || string(v) != fmt.Sprintf("p%d-499", p) {
			t.Fatalf("task %d: k499 = %q (%v), want p%d-499", p, v, err, p)
		}
	}
	if len(m.paused) != 0 {
		t.Fatalf("partitions still paused after their tasks opened: %v", m.paused)
	}
	if n := left.Load(); n != 0 {
		t.Fatalf("%d records left to restore over the tasks, want 0", n)
	}
}
