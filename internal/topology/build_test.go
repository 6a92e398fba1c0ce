package topology

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/processors"
)

// problem is an expected error: code at line:col.
type problem struct {
	code      diag.Code
	line, col int
}

func (p problem) String() string { return fmt.Sprintf("%s@%d:%d", p.code, p.line, p.col) }

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []problem
	}{
		{
			name: "unknown step kind",
			src: `
rules:
  - name: r
    from: orders
    steps:
      - filter: event.total > 1
      - sett: {a: '1'}
`,
			want: []problem{{diag.UnknownStep, 7, 9}},
		},
		{
			name: "CEL syntax error inside a template",
			src: `
templates:
  t:
    params:
      threshold: {type: number, default: 1000}
    steps:
      - filter: event.total >= params.threshold &&
      - to: out
rules:
  - name: r
    from: orders
    template: t
`,
			want: []problem{{diag.ExprSyntax, 7, 51}},
		},
		{
			name: "CEL type error against a typed param",
			src: `
templates:
  t:
    params:
      threshold: {type: number}
    steps:
      - filter: 'event.type == "order.created" && params.threshold == "5k"'
rules:
  - name: r
    from: orders
    template: t
    with: {threshold: 5000}
`,
			want: []problem{{diag.ExprType, 7, 68}},
		},
		{
			name: "output loops into the input after substitution",
			src: `
templates:
  t:
    params:
      out: {type: topic}
    steps:
      - to: ${params.out}
rules:
  - name: r
    from: [orders, payments]
    template: t
    with: {out: payments}
`,
			want: []problem{{diag.OutputLoop, 7, 13}},
		},
		{
			name: "invalid topic after substitution",
			src: `
templates:
  t:
    params:
      region: {type: string}
    steps:
      - to: orders.${params.region}
rules:
  - name: r
    from: orders
    template: t
    with: {region: eu west}
`,
			want: []problem{{diag.InvalidTopic, 7, 13}},
		},
		{
			name: "unreachable branch",
			src: `
rules:
  - name: r
    from: orders
    steps:
      - route:
          - when: event.total > 1
            steps: [{to: big}]
          - default: [{to: small}]
          - when: event.total > 2
            steps: [{to: never}]
`,
			want: []problem{{diag.UnreachableBranch, 10, 13}},
		},
		{
			name: "template cycle",
			src: `
templates:
  a:
    steps:
      - use: b
  b:
    steps:
      - filter: 'true'
      - use: a
rules:
  - name: r
    from: orders
    template: a
`,
			want: []problem{{diag.TemplateCycle, 9, 14}},
		},
		{
			name: "template using itself",
			src: `
templates:
  a:
    steps:
      - use: a
rules:
  - name: r
    from: orders
    steps: [{use: a}]
`,
			want: []problem{{diag.TemplateCycle, 5, 14}},
		},
		{
			name: "unknown template in a use step",
			src: `
templates:
  flag:
    steps: [{filter: 'true'}]
rules:
  - name: r
    from: orders
    steps:
      - use: flagg
`,
			want: []problem{{diag.UnknownTemplate, 9, 14}},
		},
		{
			name: "problems in several rules and an unused template, all reported",
			src: `
templates:
  unused:
    params:
      n: {type: int}
    steps:
      - filter: params.n == "x"
rules:
  - name: a
    from: orders
    steps:
      - filter: 'event.total >'
  - name: b
    from: orders
    steps:
      - to: orders
  - name: c
    from: orders
    steps:
      - drop: {x: 1}
`,
			want: []problem{{diag.ExprType, 7, 26}, {diag.ExprSyntax, 12, 31}, {diag.OutputLoop, 16, 13}, {diag.InvalidStep, 20, 15}},
		},
		{
			name: "a template's error is reported once for every rule using it",
			src: `
templates:
  t:
    steps:
      - filter: nope
rules:
  - {name: a, from: x, template: t}
  - {name: b, from: y, template: t}
`,
			want: []problem{{diag.ExprType, 5, 17}},
		},
		{
			name: "use with a wrong argument type",
			src: `
templates:
  inner:
    params:
      n: {type: int}
    steps: [{filter: 'params.n > 1'}]
rules:
  - name: r
    from: orders
    steps:
      - use: inner
        with: {n: 'many'}
`,
			want: []problem{{diag.ParamType, 12, 19}},
		},
		{
			name: "DLQ equal to an input",
			src: `
rules:
  - name: r
    from: orders
    on_error: dlq
    dlq: orders
    steps: [{filter: 'true'}]
`,
			want: []problem{{diag.OutputLoop, 3, 5}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := parseConfig(t, "veltrix.yaml", tt.src)
			top, err := Build(cfg)
			if err == nil {
				t.Fatalf("Build succeeded with %d rules, want %v", len(top.Rules), tt.want)
			}
			list := diag.AsList(err)
			var got []problem
			for _, e := range list {
				got = append(got, problem{e.Code, e.Line, e.Column})
				if e.File != "veltrix.yaml" || e.Path == "" || e.Message == "" {
					t.Errorf("error without file, path or message: %+v", e)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v\n%v", got, tt.want, err)
			}
		})
	}
}

