package processors_test

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/topology"
	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/processors"
)

// probeFields has one field of each kind DecodeFields decodes.
var probeFields = []processors.Field{
	{Name: "store", Type: processors.StoreType, Required: true},
	{Name: "to", Type: processors.OutputType},
	{Name: "key", Type: processors.KeyExpr},
	{Name: "when", Type: processors.BoolExpr},
	{Name: "sum", Type: processors.NumberExpr},
	{Name: "ttl", Type: processors.DurationType},
	{Name: "mode", Type: processors.EnumOf("fast", "slow"), Hint: "fast or slow"},
	{Name: "n", Type: processors.IntType},
	{Name: "on", Type: processors.BoolType},
	{Name: "headers", Type: processors.ExprMapType},
	{Name: "window", Type: processors.MappingType},
	{Name: "as", Type: processors.FieldName},
}

// probeSpec decodes its fields and hands the values to got.
func probeSpec(got *processors.Values) *processors.Spec {
	return &processors.Spec{
		Kind: "probe", Summary: "test", Fields: probeFields, Example: "- probe: {store: s}",
		Build: func(b processors.Builder, n *yaml.Node, path string) processors.Step {
			v, ok := processors.DecodeFields(b, n, path, "probe", probeFields)
			if !ok {
				return nil
			}
			*got = v
			return passStep{}
		},
	}
}

func buildProbe(t *testing.T, steps string) (processors.Values, error) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(steps), &doc); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{App: config.App{ID: "app"}, Rules: []*config.Rule{{
		Name: "r", From: []string{"in"}, Steps: doc.Content[0].Content, OnError: config.OnErrorSkip,
		Pos: diag.Pos{File: "rules.yaml", Path: "rules[0]"},
	}}}
	var v processors.Values
	_, err := topology.Build(cfg, topology.WithSpecs(append(processors.Specs(), probeSpec(&v))))
	return v, err
}

func TestDecodeFieldsValues(t *testing.T) {
	v, err := buildProbe(t, `- probe: {store: s, to: out, key: event.id, when: event.a > 1, sum: event.total,
    ttl: 7d, mode: slow, n: 3, on: true, headers: {src: '"x"', id: event.id}, window: {tumbling: 1h}, as: customer.row}`)
	if err != nil {
		t.Fatal(err)
	}
	if v.String("store", "") != "s" || v.String("to", "") != "out" || v.String("mode", "fast") != "slow" {
		t.Errorf("names: store %q to %q mode %q", v.String("store", ""), v.String("to", ""), v.String("mode", "fast"))
	}
	if v.Expr("key").Source() != "event.id" || v.Expr("when") == nil || v.Expr("sum") == nil {
		t.Errorf("expressions not decoded")
	}
	if v.Duration("ttl", 0) != 7*24*time.Hour || v.Int("n", 0) != 3 || !v.Bool("on", false) {
		t.Errorf("ttl %v n %d on %v", v.Duration("ttl", 0), v.Int("n", 0), v.Bool("on", false))
	}
	if h := v.ExprMap("headers"); len(h) != 2 || h[0].Name != "src" || h[1].Prg.Source() != "event.id" {
		t.Errorf("headers %+v", h)
	}
	if parts, name := v.FieldName("as"); len(parts) != 2 || parts[1] != "row" || name != "customer.row" {
		t.Errorf("as %q %q", parts, name)
	}
	if !v.Has("window") || v.Node("window").Kind != yaml.MappingNode {
		t.Errorf("window node %v", v.Node("window"))
	}

	// Defaults of absent fields.
	v, err = buildProbe(t, `- probe: {store: s}`)
	if err != nil {
		t.Fatal(err)
	}
	if v.Has("key") || v.Expr("key") != nil || v.Duration("ttl", time.Hour) != time.Hour || v.String("mode", "fast") != "fast" || !v.Bool("on", true) {
		t.Errorf("defaults not applied")
	}
}

