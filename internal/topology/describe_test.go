package topology

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const describeConfig = `
app: {id: shop}
templates:
  high_value_order:
    params:
      threshold: {type: number, default: 1000}
      out: {type: topic}
    steps:
      - filter: event.type == "order.created" && event.total >= params.threshold
      - set: {flag: '"high_value"', checked_at: now()}
      - to: ${params.out}
rules:
  - name: big-orders
    from: orders
    template: high_value_order
    with: {threshold: 5000, out: orders.high-value}
    on_error: dlq
  - name: payments-by-size
    from: [payments, refunds]
    on_error: skip
    steps:
      - drop: [card.number]
      - route:
          - when: event.amount > 100
            steps:
              - to: {topic: payments.large, key: event.customer_id, headers: {kind: '"large"'}}
          - default:
              - map: {id: event.id, amount: event.amount}
              - to: payments.small
  - name: customers
    from: customers
    steps:
      - table: customers
  - name: revenue
    from: orders
    steps:
      - filter: event.type == "order.created"
      - rekey: event.customer_id
      - join: {table: customers, type: left, as: customer}
      - aggregate: {store: revenue, sum: event.total, window: {tumbling: 1h, grace: 5m}, emit: on_close}
      - to: revenue-per-customer
`

func TestDescribe(t *testing.T) {
	top, err := Build(parseConfig(t, "veltrix.yaml", describeConfig))
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"text", "mermaid", "json"} {
		t.Run(format, func(t *testing.T) {
			var b bytes.Buffer
			if err := top.Describe(&b, format); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "describe."+format)
			if *update {
				if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/topology -run TestDescribe -update)", err)
			}
			if got := b.String(); got != string(want) {
				t.Errorf("describe %s differs from %s:\n%s", format, golden, got)
			}
			switch format {
			case "json":
				var d Description
				if err := json.Unmarshal(b.Bytes(), &d); err != nil || len(d.Rules) != 4 || len(d.Stores) != 2 ||
					!slices.Contains(d.InternalTopics, InternalTopic{Topic: "shop.revenue.repartition", Kind: "repartition", Rule: "revenue"}) {
					t.Errorf("json does not round-trip: %v %+v", err, d)
				}
			case "mermaid":
				if !strings.HasPrefix(b.String(), "flowchart LR\n") {
					t.Errorf("mermaid does not start with flowchart LR")
				}
			}
		})
	}
	if err := top.Describe(&bytes.Buffer{}, "yaml"); err == nil {
		t.Error("Describe with an unknown format succeeded")
	}
}
