package topology

import (
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/processors"
)

// copySpec is a step kind with no Describe method that declares an output
// and reads a store through the Builder.
func copySpec() *processors.Spec {
	return &processors.Spec{
		Kind: "copy",
		Build: func(b processors.Builder, n *yaml.Node, path string) processors.Step {
			topic := b.Output(get(n, "topic"), path+".topic")
			store := b.ReadStore(get(n, "store"), path+".store", "table")
			if topic == "" || store == "" {
				return nil
			}
			return copyStep(topic)
		},
	}
}

type copyStep string

func (s copyStep) Process(t processors.ProcessorContext, ev *processors.Event) (bool, error) {
	t.Emit(processors.Output{Topic: string(s), Key: ev.Key, Value: ev.Raw})
	return true, nil
}

// TestDescribeShowsDeclarations checks that describe's steps carry the
// kind, outputs and store each step declared, at the top level and inside
// a route branch, for a kind that does not describe itself too.
func TestDescribeShowsDeclarations(t *testing.T) {
	cfg := parseConfig(t, "a.yaml", `rules:
  - name: customers
    from: customers
    steps:
      - table: {store: customers}
  - name: orders
    from: orders
    steps:
      - route:
          - when: event.total > 100
            steps:
              - copy: {topic: big-copies, store: customers}
              - to: big
          - default:
              - to: small
`)
	top, err := Build(cfg, WithSpecs(append(processors.Specs(), copySpec())))
	if err != nil {
		t.Fatal(err)
	}
	d := top.Description()
	if got := d.Rules[0].Steps[0]; got.Kind != "table" || got.Store != "customers" || len(got.Outputs) != 0 {
		t.Errorf("table step %+v", got)
	}
	route := d.Rules[1].Steps[0]
	if route.Kind != "route" || len(route.Branches) != 2 {
		t.Fatalf("route step %+v", route)
	}
	copied, to := route.Branches[0].Steps[0], route.Branches[0].Steps[1]
	if copied.Kind != "copy" || copied.Store != "customers" || !slices.Equal(copied.Outputs, []string{"big-copies"}) {
		t.Errorf("copy step %+v, want kind copy, store customers, outputs [big-copies]", copied)
	}
	if !slices.Equal(to.Outputs, []string{"big"}) || !slices.Equal(route.Branches[1].Steps[0].Outputs, []string{"small"}) {
		t.Errorf("to steps %+v and %+v", to, route.Branches[1].Steps[0])
	}
	var b strings.Builder
	if err := top.Describe(&b, "mermaid"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`["copy: topology.copyStep"]`, `("big-copies")`, `{{"store customers"}}`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("mermaid lacks %s:\n%s", want, b.String())
		}
	}
}

// TestShapeOfStoreDefinitions checks which edits of a stateful step change
// the definition its store is compared by: layout, comments, quoting and
// key order do not; a value or a template parameter the step uses does.
func TestShapeOfStoreDefinitions(t *testing.T) {
	const base = `templates:
  totals:
    params:
      weight: {type: number, default: 1}
      min: {type: number, default: 100}
      store: {type: string, default: totals}
    steps:
      - filter: event.total > params.min
      - aggregate: {store: '${params.store}', key: event.customer_id, sum: event.total * params.weight}
rules:
  - name: big
    from: orders
    template: totals
    with: {min: 100}
`
	for _, tc := range []struct {
		name, from, to string
		same           bool
	}{
		{"layout and comments", "      - aggregate: {store: '${params.store}', key: event.customer_id, sum: event.total * params.weight}",
			"      - aggregate:   # per customer\n          sum: event.total * params.weight\n          key: \"event.customer_id\"\n          store: ${params.store}", true},
		{"a parameter only the filter uses", "with: {min: 100}", "with: {min: 250}", true},
		{"a parameter the aggregate uses", "with: {min: 100}", "with: {min: 100, weight: 2}", false},
		{"a value", "key: event.customer_id", "key: event.region", false},
		{"an aggregation added", "sum: event.total * params.weight}", "sum: event.total * params.weight, max: event.total}", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			to := strings.Replace(base, tc.from, tc.to, 1)
			if to == base {
				t.Fatalf("%q not found", tc.from)
			}
			old, err := Build(parseConfig(t, "a.yaml", base))
			if err != nil {
				t.Fatal(err)
			}
			next, err := Build(parseConfig(t, "a.yaml", to))
			if err != nil {
				t.Fatal(err)
			}
			diff := old.Shape().Diff(next.Shape())
			if tc.same != (len(diff) == 0) {
				t.Errorf("diff = %q, want same shape: %v\nold %+v\nnew %+v", diff, tc.same, old.Shape().Stores, next.Shape().Stores)
			}
		})
	}
}
