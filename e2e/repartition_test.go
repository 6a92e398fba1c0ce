package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestAggregateByAnotherKeyRepartitions is the rule of the grouping
// contract: an aggregate by customer on a topic keyed by order id (6
// partitions, 300 customers) repartitions by customer, so every customer's
// count and sum is exact, on the output topic (read with kcat,
// read_committed) and through the query API, across a kill -9 and a lost
// state dir.
func TestAggregateByAnotherKeyRepartitions(t *testing.T) {
	n, customers := 12_000, 300
	if testing.Short() {
		n = 3_000
	}
	brokers := startBroker(t, "orders")
	stateDir := filepath.Join(t.TempDir(), "state")
	cfg := writeAppConfig(t, "e2e-regroup", brokers, stateDir, `
  - name: revenue
    from: orders
    steps:
      - filter: event.type == "order.paid"
      - aggregate: {store: revenue, key: event.customer_id, sum: event.total}
      - to: revenue-per-customer
`)
	out, code := run(t, "describe", "-c", cfg)
	if code != 0 || !strings.Contains(out, "repartition by event.customer_id for aggregate revenue") ||
		!strings.Contains(out, "e2e-regroup.revenue.repartition (repartition of rule revenue)") {
		t.Fatalf("describe (exit %d) does not show the repartition:\n%s", code, out)
	}

	recs := make([]*kgo.Record, n)
	want := map[string]truth{}
	for i := range n {
		cust := fmt.Sprintf("c-%03d", (i*37)%customers)
		total := float64(i%50 + 1)
		recs[i] = &kgo.Record{Topic: "orders", Key: fmt.Appendf(nil, "o-%06d", i),
			Value: fmt.Appendf(nil, `{"type":"order.paid","order_id":"o-%06d","customer_id":%q,"total":%g}`, i, cust, total)}
		w := want[cust]
		w.count++
		w.sum += total
		want[cust] = w
	}
	follow := followOutputs(t, brokers, "revenue-per-customer")

	// Three incarnations: the first is killed (SIGKILL) once it made
	// progress, the state dir is deleted before the second, which is killed
	// too; the third finishes.
	p := crashRuns(t, brokers, cfg, stateDir, recs, 3, 1, follow, func() bool { return follow.complete(want) })
	if wrong := queryAll(t, p.httpAddr(t), "revenue", want); len(wrong) > 0 {
		t.Errorf("%d of %d customers answered wrong by the query API, e.g. %v", len(wrong), customers, wrong[:min(5, len(wrong))])
	}
	p.stop(t)
	follow.checkExactlyOnce(t, want)

	// The last committed result per customer, as a downstream consumer reads it.
	final := map[string]truth{}
	for _, r := range kcatReadCommitted(t, brokers, n, time.Minute, "revenue-per-customer") {
		var v struct {
			Key   string  `json:"key"`
			Count int64   `json:"count"`
			Sum   float64 `json:"sum"`
		}
		if err := json.Unmarshal([]byte(r.Value), &v); err != nil || v.Key != r.Key {
			t.Fatalf("output %q %q: %v", r.Key, r.Value, err)
		}
		final[r.Key] = truth{v.Count, v.Sum}
	}
	bad := 0
	for cust, w := range want {
		if final[cust] != w {
			if bad < 5 {
				t.Errorf("kcat: %s's last result is %+v, want %+v", cust, final[cust], w)
			}
			bad++
		}
	}
	if bad > 0 || len(final) != customers {
		t.Fatalf("kcat: %d of %d customers wrong, %d customers seen", bad, customers, len(final))
	}
}

// run runs the binary to completion and returns its stdout and exit code.
func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, veltrixBin, args...).Output()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	case err != nil:
		t.Fatalf("veltrix %v: %v", args, err)
	}
	return string(out), 0
}
