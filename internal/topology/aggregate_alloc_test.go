package topology

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestAggregateUpdateAllocations counts the allocations of an update of an
// existing group by a key expression, on a record keyed by the group (as
// after a repartition): the result stays on the stack, the record's key
// serves as the store key and the store keeps the result's encoding, which
// is also the output value, without a copy. What remains is the group key
// read from the event and that encoding.
func TestAggregateUpdateAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts need the race detector off; make test runs this test without it")
	}
	top, err := Build(parseConfig(t, "veltrix.yaml", `
app: {id: allocs}
topics: {orders: {key: event.customer_id}}
rules:
  - name: agg
    from: orders
    steps:
      - aggregate: {store: counts, key: event.customer_id, count: true, sum: event.total, emit: on_update}
      - to: out
`))
	if err != nil {
		t.Fatal(err)
	}
	st, err := openStateDB(t, "allocs").OpenTask(0, top.StoreNames()...)
	if err != nil {
		t.Fatal(err)
	}
	tk := &stateTask{st: st}
	rec := &kgo.Record{Topic: "orders", Key: []byte("c-032598"), Value: benchOrderEvent(42, 100_000), Timestamp: time.UnixMilli(1_700_000_000_000)}
	if err := top.Process(tk, rec, nil); err != nil {
		t.Fatal(err)
	}
	n := testing.AllocsPerRun(200, func() {
		if err := top.Process(tk, rec, nil); err != nil {
			t.Fatal(err)
		}
	})
	if n > 2 {
		t.Errorf("an update of a group allocates %v times, want at most 2 (the group key and the encoding)", n)
	}
	v, ok, err := st.Store("counts").Get(rec.Key)
	if err != nil || !ok || !strings.HasPrefix(string(v), `{"count":202,"key":"c-032598",`) {
		t.Errorf("stored result = %s, %v, %v; want the count of 202 updates", v, ok, err)
	}
}
