package topology

import (
	"slices"
	"strings"
	"testing"

	"github.com/veltrix/veltrix/pkg/diag"
)

// TestKeyAnalysis is the table of which configurations get a repartition
// before a step that groups or looks up by a key, and which do not.
func TestKeyAnalysis(t *testing.T) {
	const table = `
  - name: customers
    from: customers
    steps:
      - table: customers`
	cases := []struct {
		name   string
		topics string // the topics: section, if any
		from   string
		steps  string
		extra  string   // more rules
		want   []string // repartition topics added or used, in order
		kinds  []string // the rule's described step kinds
	}{
		// aggregate
		{name: "aggregate by a field on an undeclared topic", from: "orders",
			steps: `[{aggregate: {store: s, key: event.customer_id, sum: event.total}}, {to: out}]`,
			want:  []string{"shop.r.repartition"}, kinds: []string{"repartition", "aggregate", "to"}},
		{name: "aggregate without a key", from: "orders",
			steps: `[{aggregate: {store: s, count: true}}, {to: out}]`, kinds: []string{"aggregate", "to"}},
		{name: "aggregate by the record key", from: "orders",
			steps: `[{aggregate: {store: s, key: key}}, {to: out}]`, kinds: []string{"aggregate", "to"}},
		{name: "aggregate by the declared key", topics: "orders: {key: event.customer_id}", from: "orders",
			steps: `[{aggregate: {store: s, key: ' event.customer_id '}}, {to: out}]`, kinds: []string{"aggregate", "to"}},
		{name: "aggregate by another key than the declared one", topics: "orders: {key: event.order_id}", from: "orders",
			steps: `[{aggregate: {store: s, key: event.customer_id}}, {to: out}]`,
			want:  []string{"shop.r.repartition"}, kinds: []string{"repartition", "aggregate", "to"}},
		{name: "aggregate after a rekey by its key", from: "orders",
			steps: `[{rekey: event.customer_id}, {aggregate: {store: s, key: event.customer_id}}, {to: out}]`,
			want:  []string{"shop.r.repartition"}, kinds: []string{"rekey", "aggregate", "to"}},
		{name: "aggregate after a rekey by another key", from: "orders",
			steps: `[{rekey: event.region}, {aggregate: {store: s, key: event.customer_id}}, {to: out}]`,
			want:  []string{"shop.r.repartition", "shop.r.repartition.2"}, kinds: []string{"rekey", "repartition", "aggregate", "to"}},
		{name: "aggregate with repartition false", from: "orders",
			steps: `[{aggregate: {store: s, key: event.customer_id, repartition: false}}, {to: out}]`, kinds: []string{"aggregate", "to"}},
		{name: "a filter keeps the declared key", topics: "orders: {key: event.customer_id}", from: "orders",
			steps: `[{filter: event.total > 1}, {log: event.total}, {aggregate: {store: s, key: event.customer_id}}, {to: out}]`,
			kinds: []string{"filter", "log", "aggregate", "to"}},
		{name: "a set of another field keeps the declared key", topics: "orders: {key: event.customer_id}", from: "orders",
			steps: `[{set: {x: '1'}}, {aggregate: {store: s, key: event.customer_id}}, {to: out}]`,
			kinds: []string{"set", "aggregate", "to"}},
		{name: "a set of the key's field forgets it", topics: "orders: {key: event.customer_id}", from: "orders",
			steps: `[{set: {customer_id: event.buyer}}, {aggregate: {store: s, key: event.customer_id}}, {to: out}]`,
			want:  []string{"shop.r.repartition"}, kinds: []string{"set", "repartition", "aggregate", "to"}},
		{name: "a map forgets every key", topics: "orders: {key: event.customer_id}", from: "orders",
			steps: `[{map: {customer_id: event.customer_id}}, {aggregate: {store: s, key: event.customer_id}}, {to: out}]`,
			want:  []string{"shop.r.repartition"}, kinds: []string{"map", "repartition", "aggregate", "to"}},
		{name: "two aggregates by one key repartition once", from: "orders",
			steps: `[{aggregate: {store: a, key: event.customer_id}}, {aggregate: {store: b, key: event.key}}, {to: out}]`,
			want:  []string{"shop.r.repartition", "shop.r.repartition.2"}, kinds: []string{"repartition", "aggregate", "repartition", "aggregate", "to"}},
		{name: "a keyless aggregate after a keyed one needs nothing more", from: "orders",
			steps: `[{aggregate: {store: a, key: event.customer_id}}, {aggregate: {store: b}}, {to: out}]`,
			want:  []string{"shop.r.repartition"}, kinds: []string{"repartition", "aggregate", "aggregate", "to"}},
		{name: "several topics declaring one key", topics: "orders: {key: event.order_id}\n  payments: {key: event.order_id}", from: "[orders, payments]",
			steps: `[{aggregate: {store: s, key: event.order_id}}, {to: out}]`, kinds: []string{"aggregate", "to"}},
		{name: "several topics declaring different keys", topics: "orders: {key: event.order_id}\n  payments: {key: event.payment_id}", from: "[orders, payments]",
			steps: `[{aggregate: {store: s, key: event.order_id}}, {to: out}]`,
			want:  []string{"shop.r.repartition"}, kinds: []string{"repartition", "aggregate", "to"}},
		// dedupe
		{name: "dedupe by an id", from: "payments",
			steps: `[{dedupe: {store: s, id: event.payment_id}}, {to: out}]`,
			want:  []string{"shop.r.repartition"}, kinds: []string{"repartition", "dedupe", "to"}},
		{name: "dedupe by the declared key", topics: "payments: {key: event.payment_id}", from: "payments",
			steps: `[{dedupe: {store: s, id: event.payment_id}}, {to: out}]`, kinds: []string{"dedupe", "to"}},
		{name: "dedupe with repartition false", from: "payments",
			steps: `[{dedupe: {store: s, id: event.payment_id, repartition: false}}, {to: out}]`, kinds: []string{"dedupe", "to"}},
		// join
		{name: "join by the record key", from: "orders", extra: table,
			steps: `[{join: {table: customers, as: c}}, {to: out}]`, kinds: []string{"join", "to"}},
		{name: "join by a field", from: "orders", extra: table,
			steps: `[{join: {table: customers, key: event.customer_id, as: c}}, {to: out}]`,
			want:  []string{"shop.r.repartition"}, kinds: []string{"repartition", "join", "to"}},
		{name: "join after a rekey by its key", from: "orders", extra: table,
			steps: `[{rekey: event.customer_id}, {join: {table: customers, key: event.customer_id, as: c}}, {to: out}]`,
			want:  []string{"shop.r.repartition"}, kinds: []string{"rekey", "join", "to"}},
		{name: "join then aggregate by the same key", from: "orders", extra: table,
			steps: `[{join: {table: customers, key: event.customer_id, as: c}}, {aggregate: {store: s, key: event.customer_id}}, {to: out}]`,
			want:  []string{"shop.r.repartition"}, kinds: []string{"repartition", "join", "aggregate", "to"}},
		// sequence
		{name: "sequence by a field", from: "[orders, payments]",
			steps: `[{sequence: {store: s, key: event.order_id, first: event.t == "o", then: event.t == "p"}}, {to: out}]`,
			want:  []string{"shop.r.repartition"}, kinds: []string{"repartition", "sequence", "to"}},
		{name: "sequence by the declared key", topics: "orders: {key: event.order_id}\n  payments: {key: event.order_id}", from: "[orders, payments]",
			steps: `[{sequence: {store: s, key: event.order_id, first: event.t == "o", then: event.t == "p"}}, {to: out}]`,
			kinds: []string{"sequence", "to"}},
		{name: "sequence without a key", from: "orders",
			steps: `[{sequence: {store: s, first: event.t == "o", then: event.t == "p"}}, {to: out}]`, kinds: []string{"sequence", "to"}},
		// steps that do not group
		{name: "stateless steps", from: "orders",
			steps: `[{filter: event.total > 1}, {set: {a: '1'}}, {to: {topic: out, key: event.customer_id}}]`, kinds: []string{"filter", "set", "to"}},
		{name: "a table", from: "customers", steps: `[{table: t}]`, kinds: []string{"table"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := "app: {id: shop}\n"
			if tc.topics != "" {
				src += "topics:\n  " + tc.topics + "\n"
			}
			src += "rules:\n  - name: r\n    from: " + tc.from + "\n    steps: " + tc.steps + "\n" + tc.extra + "\n"
			top, err := Build(parseConfig(t, "veltrix.yaml", src))
			if err != nil {
				t.Fatalf("Build:\n%v", err)
			}
			r := top.Rule("r")
			if got := r.RepartitionTopics(); !slices.Equal(got, tc.want) {
				t.Errorf("repartition topics = %q, want %q", got, tc.want)
			}
			var kinds []string
			for _, in := range r.Describe() {
				kinds = append(kinds, in.Kind)
			}
			if !slices.Equal(kinds, tc.kinds) {
				t.Errorf("steps = %q, want %q", kinds, tc.kinds)
			}
			added := 0
			for _, k := range kinds {
				if k == "repartition" {
					added++
				}
			}
			if got := top.AddedRepartitions(); len(got) != added {
				t.Errorf("AddedRepartitions() = %+v, want %d", got, added)
			}
			for _, rp := range tc.want {
				if !slices.Contains(top.InputTopics(), rp) || !slices.Contains(top.OutputTopics(), rp) {
					t.Errorf("%s is not both an input and an output: %q %q", rp, top.InputTopics(), top.OutputTopics())
				}
			}
		})
	}
}