func TestBuildTemplates(t *testing.T) {
	cfg := parseConfig(t, "veltrix.yaml", `
app: {id: shop}
templates:
  high_value_order:
    params:
      threshold: {type: number, default: 1000}
      out: {type: topic}
      window: {type: duration, default: 1h}
    steps:
      - filter: event.type == "order.created" && event.total >= params.threshold
      - set: {flag: '"high_value"', checked_at: now()}
      - use: tag
        with: {label: '${params.out}', copies: 2}
      - to: ${params.out}
  tag:
    params:
      label: {type: string}
      copies: {type: int, default: 1}
    steps:
      - set: {label: params.label, copies: params.copies}
rules:
  - name: big-orders
    from: orders
    template: high_value_order
    with: {threshold: 5000, out: orders.high-value}
    on_error: dlq
`)
	top, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := top.Rule("big-orders")
	if r == nil || r.DLQ != "shop.dlq" || !slices.Equal(r.Outputs, []string{"orders.high-value"}) {
		t.Fatalf("rule %+v", r)
	}
	tk := &task{}
	for _, v := range []string{`{"type":"order.created","total":7000}`, `{"type":"order.created","total":70}`} {
		if err := top.Process(tk, record("orders", "o-1", v), nil); err != nil {
			t.Fatal(err)
		}
	}
	if len(tk.out) != 1 || tk.out[0].Topic != "orders.high-value" ||
		!strings.Contains(string(tk.out[0].Value), `"label":"orders.high-value"`) ||
		!strings.Contains(string(tk.out[0].Value), `"copies":2`) {
		t.Errorf("outputs %v", tk.out)
	}
	if got := top.InputTopics(); !slices.Equal(got, []string{"orders"}) {
		t.Errorf("InputTopics = %v", got)
	}
	if got := top.OutputTopics(); !slices.Equal(got, []string{"orders.high-value", "shop.dlq"}) {
		t.Errorf("OutputTopics = %v", got)
	}
}

// TestBuildWithSpecs checks that extra step kinds plug in, and that a panic
// inside a step is a VX9001 failure of the event, not a crash.
func TestPanicInStep(t *testing.T) {
	boom := &processors.Spec{Kind: "boom", Summary: "s", Doc: "d", Example: "- boom: x",
		Build: func(b processors.Builder, n *yaml.Node, path string) processors.Step { return boomStep{} }}
	cfg := parseConfig(t, "veltrix.yaml", `
rules:
  - {name: r, from: in, on_error: dlq, steps: [{to: early}, {boom: x}]}
`)
	top, err := Build(cfg, WithSpecs(append(processors.Specs(), boom)))
	if err != nil {
		t.Fatal(err)
	}
	tk := &task{}
	var obs observed
	if err := top.Process(tk, record("in", "k", `{}`), &obs); err != nil {
		t.Fatal(err)
	}
	if len(tk.out) != 1 || tk.out[0].Topic != "shop.dlq" || header(tk.out[0], HeaderErrorCode) != string(diag.Internal) {
		t.Errorf("outputs %+v", tk.out)
	}
	if !slices.Equal(obs.got, []string{"r dlq VX9001"}) {
		t.Errorf("outcomes %v", obs.got)
	}
}

type boomStep struct{}

func (boomStep) Process(processors.ProcessorContext, *processors.Event) (bool, error) {
	panic("step exploded")
}
