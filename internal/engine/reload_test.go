package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/engine"
)

// A reload with the same shape swaps the rules between two transactions:
// the new threshold applies to the records after it, the aggregate's store
// keeps its totals, and every output stays exactly once. A reload that
// changes the shape is refused and changes nothing.
func TestReloadSwapsRulesKeepingState(t *testing.T) {
	addr := newCluster(t, "sales")
	rules := func(min int) string {
		return strings.ReplaceAll(`rules:
  - name: totals
    from: sales
    steps:
      - filter: event.total >= MIN
      - aggregate: {store: totals, count: true, sum: event.total}
      - to: sales.totals
`, "MIN", string(rune('0'+min)))
	}
	recs, _ := sales(6_000, 300) // totals 0..9
	cfg, topo := loadTopology(t, addr, "exactly_once", rules(5))
	eng := engine.New(cfg, topo)
	r := start(eng)
	defer r.stop()

	produce(t, addr, recs[:3_000])
	passing := func(rs []*kgo.Record, min int) (n int) {
		for _, r := range rs {
			if r.Value[len(`{"total":`)]-'0' >= byte(min) {
				n++
			}
		}
		return n
	}
	first := passing(recs[:3_000], 5)
	readCommitted(t, r, addr, first, time.Minute, "sales.totals")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, shape := loadTopology(t, addr, "exactly_once", strings.Replace(rules(5), "sum: event.total", "sum: event.count", 1))
	var se *engine.ShapeChangedError
	if err := eng.Reload(ctx, shape); !errors.As(err, &se) || !strings.Contains(se.Error(), "store totals") {
		t.Fatalf("reload with another aggregation = %v, want a ShapeChangedError naming store totals", err)
	}
	_, next := loadTopology(t, addr, "exactly_once", rules(2))
	if err := eng.Reload(ctx, next); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if eng.Rules() != next {
		t.Fatal("Rules() is not the reloaded topology")
	}

	produce(t, addr, recs[3_000:])
	second := passing(recs[3_000:], 2)
	got := readCommitted(t, r, addr, first+second, time.Minute, "sales.totals")
	if len(got) != first+second {
		t.Fatalf("%d outputs, want %d (%d before the reload, %d after)", len(got), first+second, first, second)
	}
	// Each key's last total counts what passed the filter of its time.
	want := map[string][2]int{}
	for i, rec := range recs {
		min := 5
		if i >= 3_000 {
			min = 2
		}
		if v := int(rec.Value[len(`{"total":`)] - '0'); v >= min {
			w := want[string(rec.Key)]
			want[string(rec.Key)] = [2]int{w[0] + 1, w[1] + v}
		}
	}
	checkTotals(t, "output", lastValues(got), want)
}