// TestKeyAnalysisStores checks that the stores of steps after an added
// repartition have the repartition topic as their topic, and that a join's
// repartition is co-partitioned with the table.
func TestKeyAnalysisStores(t *testing.T) {
	top, err := Build(parseConfig(t, "veltrix.yaml", `
app: {id: shop}
rules:
  - name: customers
    from: customers
    steps:
      - table: customers
  - name: r
    from: [orders, payments]
    steps:
      - filter: event.total > 0
      - join: {table: customers, key: event.customer_id, as: c}
      - aggregate: {store: revenue, key: event.customer_id, sum: event.total}
      - to: out
`))
	if err != nil {
		t.Fatal(err)
	}
	stores := top.Stores()
	i := slices.IndexFunc(stores, func(s StoreInfo) bool { return s.Name == "revenue" })
	if i < 0 || !slices.Equal(stores[i].Topics, []string{"shop.r.repartition"}) {
		t.Errorf("stores = %+v", stores)
	}
	want := [][]string{{"customers", "shop.r.repartition"}}
	if got := top.CoPartitioned(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("CoPartitioned() = %q, want %q", got, want)
	}
	var b strings.Builder
	if err := top.Describe(&b, "text"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"repartition by event.customer_id for join customers", "shop.r.repartition (repartition of rule r)"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("describe lacks %q:\n%s", s, b.String())
		}
	}
	notes := top.AddedRepartitions()
	if len(notes) != 1 || notes[0].Note().Code != diag.RepartitionAdded || notes[0].Pos.Line != 12 {
		t.Errorf("AddedRepartitions() = %+v", notes)
	}
}

