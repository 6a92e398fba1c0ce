package topology

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/processors"
)

// memTask is a task with in-memory stores and a settable stream time.
type memTask struct {
	task
	stream time.Time
	stores map[string]*processors.MemStore
}

func newMemTask(top *Topology) *memTask {
	m := &memTask{stores: map[string]*processors.MemStore{}}
	for _, n := range top.StoreNames() {
		m.stores[n] = processors.NewMemStore()
	}
	return m
}

func (m *memTask) Store(name string) processors.Store {
	if s, ok := m.stores[name]; ok {
		return s
	}
	return nil
}
func (m *memTask) StreamTime() time.Time { return m.stream }

const punctuationConfig = `
app: {id: shop}
templates:
  hourly:
    steps:
      - aggregate: {store: hourly, window: {tumbling: 1h}, emit: on_close}
rules:
  - name: nested
    from: in
    on_error: dlq
    steps:
      - route:
          - when: event.kind == "a"
            steps:
              - use: hourly
              - to: {topic: out, key: '"n-" + key'}
  - name: failing
    from: in
    on_error: skip
    steps:
      - aggregate: {store: failing, window: {tumbling: 1h}, emit: on_close}
      - to: {topic: out, key: event.nope}
  - name: dlq
    from: in
    on_error: dlq
    steps:
      - aggregate: {store: to-dlq, window: {tumbling: 1h}, emit: on_close}
      - to: {topic: out, key: event.nope}
`

// TestPunctuate checks that window results go through the rest of the
// rule, nested steps included, with the rule's error policy.
func TestPunctuate(t *testing.T) {
	top, err := Build(parseConfig(t, "veltrix.yaml", punctuationConfig))
	if err != nil {
		t.Fatal(err)
	}
	m := newMemTask(top)
	at := time.Date(2024, 5, 1, 10, 30, 0, 0, time.UTC)
	rec := record("in", "k", `{"kind":"a"}`)
	rec.Timestamp = at
	m.stream = at
	if err := top.Process(m, rec, nil); err != nil {
		t.Fatal(err)
	}
	if err := top.Punctuate(m); err != nil || len(m.out) != 0 {
		t.Fatalf("Punctuate before the windows close: %v, %d outputs", err, len(m.out))
	}
	m.stream = at.Add(30 * time.Minute)
	if err := top.Punctuate(m); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range m.out {
		s := o.Topic + " " + string(o.Key)
		for _, h := range o.Headers {
			if h.Key == HeaderErrorCode || h.Key == HeaderRule {
				s += " " + string(h.Value)
			}
		}
		got = append(got, s)
	}
	want := []string{"out n-k", "shop.dlq k VX5003 dlq"}
	if !slices.Equal(got, want) {
		t.Errorf("outputs = %q, want %q", got, want)
	}
	for name, s := range m.stores {
		var keys int
		_ = s.Scan(nil, func(k, _ []byte) bool {
			if !processors.IsInternalKey(k) {
				keys++
			}
			return true
		})
		if keys != 0 {
			t.Errorf("store %s keeps %d keys after its windows closed", name, keys)
		}
	}
}

func TestPunctuateFail(t *testing.T) {
	top, err := Build(parseConfig(t, "veltrix.yaml", `
app: {id: shop}
rules:
  - name: strict
    from: in
    on_error: fail
    steps:
      - aggregate: {store: s, window: {tumbling: 1h}, emit: on_close}
      - to: {topic: out, key: event.nope}
`))
	if err != nil {
		t.Fatal(err)
	}
	m := newMemTask(top)
	rec := record("in", "k", `{}`)
	rec.Timestamp = time.Date(2024, 5, 1, 10, 30, 0, 0, time.UTC)
	if err := top.Process(m, rec, nil); err != nil {
		t.Fatal(err)
	}
	m.stream = rec.Timestamp.Add(time.Hour)
	err = top.Punctuate(m)
	var re *RuleError
	if !errors.As(err, &re) || re.Rule != "strict" || re.Err.Code != diag.MissingField {
		t.Fatalf("Punctuate = %v, want a RuleError of rule strict with VX5003", err)
	}
}

func TestStoresAndCoPartitioning(t *testing.T) {
	top, err := Build(parseConfig(t, "veltrix.yaml", `
app: {id: shop}
topics:
  orders: {key: event.order_id}
  payments: {key: event.order_id}
rules:
  - name: customers
    from: customers
    steps:
      - table: customers
  - name: enrich
    from: orders
    steps:
      - rekey: event.customer_id
      - join: {table: customers, as: customer}
      - to: enriched
  - name: seq
    from: [orders, payments]
    steps:
      - sequence: {store: seq, key: event.order_id, first: event.t == "o", then: event.t == "p"}
      - to: alerts
`))
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"orders", "payments"}, {"customers", "shop.enrich.repartition"}}
	if got := top.CoPartitioned(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("CoPartitioned() = %q, want %q", got, want)
	}
	if got := top.StoreNames(); !slices.Equal(got, []string{"customers", "seq"}) {
		t.Errorf("StoreNames() = %q", got)
	}
	if got := top.Rule("customers"); !got.tombstones {
		t.Error("a rule starting with a table does not take tombstones")
	}
}
