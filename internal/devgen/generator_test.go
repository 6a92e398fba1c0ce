package devgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veltrix/veltrix/pkg/diag"
)

var epoch = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

// fakeClock is a Clock whose After returns at once, moving the time forward
// by the duration asked for; it counts the waits.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits int
}

func newFakeClock() *fakeClock { return &fakeClock{now: epoch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits++
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) elapsed() (time.Duration, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now.Sub(epoch), c.waits
}

func mustNew(t testing.TB, opts ...Option) *Generator {
	t.Helper()
	g, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		want []string // "code path" of every problem, in order
	}{
		{"defaults", nil, nil},
		{"no customers topic", []Option{WithTopics(Topics{Orders: "o", Payments: "p", Inventory: "i"})}, nil},
		{"negative rate", []Option{WithRate(-1)}, []string{"VX1104 rate"}},
		{"ratio above one", []Option{WithMalformedRatio(1.5)}, []string{"VX1104 malformed_ratio"}},
		{"ratio NaN", []Option{WithMalformedRatio(math.NaN())}, []string{"VX1104 malformed_ratio"}},
		{"nil clock", []Option{WithClock(nil)}, []string{"VX1104 clock"}},
		{"all at once", []Option{WithCustomers(0), WithSKUs(-1), WithLimit(-5)},
			[]string{"VX1104 customers", "VX1104 skus", "VX1104 limit"}},
		{"bad topics", []Option{WithTopics(Topics{Orders: "orders", Payments: "orders", Inventory: "in ventory"})},
			[]string{"VX1104 topics.payments", "VX1107 topics.inventory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := New(tt.opts...)
			if len(tt.want) == 0 {
				if err != nil || g == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			var got []string
			for _, e := range diag.AsList(err) {
				got = append(got, string(e.Code)+" "+e.Path)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("problems = %q, want %q (err: %v)", got, tt.want, err)
			}
			for _, e := range diag.AsList(err) {
				if e.Code == diag.InvalidValue && !strings.Contains(e.Message, "want ") {
					t.Errorf("error does not say what is expected: %v", e)
				}
			}
		})
	}
}

func TestSameSeedSameStream(t *testing.T) {
	stream := func(seed uint64) []Event {
		g := mustNew(t, WithSeed(seed), WithClock(newFakeClock()))
		evs := g.Customers()
		for range 10_000 {
			evs = append(evs, g.Next())
		}
		return evs
	}
	a, b, c := stream(7), stream(7), stream(8)
	if len(a) != len(b) {
		t.Fatalf("lengths %d and %d", len(a), len(b))
	}
	for i := range a {
		if a[i].Topic != b[i].Topic || a[i].Kind != b[i].Kind || !bytes.Equal(a[i].Key, b[i].Key) || !bytes.Equal(a[i].Value, b[i].Value) {
			t.Fatalf("event %d differs:\n%s\n%s", i, a[i].Value, b[i].Value)
		}
	}
	same := 0
	for i := range min(len(a), len(c)) {
		if bytes.Equal(a[i].Value, c[i].Value) {
			same++
		}
	}
	if same > len(a)/10 {
		t.Errorf("seeds 7 and 8 share %d of %d values", same, len(a))
	}
}

// fieldTypes lists the fields every well-formed event of a kind has, with
// their JSON types.
var fieldTypes = map[string]map[string]string{
	"order": {"type": "string", "order_id": "string", "customer_id": "string", "total": "number",
		"currency": "string", "country": "string", "created_at": "time", "at": "time"},
	"payment": {"type": "string", "payment_id": "string", "order_id": "string", "amount": "number",
		"currency": "string", "method": "string", "customer_id": "string", "at": "time"},
	"inventory": {"type": "string", "sku": "string", "delta": "number", "reason": "string", "warehouse": "string", "at": "time"},
}

func checkFields(t *testing.T, ev Event, m map[string]any, want map[string]string) {
	t.Helper()
	for f, typ := range want {
		v, ok := m[f]
		if !ok {
			t.Fatalf("%s has no %q: %s", ev.Kind, f, ev.Value)
		}
		switch typ {
		case "number":
			_, ok = v.(float64)
		case "string":
			_, ok = v.(string)
		case "time":
			var s string
			if s, ok = v.(string); ok {
				_, err := time.Parse(time.RFC3339, s)
				ok = err == nil
			}
		}
		if !ok {
			t.Fatalf("%s field %q = %v, want a %s: %s", ev.Kind, f, v, typ, ev.Value)
		}
	}
	if m["type"] != ev.Kind {
		t.Fatalf("type %v, kind %s", m["type"], ev.Kind)
	}
}

func TestStreamMix(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			testStreamMix(t, seed)
		})
	}
}

