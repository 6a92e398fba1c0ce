package engine_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/engine"
	"github.com/veltrix/veltrix/internal/metrics"
)

// sales returns n records over keys customers and each customer's final
// count and sum.
func sales(n, keys int) ([]*kgo.Record, map[string][2]int) {
	var recs []*kgo.Record
	want := map[string][2]int{}
	for i := range n {
		k := fmt.Sprintf("c-%03d", i*7%keys)
		w := want[k]
		want[k] = [2]int{w[0] + 1, w[1] + i%10}
		recs = append(recs, &kgo.Record{Topic: "sales", Key: []byte(k), Value: fmt.Appendf(nil, `{"total":%d}`, i%10)})
	}
	return recs, want
}

// lastValues returns the last value of every key in recs.
func lastValues(recs []*kgo.Record) map[string][]byte {
	last := map[string][]byte{}
	for _, r := range recs {
		last[string(r.Key)] = r.Value
	}
	return last
}

// checkTotals checks that every key's last value (what: where it was read)
// is its exact count and sum, and that no key is missing or extra.
func checkTotals(t *testing.T, what string, last map[string][]byte, want map[string][2]int) {
	t.Helper()
	if len(last) != len(want) {
		t.Fatalf("%s: %d keys, want %d", what, len(last), len(want))
	}
	for k, v := range last {
		var r struct {
			Count int     `json:"count"`
			Sum   float64 `json:"sum"`
		}
		if err := json.Unmarshal(v, &r); err != nil || r.Count != want[k][0] || r.Sum != float64(want[k][1]) {
			t.Fatalf("%s: %s = %s (%v), want count %d sum %d", what, k, v, err, want[k][0], want[k][1])
		}
	}
}

const totalsRules = `rules:
  - name: totals
    from: sales
    steps:
      - aggregate: {store: totals, count: true, sum: event.total}
      - to: sales.totals
`

// A task that comes to an instance while the instance has a transaction
// open (a second instance joins under load, takes tasks over, then leaves
// again) is restored between transactions, never inside one: a restore there could outlast the
// transaction timeout, which aborts the transaction and ends the session.
// The instance goes on in the same session, and every total is exact.
func TestTaskAssignedDuringATransactionRestoresBetweenTransactions(t *testing.T) {
	addr := newCluster(t, "sales")
	const n, keys = 30_000, 300
	recs, want := sales(n, keys)
	cfgA, topoA := loadTopology(t, addr, "exactly_once", totalsRules)
	cfgB, topoB := loadTopology(t, addr, "exactly_once", totalsRules)
	mA, mB := metrics.New(prometheus.NewRegistry()), metrics.New(prometheus.NewRegistry())
	engA, engB := engine.New(cfgA, topoA, engine.WithMetrics(mA)), engine.New(cfgB, topoB, engine.WithMetrics(mB))
	a, b := start(engA), start(engB)
	defer a.stop()

	// Feed both until each has processed some of its tasks' records.
	sent := 0
	feed := func(batch int) {
		t.Helper()
		produce(t, addr, recs[sent:sent+batch])
		sent += batch
	}
	deadline := time.Now().Add(time.Minute)
	for engA.Stats().Consumed == 0 || engB.Stats().Consumed == 0 {
		if time.Now().After(deadline) || sent+200 > n/2 {
			t.Fatalf("both instances did not consume within the first half (a %d, b %d)", engA.Stats().Consumed, engB.Stats().Consumed)
		}
		if err := a.failed(); err != nil {
			t.Fatal(err)
		}
		feed(200)
		time.Sleep(20 * time.Millisecond)
	}
	// B leaves while A is busy: its tasks come to A between two polls of
	// A's open transactions.
	stopped := make(chan error, 1)
	go func() { stopped <- b.stop() }()
	var after time.Time // feeding goes on for a while after B stopped
	for sent < n && (after.IsZero() || time.Now().Before(after)) {
		select {
		case err := <-stopped:
			if err != nil {
				t.Fatalf("b: %v", err)
			}
			after = time.Now().Add(2 * time.Second)
		default:
		}
		feed(min(100, n-sent))
		time.Sleep(5 * time.Millisecond)
	}
	if after.IsZero() {
		t.Fatal("b did not stop while the input was fed")
	}
	if sent < n {
		feed(n - sent)
	}
	got := readCommitted(t, a, addr, n, 2*time.Minute, "sales.totals")
	checkTotals(t, "output", lastValues(got), want)
	for name, m := range map[string]*metrics.Metrics{"a": mA, "b": mB} {
		if r := testutil.ToFloat64(m.SessionRestarts); r != 0 {
			t.Errorf("%s: veltrix_session_restarts_total = %v, want 0", name, r)
		}
	}
}
