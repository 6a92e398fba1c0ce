package processors_test

import (
	"slices"
	"testing"
)

const joinRules = `
rules:
  - name: customers
    from: customers
    steps:
      - table: customers
  - name: enrich
    from: orders
    steps:
      - join: {table: customers, key: event.customer_id, type: %s, as: customer, repartition: false}
      - to: out`

func TestJoin(t *testing.T) {
	inputs := []input{
		{topic: "customers", key: "c1", value: `{"tier":"gold"}`, at: "10:00"},
		{topic: "orders", key: "o1", value: `{"customer_id":"c1"}`, at: "10:01"},
		{topic: "orders", key: "o2", value: `{"customer_id":"c2"}`, at: "10:02"},
		{topic: "customers", key: "c1", value: `<nil>`, at: "10:03"},
		{topic: "orders", key: "o3", value: `{"customer_id":"c1"}`, at: "10:04"},
	}
	runStateCases(t, []stateCase{
		{
			name:   "inner drops events without a row",
			config: sprintf(joinRules, "inner"),
			inputs: inputs,
			want:   []string{`out|o1|{"customer_id":"c1","customer":{"tier":"gold"}}`},
		},
		{
			name:   "left keeps them with null",
			config: sprintf(joinRules, "left"),
			inputs: inputs,
			want: []string{
				`out|o1|{"customer_id":"c1","customer":{"tier":"gold"}}`,
				`out|o2|{"customer_id":"c2","customer":null}`,
				`out|o3|{"customer_id":"c1","customer":null}`,
			},
		},
	})
	top, err := buildConfig(t, sprintf(joinRules, "inner"))
	if err != nil {
		t.Fatal(err)
	}
	if got := top.CoPartitioned(); len(got) != 1 || !slices.Equal(got[0], []string{"customers", "orders"}) {
		t.Errorf("CoPartitioned() = %q, want [[customers orders]]", got)
	}
}