func testStreamMix(t *testing.T, seed uint64) {
	const n = 10_000
	g := mustNew(t, WithSeed(seed))
	kinds := map[string]int{}
	anomalies := map[string]int{}
	var sizes, nValid int
	var totals []float64
	created := map[string]bool{}  // order ids of order.created
	finished := map[string]bool{} // order ids that were shipped or cancelled
	captured := map[string]int{}  // payment ids captured
	for range n {
		ev := g.Next()
		kinds[ev.Kind]++
		if ev.Malformed {
			if ev.Topic != "orders" || !strings.HasPrefix(ev.Kind, "malformed.") {
				t.Fatalf("malformed event %s on %s", ev.Kind, ev.Topic)
			}
			var obj map[string]any
			if err := json.Unmarshal(ev.Value, &obj); err == nil {
				if total, ok := obj["total"].(float64); ok {
					t.Fatalf("malformed %s is a valid order (total %v): %s", ev.Kind, total, ev.Value)
				}
			}
			continue
		}
		nValid++
		sizes += len(ev.Value)
		var m map[string]any
		if err := json.Unmarshal(ev.Value, &m); err != nil {
			t.Fatalf("%s is not a JSON object: %v: %s", ev.Kind, err, ev.Value)
		}
		key := string(ev.Key)
		switch ev.Topic {
		case "orders":
			checkFields(t, ev, m, fieldTypes["order"])
			id := m["order_id"].(string)
			if key != id {
				t.Fatalf("order key %q, order_id %q", key, id)
			}
			if ev.Kind == KindOrderCreated {
				var o Order
				if err := json.Unmarshal(ev.Value, &o); err != nil {
					t.Fatal(err)
				}
				var sum float64
				for _, it := range o.Items {
					sum += float64(it.Qty) * it.Price
				}
				if len(o.Items) == 0 || math.Abs(sum-o.Total) > 0.005 {
					t.Fatalf("total %v, items sum to %v: %s", o.Total, sum, ev.Value)
				}
				totals = append(totals, o.Total)
				created[id] = true
			} else if !created[id] || finished[id] {
				t.Fatalf("%s for order %s (created %v, finished %v)", ev.Kind, id, created[id], finished[id])
			}
			if ev.Kind == KindOrderShipped || ev.Kind == KindOrderCancelled {
				finished[id] = true
			}
		case "payments":
			checkFields(t, ev, m, fieldTypes["payment"])
			id := m["order_id"].(string)
			if key != id {
				t.Fatalf("payment key %q, order_id %q", key, id)
			}
			if created[id] == (ev.Anomaly == AnomalyOrphanPayment) {
				t.Fatalf("payment for order %s: created %v, anomaly %q", id, created[id], ev.Anomaly)
			}
			if ev.Kind == KindPaymentCaptured {
				pid := m["payment_id"].(string)
				captured[pid]++
				if (captured[pid] > 1) != (ev.Anomaly == AnomalyDuplicatePayment) {
					t.Fatalf("payment %s captured %d times, anomaly %q", pid, captured[pid], ev.Anomaly)
				}
			}
		case "inventory":
			checkFields(t, ev, m, fieldTypes["inventory"])
			if key != m["sku"] {
				t.Fatalf("inventory key %q, sku %v", key, m["sku"])
			}
		default:
			t.Fatalf("event on topic %q", ev.Topic)
		}
		anomalies[ev.Anomaly]++
	}

	malformed := n - nValid
	if malformed < n/200 || malformed > n*3/200 {
		t.Errorf("%d malformed of %d, want about 1%%", malformed, n)
	}
	for _, k := range malformedKinds {
		if kinds[k] == 0 {
			t.Errorf("no %s in %d events", k, n)
		}
	}
	for _, k := range []string{KindOrderCreated, KindOrderPaid, KindOrderShipped, KindOrderCancelled,
		KindPaymentAuthorized, KindPaymentCaptured, KindPaymentFailed, KindInventoryAdjusted} {
		if kinds[k] < 20 {
			t.Errorf("%d %s events in %d", kinds[k], k, n)
		}
	}
	if anomalies[AnomalyDuplicatePayment] < 5 || anomalies[AnomalyOrphanPayment] < 5 {
		t.Errorf("anomalies %v, want some of each", anomalies)
	}
	if avg := sizes / nValid; avg < 150 || avg > 300 {
		t.Errorf("average value size %d bytes", avg)
	}
	slices.Sort(totals)
	over := func(x float64) (n int) {
		for _, v := range totals {
			if v > x {
				n++
			}
		}
		return n
	}
	if med := totals[len(totals)/2]; med > 200 {
		t.Errorf("median order total %v, want most orders small", med)
	}
	if over(1000) < 20 || over(5000) < 3 || over(1000) > len(totals)/5 {
		t.Errorf("%d orders above 1000 and %d above 5000 of %d", over(1000), over(5000), len(totals))
	}
}

