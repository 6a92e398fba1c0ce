package topology

import (
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/state"
	"github.com/veltrix/veltrix/processors"
)

// stateTask is a processors.ProcessorContext over a state.Task, as the engine's task is:
// outputs are counted, or kept when keep is set (the repartition records).
type stateTask struct {
	st     *state.Task
	keep   string // topic whose outputs are kept
	kept   []processors.Output
	n      int
	stream time.Time
}

func (t *stateTask) Emit(o processors.Output) {
	if o.Topic == t.keep {
		t.kept = append(t.kept, o)
		return
	}
	t.n++
}
func (t *stateTask) Now() time.Time                     { return t.stream }
func (t *stateTask) Store(name string) processors.Store { return t.st.Store(name) }
func (t *stateTask) StreamTime() time.Time              { return t.stream }
func (t *stateTask) commit(off map[string]int64) error {
	if !t.st.Dirty() {
		return nil
	}
	recs, err := t.st.Changelog()
	if err != nil {
		return err
	}
	for _, r := range recs {
		off[r.Topic]++
	}
	return t.st.Commit(off)
}

// openStateDB opens a state database in a temporary directory, closed at
// the end of the test.
func openStateDB(tb testing.TB, app string) *state.DB {
	tb.Helper()
	db, err := state.Open(state.Options{Dir: tb.TempDir(), AppID: app, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

// benchOrderEvent is the value of order i, as the benchmark program writes
// it (about 200 bytes).
func benchOrderEvent(i, customers int) []byte {
	b := fmt.Appendf(nil, `{"type":"order.created","order_id":"o-%07d","customer_id":"c-%06d","total":`, i, (i*7919)%customers)
	b = strconv.AppendFloat(b, float64(i%100_000)/100, 'f', 2, 64)
	return append(b, `,"currency":"EUR","items":3,"channel":"web","country":"DE","created_at":"2025-11-26T10:00:00.000Z","shipping":"standard","coupon":null}`...)
}

// BenchmarkAggregateRMW runs the benchmark program's aggregate rule (rekey by
// customer, count + sum with emit: on_update, to) through Process with the
// state of 6 tasks in a Pebble state dir: each input record goes through the
// rekey, its repartition record through the aggregate of the task its key
// hashes to, and every 25,000 records (a 100 ms commit interval at 250k/s)
// each task's changelog is built and its transaction committed, as the
// engine does. 100,000 customers, so most keys are updated a few times per
// transaction and the store holds them all.
func BenchmarkAggregateRMW(b *testing.B) {
	const (
		tasks     = 6
		customers = 100_000
		perTxn    = 25_000
	)
	top, err := Build(parseConfig(b, "veltrix.yaml", `
app: {id: bench}
rules:
  - name: agg
    from: orders
    steps:
      - rekey: event.customer_id
      - aggregate: {store: counts, count: true, sum: event.total, emit: on_update}
      - to: out
`))
	if err != nil {
		b.Fatal(err)
	}
	db := openStateDB(b, "bench")
	repart := RepartitionTopic("bench", "agg")
	var ts [tasks]*stateTask
	for p := range ts {
		st, err := db.OpenTask(int32(p), top.StoreNames()...)
		if err != nil {
			b.Fatal(err)
		}
		ts[p] = &stateTask{st: st, keep: repart}
	}
	// Records are pre-built: the benchmark measures processing and state,
	// not the generation of its input.
	const distinct = customers
	inputs := make([]*kgo.Record, distinct)
	for i := range inputs {
		inputs[i] = &kgo.Record{Topic: "orders", Key: fmt.Appendf(nil, "o-%07d", i), Value: benchOrderEvent(i, customers), Timestamp: time.UnixMilli(1_700_000_000_000)}
	}
	offsets := make([]map[string]int64, tasks)
	for i := range offsets {
		offsets[i] = map[string]int64{}
	}
	rec := &kgo.Record{Topic: repart}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		in := inputs[(i*40503)%distinct] // spread customers over the loop
		in.Offset = int64(i)
		src := ts[i%tasks]
		if err := top.Process(src, in, nil); err != nil {
			b.Fatal(err)
		}
		for _, o := range src.kept {
			p := state.PartitionFor(o.Key, tasks)
			rec.Key, rec.Value, rec.Partition, rec.Offset, rec.Timestamp = o.Key, o.Value, p, int64(i), in.Timestamp
			if err := top.Process(ts[p], rec, nil); err != nil {
				b.Fatal(err)
			}
		}
		clear(src.kept)
		src.kept = src.kept[:0]
		if i%perTxn == perTxn-1 {
			for p, t := range ts {
				if err := t.commit(offsets[p]); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	out := 0
	for _, t := range ts {
		out += t.n
	}
	if out != b.N {
		b.Fatalf("%d outputs for %d records", out, b.N)
	}
}