func TestDecodeFieldsErrors(t *testing.T) {
	tests := []struct {
		name, steps string
		code        diag.Code
		path, msg   string
		hint        string
	}{
		{"unknown key", "- probe: {store: s, kye: event.id}", diag.InvalidStep, ".kye", `unknown key "kye"`, `did you mean "key"?`},
		{"missing required", "- probe: {key: event.id}", diag.InvalidStep, "", `missing required key "store"`, ""},
		{"not a mapping", "- probe: [a]", diag.InvalidStep, "", "expected a mapping", ""},
		{"expr not a scalar", "- probe: {store: s, key: [a]}", diag.InvalidStep, ".key", "expected an expression", ""},
		{"expr syntax", "- probe: {store: s, key: 'event.'}", diag.ExprSyntax, ".key", "", ""},
		{"bool expr of a number", "- probe: {store: s, when: '1 + 2'}", diag.ExprType, ".when", "when must return a bool", "compare the value"},
		{"number expr of a string", "- probe: {store: s, sum: '\"a\"'}", diag.ExprType, ".sum", "sum must return a number", "double("},
		{"key expr of a list", "- probe: {store: s, key: '[1]'}", diag.ExprType, ".key", "key must return a string or a number", ""},
		{"bad duration", "- probe: {store: s, ttl: soon}", diag.InvalidStep, ".ttl", `"soon" is not a duration`, "30s"},
		{"negative duration", "- probe: {store: s, ttl: -1m}", diag.InvalidStep, ".ttl", "must be positive", ""},
		{"enum value", "- probe: {store: s, mode: quick}", diag.InvalidStep, ".mode", `mode must be fast or slow, found "quick"`, "fast or slow"},
		{"int", "- probe: {store: s, n: many}", diag.InvalidStep, ".n", "n must be an integer", ""},
		{"bool", "- probe: {store: s, on: yes}", diag.InvalidStep, ".on", "on must be true or false", ""},
		{"expr map not a mapping", "- probe: {store: s, headers: [a]}", diag.InvalidStep, ".headers", "headers must be a mapping of names to expressions", ""},
		{"expr map entry", "- probe: {store: s, headers: {a: 'x +'}}", diag.ExprSyntax, ".headers.a", "", ""},
		{"mapping", "- probe: {store: s, window: 1h}", diag.InvalidStep, ".window", "window must be a mapping", ""},
		{"field name", "- probe: {store: s, as: a..b}", diag.InvalidStep, ".as", `field name "a..b"`, ""},
		{"output loop", "- probe: {store: s, to: in}", diag.OutputLoop, ".to", "", ""},
		{"output not a name", "- probe: {store: s, to: {a: b}}", diag.InvalidStep, ".to", "expected a topic name", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := buildProbe(t, tt.steps)
			errs := diag.AsList(err)
			if len(errs) == 0 {
				t.Fatal("no error")
			}
			e := errs[0]
			if e.Code != tt.code || e.Path != "rules[0].steps[0].probe"+tt.path {
				t.Errorf("got %s at %s, want %s at ...probe%s\n%v", e.Code, e.Path, tt.code, tt.path, errs)
			}
			if !strings.Contains(e.Message, tt.msg) || !strings.Contains(e.Hint, tt.hint) {
				t.Errorf("message %q hint %q, want %q and %q", e.Message, e.Hint, tt.msg, tt.hint)
			}
		})
	}
}

// TestFieldTypesInDocs: the type column of docs/steps.md comes from the
// typed fields.
func TestFieldTypesInDocs(t *testing.T) {
	tests := []struct {
		typ  processors.FieldType
		want string
	}{
		{processors.AnyExpr, "expr"},
		{processors.BoolExpr, "expr (bool)"},
		{processors.NumberExpr, "expr (number)"},
		{processors.KeyExpr, "expr (key)"},
		{processors.TimeExpr, "expr (time)"},
		{processors.DurationType, "duration"},
		{processors.StoreType, "store"},
		{processors.ReadStoreOf("table"), "store"},
		{processors.FieldName, "field"},
		{processors.OutputType, "topic"},
		{processors.EnumOf("inner", "left"), `inner \| left`},
		{processors.StepsType, "steps"},
		{processors.ExprMapType, "map of expr"},
		{processors.CustomType("field"), "field"},
	}
	for _, tt := range tests {
		if got := tt.typ.String(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.typ, got, tt.want)
		}
	}
}

type passStep struct{}

func (passStep) Process(processors.ProcessorContext, *processors.Event) (bool, error) {
	return true, nil
}

// TestConvertedKindsErrors: the kinds that read their fields through
// DecodeFields report each problem once, at its field.
func TestConvertedKindsErrors(t *testing.T) {
	tests := []struct {
		name, steps string
		want        []string // "code path" after rules[0].steps[0].
	}{
		{"aggregate count false", "- aggregate: {store: s, count: false}", []string{"VX3004 aggregate.count"}},
		{"aggregate window not a mapping", "- aggregate: {store: s, window: 1h}", []string{"VX3004 aggregate.window"}},
		{"aggregate hopping without advance", "- aggregate: {store: s, window: {hopping: {size: 1h}}}", []string{"VX3004 aggregate.window.hopping"}},
		{"aggregate session not a mapping", "- aggregate: {store: s, window: {session: 5m}}", []string{"VX3004 aggregate.window.session"}},
		{"aggregate bad grace", "- aggregate: {store: s, window: {tumbling: 1h, grace: soon}}", []string{"VX3004 aggregate.window.grace"}},
		{"aggregate several bad fields", "- aggregate: {store: s, sum: '\"a\"', emit: sometimes}", []string{"VX3002 aggregate.sum", "VX3004 aggregate.emit"}},
		{"dedupe bad repartition", "- dedupe: {store: s, id: event.id, repartition: maybe}", []string{"VX3004 dedupe.repartition"}},
		{"join bad type", "- table: t\n- join: {table: t, as: c, type: outer}", []string{"VX3004 join.type"}},
		{"sequence bad emit", "- sequence: {store: s, first: 'true', then: 'true', emit: some}", []string{"VX3004 sequence.emit"}},
		{"to headers not a mapping", "- to: {topic: out, headers: [a]}", []string{"VX3004 to.headers"}},
		{"rekey key not a scalar", "- rekey: {key: [a]}\n- to: out", []string{"VX3004 rekey.key"}},
		{"log not a scalar", "- log: [a]", []string{"VX3004 log"}},
		{"route when not bool", "- route:\n  - when: '1'\n    steps: [{to: a}]", []string{"VX3002 route[0].when"}},
		{"route steps not a list", "- route:\n  - when: 'true'\n    steps: {to: a}", []string{"VX3004 route[0].steps"}},
		{"route error inside a branch", "- route:\n  - default: [{filter: '1'}]", []string{"VX3002 route[0].default[0].filter"}},
		{"table store not a name", "- table: {store: [a]}", []string{"VX3004 table.store"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, e := range buildErr(t, tt.steps) {
				p := strings.TrimPrefix(e.Path, "rules[0].steps[0].")
				p = strings.TrimPrefix(p, "rules[0].steps[1].")
				got = append(got, string(e.Code)+" "+p)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("problems\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}
