package engine

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/config"
	"github.com/veltrix/veltrix/pkg/state"
	"github.com/veltrix/veltrix/pkg/testbroker"
	"github.com/veltrix/veltrix/topology"
)

// A task assigned again while it is still open here must have been owned by
// another instance in between (its revocation was missed: franz-go's
// transactional session skips the revoke callback while a revocation is
// pending, and an assignment deletes a pending revocation): it catches up
// from its changelog before it is used, instead of going on with what this
// instance last saw.
func TestReassignedOpenTaskCatchesUp(t *testing.T) {
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

	other("v1")
	ts.onAssigned(map[string][]int32{"in": {1}})
	if err := ts.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "v1" {
		t.Fatalf("k = %q after the first restore, want v1", got)
	}
	// The partition went to another instance, which wrote v2, and came
	// back, without a revoke callback here.
	other("v2")
	ts.onAssigned(map[string][]int32{"in": {1}})
	if err := ts.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "v2" {
		t.Fatalf("k = %q after the task came back, want the other owner's v2", got)
	}
}
