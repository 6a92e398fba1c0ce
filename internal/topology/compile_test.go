package topology

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/veltrix/veltrix/pkg/diag"
)

// TestCompileReportsEachProblemOnce checks that a problem the loader finds
// is not raised again by the build: the loader owns a rule's template
// reference and the template declarations, the build the steps and use:.
func TestCompileReportsEachProblemOnce(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // "CODE line"
	}{
		{
			name: "unknown template of a rule",
			src: `app: {id: shop}
kafka: {brokers: [localhost:9092]}
rules:
  - name: r
    from: orders
    template: nope
`,
			want: []string{"VX2001 6"},
		},
		{
			name: "unknown template of a use step",
			src: `app: {id: shop}
kafka: {brokers: [localhost:9092]}
templates:
  flag:
    steps: [{filter: 'true'}]
rules:
  - name: r
    from: orders
    steps:
      - use: flagg
`,
			want: []string{"VX2001 10"},
		},
		{
			name: "a malformed parameter, its template used by a rule",
			src: `app: {id: shop}
kafka: {brokers: [localhost:9092]}
templates:
  t:
    params:
      n: {type: integer}
    steps: [{filter: 'params.n > 1'}]
rules:
  - name: r
    from: orders
    template: t
    with: {n: 2}
`,
			want: []string{"VX2007 6"},
		},
		{
			name: "loader and build problems together, sorted by place",
			src: `app: {id: shop}
kafka: {brokers: [localhost:9092]}
rules:
  - name: a
    from: orders
    template: nope
  - name: b
    from: orders
    steps:
      - filter: 'event.total >'
`,
			want: []string{"VX2001 6", "VX3001 10"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "veltrix.yaml")
			if err := os.WriteFile(path, []byte(tt.src), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, topo, err := Compile(path)
			if cfg == nil || topo != nil || err == nil {
				t.Fatalf("Compile = %v, %v, %v; want a Config, no Topology and problems", cfg != nil, topo != nil, err)
			}
			var got []string
			for _, e := range diag.AsList(err) {
				got = append(got, fmt.Sprintf("%s %d", e.Code, e.Line))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems %v, want %v\n%v", got, tt.want, err)
			}
		})
	}
}

// TestCompileValid checks that a valid file gives its Config and Topology.
func TestCompileValid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "veltrix.yaml")
	src := "app: {id: shop}\nkafka: {brokers: [localhost:9092]}\nrules:\n  - {name: r, from: orders, steps: [{to: paid}]}\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, topo, err := Compile(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.App.ID != "shop" || len(topo.Rules) != 1 || !slices.Equal(topo.OutputTopics(), []string{"paid", "shop.dlq"}) {
		t.Errorf("got app %q, %d rules, outputs %v", cfg.App.ID, len(topo.Rules), topo.OutputTopics())
	}
}
