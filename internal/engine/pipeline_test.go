package engine

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/state"
	"github.com/veltrix/veltrix/internal/topology"
	"github.com/veltrix/veltrix/pkg/diag"
)

// newTestPipeline is a pipeline over one rule reading "in" (on_error: fail)
// with the given steps, its outputs collected; its tasks have no stores, so
// no cluster is needed.
func newTestPipeline(t *testing.T, workers int, steps string) (*pipeline, *collector) {
	t.Helper()
	dir := t.TempDir()
	yaml := `app: {id: p, state_dir: ` + filepath.Join(dir, "state") + `}
kafka: {brokers: ["127.0.0.1:1"]}
processing: {workers: ` + strconv.Itoa(workers) + `}
rules:
  - name: r
    from: in
    on_error: fail
    steps:
` + steps
	path := filepath.Join(dir, "veltrix.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, config.WithEnv(func(string) (string, bool) { return "", false }))
	if err != nil {
		t.Fatal(err)
	}
	topo, err := topology.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := New(cfg, topo)
	c := &collector{}
	return newPipeline(e, newTasks(e, nil, nil, state.RestoreOptions{}), c.produce), c
}

// seqValue is a record value: its partition and its number in it.
type seqValue struct {
	P int32 `json:"p"`
	N int   `json:"n"`
	D int   `json:"d"` // 0 fails the failure test's filter
}

// pollOf is one poll: for each partition, in partition order, n records
// numbered on from next[partition].
func pollOf(next map[int32]int, counts map[int32]int) kgo.Fetches {
	var ps []kgo.FetchPartition
	for _, p := range slices.Sorted(maps.Keys(counts)) {
		n := counts[p]
		var recs []*kgo.Record
		for range n {
			v, _ := json.Marshal(seqValue{P: p, N: next[p], D: 1})
			recs = append(recs, &kgo.Record{Topic: "in", Partition: p, Offset: int64(next[p]), Value: v})
			next[p]++
		}
		ps = append(ps, kgo.FetchPartition{Partition: p, Records: recs})
	}
	return kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: "in", Partitions: ps}}}}
}

// collector is a produce function keeping the outputs.
type collector struct {
	mu  sync.Mutex
	out []seqValue
}

func (c *collector) produce(r *kgo.Record) {
	var v seqValue
	_ = json.Unmarshal(r.Value, &v)
	c.mu.Lock()
	c.out = append(c.out, v)
	c.mu.Unlock()
}

func TestPipelineRunsEveryTaskInOrder(t *testing.T) {
	counts := map[int32]int{0: 100, 1: 37, 2: 250, 5: 3}
	for _, workers := range []int{1, 2, 4} {
		t.Run(strconv.Itoa(workers)+" workers", func(t *testing.T) {
			pl, c := newTestPipeline(t, workers, "      - to: out\n")
			next := map[int32]int{}
			for range 20 {
				pl.room(1000) // returns at once or when the tasks caught up
				if err := pl.dispatch(context.Background(), pollOf(next, counts)); err != nil {
					t.Fatal(err)
				}
			}
			if err := pl.drain(); err != nil {
				t.Fatal(err)
			}
			if pl.inflight != 0 || len(pl.queues) != 0 {
				t.Fatalf("after drain: %d records in flight, %d queues", pl.inflight, len(pl.queues))
			}
			// Each partition's records came out once each, in order.
			got := map[int32]int{}
			for _, v := range c.out {
				if v.N != got[v.P] {
					t.Fatalf("partition %d: record %d after %d", v.P, v.N, got[v.P]-1)
				}
				got[v.P]++
			}
			for p, n := range counts {
				if got[p] != 20*n {
					t.Errorf("partition %d: %d outputs, want %d", p, got[p], 20*n)
				}
			}
		})
	}
}

// TestPipelineProducesABatchAtATime: each batch's outputs reach the
// producer together, in order, never mixed with another task's: workers
// producing record by record kept moving the client's producer lock between
// cores.
func TestPipelineProducesABatchAtATime(t *testing.T) {
	const n = 500 // records per task per poll
	pl, c := newTestPipeline(t, 2, "      - to: out\n")
	next := map[int32]int{}
	for range 10 {
		pl.room(4 * n)
		if err := pl.dispatch(context.Background(), pollOf(next, map[int32]int{0: n, 1: n, 2: n, 3: n})); err != nil {
			t.Fatal(err)
		}
	}
	if err := pl.drain(); err != nil {
		t.Fatal(err)
	}
	if len(c.out) != 40*n {
		t.Fatalf("%d outputs, want %d", len(c.out), 40*n)
	}
	for i := 0; i < len(c.out); i += n {
		first := c.out[i]
		for j, v := range c.out[i : i+n] {
			if v.P != first.P || v.N != first.N+j {
				t.Fatalf("output %d is record %d of partition %d inside a batch of partition %d from record %d",
					i+j, v.N, v.P, first.P, first.N)
			}
		}
	}
}

func TestPipelineStopsAtAFailureAndResets(t *testing.T) {
	pl, c := newTestPipeline(t, 2, "      - filter: 'event.d != 0.0 || event.nope == 1.0'\n      - to: out\n")
	poll := pollOf(map[int32]int{}, map[int32]int{0: 50, 1: 50})
	// Record 10 of partition 0 (the first listed) reads a missing field:
	// on_error fail.
	poll[0].Topics[0].Partitions[0].Records[10].Value = []byte(`{"p":0,"n":10,"d":0}`)
	if err := pl.dispatch(context.Background(), poll); err != nil && !isMissingField(err) {
		t.Fatalf("dispatch: %v", err)
	}
	err := pl.drain()
	if !isMissingField(err) {
		t.Fatalf("drain = %v, want the rule's missing-field error", err)
	}
	before := 0
	for _, v := range c.out {
		if v.P == 0 && v.N >= 10 {
			t.Fatalf("partition 0 went on after its failing record: %+v", v)
		}
		if v.P == 0 {
			before++
		}
	}
	if before != 10 {
		t.Errorf("partition 0: %d outputs before its failing record, want 10", before)
	}
	// The failure belonged to the drained transaction: the pipeline starts
	// clean, and room does not wait for records that will never finish.
	pl.room(1)
	if err := pl.dispatch(context.Background(), pollOf(map[int32]int{}, map[int32]int{3: 5})); err != nil {
		t.Fatal(err)
	}
	if err := pl.drain(); err != nil {
		t.Fatalf("drain after reset = %v", err)
	}
}

func isMissingField(err error) bool {
	var d *diag.Error
	return errors.As(err, &d) && d.Code == diag.MissingField
}