func TestMalformedRatioBounds(t *testing.T) {
	for _, tt := range []struct {
		ratio float64
		want  int
	}{{0, 0}, {1, 1000}} {
		g := mustNew(t, WithMalformedRatio(tt.ratio))
		got := 0
		for range 1000 {
			if g.Next().Malformed {
				got++
			}
		}
		if got != tt.want {
			t.Errorf("ratio %v: %d malformed of 1000, want %d", tt.ratio, got, tt.want)
		}
	}
}

func TestCustomers(t *testing.T) {
	g := mustNew(t, WithCustomers(300))
	cs := g.Customers()
	if len(cs) != 300 {
		t.Fatalf("%d customers", len(cs))
	}
	tiers := map[string]int{}
	for i, ev := range cs {
		var c Customer
		if err := json.Unmarshal(ev.Value, &c); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("c-%04d", i+1); c.CustomerID != want || string(ev.Key) != want || ev.Topic != "customers" {
			t.Fatalf("customer %d: key %s, value %s on %s", i, ev.Key, ev.Value, ev.Topic)
		}
		if c.Country == "" {
			t.Fatalf("customer without country: %s", ev.Value)
		}
		tiers[c.Tier]++
	}
	if len(tiers) != 3 || tiers["gold"] == 0 || tiers["silver"] == 0 || tiers["bronze"] == 0 {
		t.Errorf("tiers %v", tiers)
	}
	// Orders only name customers of the table.
	for range 2000 {
		if ev := g.Next(); ev.Kind == KindOrderCreated {
			var o Order
			if err := json.Unmarshal(ev.Value, &o); err != nil {
				t.Fatal(err)
			}
			var n int
			if _, err := fmt.Sscanf(o.CustomerID, "c-%d", &n); err != nil || n < 1 || n > 300 {
				t.Fatalf("order for unknown customer %q", o.CustomerID)
			}
		}
	}

	off := mustNew(t, WithTopics(Topics{Orders: "o", Payments: "p", Inventory: "i"}))
	if cs := off.Customers(); cs != nil {
		t.Errorf("customers topic disabled, got %d records", len(cs))
	}
}

func BenchmarkNext(b *testing.B) {
	g := mustNew(b)
	b.ReportAllocs()
	var bytes int
	for b.Loop() {
		bytes += len(g.Next().Value)
	}
	b.SetBytes(int64(bytes / max(1, b.N)))
}
