package processors_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/veltrix/veltrix/internal/topology"
)

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

func TestRekey(t *testing.T) {
	const rules = `
rules:
  - name: per-customer
    from: orders
    steps:
      - filter: event.type == "order.created"
      - rekey: event.customer_id
      - aggregate: {store: spend, sum: event.total}
      - to: spend`
	runStateCases(t, []stateCase{{
		name:   "steps after the rekey run on the repartition topic",
		config: rules,
		inputs: []input{
			{topic: "orders", key: "o1", value: `{"type":"order.created","customer_id":"c1","total":10}`, at: "10:00"},
			{topic: "orders", key: "o2", value: `{"type":"order.paid","customer_id":"c1","total":10}`, at: "10:01"},
			{topic: "orders", key: "o3", value: `{"type":"order.created","customer_id":"c1","total":5}`, at: "10:02"},
		},
		want: []string{
			`app.per-customer.repartition|c1|{"type":"order.created","customer_id":"c1","total":10}`,
			`spend|c1|{"key":"c1","count":1,"sum":10}`,
			`app.per-customer.repartition|c1|{"type":"order.created","customer_id":"c1","total":5}`,
			`spend|c1|{"key":"c1","count":2,"sum":15}`,
		},
	}})

	top, err := buildConfig(t, rules)
	if err != nil {
		t.Fatal(err)
	}
	const rp = "app.per-customer.repartition"
	if got := top.Repartitions(); !slices.Equal(got, []string{rp}) {
		t.Errorf("Repartitions() = %q", got)
	}
	if got := top.InputTopics(); !slices.Equal(got, []string{rp, "orders"}) {
		t.Errorf("InputTopics() = %q", got)
	}
	if got := top.OutputTopics(); !slices.Equal(got, []string{"app.dlq", rp, "spend"}) {
		t.Errorf("OutputTopics() = %q", got)
	}
	want := []topology.InternalTopic{
		{Topic: "app.dlq", Kind: "dlq"},
		{Topic: rp, Kind: "repartition", Rule: "per-customer"},
		{Topic: "app.spend.changelog", Kind: "changelog", Store: "spend", Rule: "per-customer"},
	}
	if got := top.InternalTopics(); !slices.Equal(got, want) {
		t.Errorf("InternalTopics() = %+v", got)
	}
	stores := top.Stores()
	if len(stores) != 1 || stores[0].Name != "spend" || stores[0].Kind != "aggregate" || !slices.Equal(stores[0].Topics, []string{rp}) ||
		stores[0].Changelog != "app.spend.changelog" {
		t.Errorf("Stores() = %+v", stores)
	}
	r := top.Rule("per-customer")
	if r.Repartition() != rp || len(r.Steps) != 2 || len(r.Describe()) != 4 {
		t.Errorf("rule split: repartition %q, %d steps before, %d described", r.Repartition(), len(r.Steps), len(r.Describe()))
	}
}