// TestKeyAnalysisErrors checks the problems of the key analysis and of the
// topics: section.
func TestKeyAnalysisErrors(t *testing.T) {
	cases := []struct {
		name, src string
		want      []problem
	}{
		{"a nested step that needs a repartition", `
rules:
  - name: r
    from: orders
    steps:
      - route:
          - when: event.a == 1
            steps: [{aggregate: {store: s, key: event.customer_id}}, {to: out}]
`, []problem{{diag.InvalidStep, 8, 49}}},
		{"a nested step with repartition false", `
rules:
  - name: r
    from: orders
    steps:
      - route:
          - when: event.a == 1
            steps: [{aggregate: {store: s, key: event.customer_id, repartition: false}}, {to: out}]
`, nil},
		{"a nested step after a top-level rekey", `
rules:
  - name: r
    from: orders
    steps:
      - rekey: event.customer_id
      - route:
          - when: event.a == 1
            steps: [{aggregate: {store: s, key: event.customer_id}}, {to: out}]
`, nil},
		{"topics: an unused entry and a bad expression", `
topics:
  ordres: {key: event.order_id}
  orders: {key: event.order_id +}
rules:
  - name: r
    from: orders
    steps: [{to: out}]
`, []problem{{diag.TopicKeyUnused, 3, 3}, {diag.ExprSyntax, 4, 33}}},
		{"topics: a key of the wrong type", `
topics:
  orders: {key: '[event.a]'}
rules:
  - name: r
    from: orders
    steps: [{to: out}]
`, []problem{{diag.ExprType, 3, 17}}},
		{"repartition not a bool", `
rules:
  - name: r
    from: orders
    steps: [{dedupe: {store: s, id: event.id, repartition: maybe}}, {to: out}]
`, []problem{{diag.InvalidStep, 5, 60}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(parseConfig(t, "veltrix.yaml", tc.src))
			got := problems(err)
			if !slices.Equal(got, tc.want) {
				t.Errorf("problems = %v, want %v\n%v", got, tc.want, err)
			}
		})
	}
}

// problems returns the code and place of each problem in err.
func problems(err error) []problem {
	var out []problem
	for _, e := range diag.AsList(err) {
		out = append(out, problem{e.Code, e.Line, e.Column})
	}
	return out
}
