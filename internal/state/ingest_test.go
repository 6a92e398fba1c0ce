package state

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRestoreIngestedRunsMatchBatches restores the same changelogs (two
// stores, keys out of order, overwrites and deletes, aborted transactions)
// through ingested tables (tiny runs) and through batches, in full and then
// as catch-ups over the restored data, and checks both against the last
// committed value of every key.
func TestRestoreIngestedRunsMatchBatches(t *testing.T) {
	ta, tb := ChangelogTopic(testApp, "a"), ChangelogTopic(testApp, "b")
	_, kopts := newCluster(t, 2, ta, tb)
	ctx := testCtx(t)
	prod := txnProducer(t, kopts, "ingest-test")

	want := map[string]map[string]string{"a": {}, "b": {}}
	rng := rand.New(rand.NewPCG(1, 2))
	produce := func(txns int) {
		for range txns {
			var recs []*kgo.Record
			commit := rng.IntN(5) != 0
			for range 40 {
				store, topic := "a", ta
				if rng.IntN(2) == 0 {
					store, topic = "b", tb
				}
				k := fmt.Sprintf("k%03d", rng.IntN(120))
				v := ""
				if rng.IntN(4) != 0 {
					v = fmt.Sprintf("v%d", rng.Int())
				}
				recs = append(recs, rec(topic, 1, k, v))
				if commit {
					if v == "" {
						delete(want[store], k)
					} else {
						want[store][k] = v
					}
				}
			}
			produceTxn(t, ctx, prod, commit, recs...)
		}
	}
	check := func(name string, task *Task) {
		t.Helper()
		for store, kvs := range want {
			s := task.Store(store)
			for i := range 120 {
				k := fmt.Sprintf("k%03d", i)
				v, ok := mustGet(t, s, k)
				if w, wok := kvs[k]; ok != wok || v != w {
					t.Errorf("%s: %s/%s = %q,%v want %q,%v", name, store, k, v, ok, w, wok)
				}
			}
		}
	}

	ingested := openTask(t, openDB(t, t.TempDir()), 1, "a", "b")
	batched := openTask(t, openDB(t, t.TempDir()), 1, "a", "b")
	// A full restore, then catch-ups from the checkpoints over the
	// restored data: later tables overwrite and delete keys of earlier
	// ones.
	for range 3 {
		produce(10)
		if err := ingested.Restore(ctx, RestoreOptions{Kafka: kopts, BatchBytes: 300, IdleTimeout: 10 * time.Second}); err != nil {
			t.Fatal(err)
		}
		if err := batched.Restore(ctx, RestoreOptions{Kafka: kopts, IdleTimeout: 10 * time.Second}); err != nil {
			t.Fatal(err)
		}
		check("ingested", ingested)
		check("batched", batched)
	}
	if n := ingested.db.pdb.Metrics().Ingest.Count; n < 3 {
		t.Fatalf("%d tables ingested, want one per restore at least", n)
	}
	if n := batched.db.pdb.Metrics().Ingest.Count; n != 0 {
		t.Fatalf("%d tables ingested by restores of small runs, want none", n)
	}
}
