package processors_test

import (
	"fmt"
	"slices"
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
	{Name: "fields", Type: processors.FieldExprMap},
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
	var v processors.Values
	return v, buildWithSpec(t, probeSpec(&v), steps)
}

// buildWithSpec builds steps, one rule's, with the built-in kinds and spec.
func buildWithSpec(t *testing.T, spec *processors.Spec, steps string) error {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(steps), &doc); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{App: config.App{ID: "app"}, Rules: []*config.Rule{{
		Name: "r", From: []string{"in"}, Steps: doc.Content[0].Content, OnError: config.OnErrorSkip,
		Pos: diag.Pos{File: "rules.yaml", Path: "rules[0]"},
	}}}
	_, err := topology.Build(cfg, topology.WithSpecs(append(processors.Specs(), spec)))
	return err
}

func TestDecodeFieldsValues(t *testing.T) {
	v, err := buildProbe(t, `- probe: {store: s, to: out, key: event.id, when: event.a > 1, sum: event.total,
    ttl: 7d, mode: slow, n: 3, on: true, headers: {src: '"x"', id: event.id}, window: {tumbling: 1h}, as: customer.row,
    fields: {b: '1', a.c: event.id}}`)
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
	if f := v.ExprMap("fields"); len(f) != 2 || f[0].Name != "b" || !slices.Equal(f[0].Path, []string{"b"}) ||
		f[1].Name != "a.c" || !slices.Equal(f[1].Path, []string{"a", "c"}) || f[1].Prg.Source() != "event.id" {
		t.Errorf("fields %+v", f)
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
		{"field expr map not a mapping", "- probe: {store: s, fields: a}", diag.InvalidStep, ".fields", `fields must be a mapping of field names to expressions, found "a"`, ""},
		{"field expr map bad name", "- probe: {store: s, fields: {a..b: '1'}}", diag.InvalidStep, ".fields.a..b", `field name "a..b": empty part between dots`, ""},
		{"field expr map entry", "- probe: {store: s, fields: {a: [1]}}", diag.InvalidStep, ".fields.a", "expected an expression, found a list", ""},
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
		{processors.FieldExprMap, "map of field to expr"},
		{processors.FieldType{Kind: processors.KindExprMap, Keys: processors.KindFieldName, Result: processors.ResultNumber}, "map of field to expr (number)"},
		{processors.MapExpr, "expr (map)"},
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
		{"aggregate negative grace", "- aggregate: {store: s, window: {tumbling: 1h, grace: -1m}}", []string{"VX3004 aggregate.window.grace"}},
		{"aggregate grace 0m is allowed", "- aggregate: {store: s, count: false, window: {tumbling: 1h, grace: 0m}}", []string{"VX3004 aggregate.count"}},
		{"aggregate grace 0 is allowed", "- aggregate: {store: s, count: false, window: {tumbling: 1h, grace: 0}}", []string{"VX3004 aggregate.count"}},
		{"aggregate hopping not a mapping", "- aggregate: {store: s, window: {hopping: 1h}}", []string{"VX3004 aggregate.window.hopping"}},
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
		{"set not a mapping", "- set: [a]", []string{"VX3004 set"}},
		{"set empty", "- set: {}", []string{"VX3004 set"}},
		{"set several bad fields", "- set: {a..b: 'x +', c: 'y +', d: [1], e: '1'}", []string{"VX3004 set.a..b", "VX3001 set.c", "VX3004 set.d"}},
		{"drop a mapping", "- drop: {a: 1}", []string{"VX3004 drop"}},
		{"drop an empty list", "- drop: []", []string{"VX3004 drop"}},
		{"drop bad names in a list", "- drop: [a, b..c, [d]]", []string{"VX3004 drop[1]", "VX3004 drop[2]"}},
		{"drop one bad name", "- drop: .a", []string{"VX3004 drop"}},
		{"map not a mapping", "- map: [a]", []string{"VX3004 map"}},
		{"map empty", "- map: {}", []string{"VX3004 map"}},
		{"map several bad fields", "- map: {.a: '1', b: 'nope()', c: {d: 1}}", []string{"VX3004 map..a", "VX3002 map.b", "VX3004 map.c"}},
		{"map expression not a map", "- map: '[1]'", []string{"VX3002 map"}},
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

// wholeSpec is a kind whose whole value is one field of type typ.
func wholeSpec(typ processors.FieldType, got *processors.Values) *processors.Spec {
	fields := []processors.Field{{Name: processors.WholeValue, Type: typ, Required: true}}
	return &processors.Spec{
		Kind: "whole", Summary: "test", Fields: fields, Example: "- whole: {a: '1'}",
		Build: func(b processors.Builder, n *yaml.Node, path string) processors.Step {
			v, ok := processors.DecodeFields(b, n, path, "whole", fields)
			if !ok {
				return nil
			}
			*got = v
			return passStep{}
		},
	}
}

// TestDecodeWholeFieldExprMap: a kind whose whole value is a mapping of
// event field names to expressions (as set and map) decodes it by its type,
// with every problem reported once, at its name or its expression.
func TestDecodeWholeFieldExprMap(t *testing.T) {
	numbers := processors.FieldType{Kind: processors.KindExprMap, Keys: processors.KindFieldName, Result: processors.ResultNumber}
	tests := []struct {
		name, steps string
		typ         processors.FieldType
		want        []string // "code path: message" after rules[0].steps[0].whole
		entries     []string // name=source, when valid
	}{
		{"entries in order", "- whole: {b: '1', a.c: event.x}", processors.FieldExprMap, nil, []string{"b=1", "a.c=event.x"}},
		{"a list", "- whole: [a]", processors.FieldExprMap,
			[]string{"VX3004 : expected a mapping of field names to expressions, found a list"}, nil},
		{"a scalar", "- whole: a", processors.FieldExprMap,
			[]string{`VX3004 : expected a mapping of field names to expressions, found "a"`}, nil},
		{"null", "- whole: ~", processors.FieldExprMap,
			[]string{"VX3004 : expected a mapping of field names to expressions, found null"}, nil},
		{"an empty mapping", "- whole: {}", processors.FieldExprMap,
			[]string{"VX3004 : expected a mapping of field names to expressions, found a mapping"}, nil},
		{"an empty part", "- whole: {a..b: '1'}", processors.FieldExprMap,
			[]string{`VX3004 .a..b: field name "a..b": empty part between dots`}, nil},
		{"an empty name", "- whole: {'': '1'}", processors.FieldExprMap,
			[]string{`VX3004 .: field name "": empty`}, nil},
		{"a value not a scalar", "- whole: {a: {b: 1}}", processors.FieldExprMap,
			[]string{"VX3004 .a: expected an expression, found a mapping"}, nil},
		{"a syntax error", "- whole: {a: 'x +'}", processors.FieldExprMap,
			[]string{`VX3001 .a: syntax error in expression "x +"`}, nil},
		{"an unknown name", "- whole: {a: 'nope(1)'}", processors.FieldExprMap,
			[]string{`VX3002 .a: type error in expression "nope(1)"`}, nil},
		{"any result fits", "- whole: {a: '\"x\"', b: '[1]', c: 'true'}", processors.FieldExprMap, nil, []string{`a="x"`, "b=[1]", "c=true"}},
		{"an ill-typed result", "- whole: {a: '\"x\"', b: event.total, c: 'true'}", numbers,
			[]string{`VX3002 .a: a must return a number, but "\"x\"" returns string`, `VX3002 .c: c must return a number, but "true" returns bool`}, nil},
		{"a bad name skips its expression", "- whole: {a..b: 'x +', c: 'y +'}", processors.FieldExprMap,
			[]string{`VX3004 .a..b: field name "a..b"`, `VX3001 .c: syntax error in expression "y +"`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v processors.Values
			errs := diag.AsList(buildWithSpec(t, wholeSpec(tt.typ, &v), tt.steps))
			if len(errs) != len(tt.want) {
				t.Fatalf("problems %v, want %q", errs, tt.want)
			}
			for i, e := range errs {
				got := string(e.Code) + " " + strings.TrimPrefix(e.Path, "rules[0].steps[0].whole") + ": " + e.Message
				if !strings.HasPrefix(got, tt.want[i]) {
					t.Errorf("problem %d: %q, want %q...", i, got, tt.want[i])
				}
				if e.Code == diag.ExprType && tt.typ.Result == processors.ResultNumber && e.Hint == "" {
					t.Errorf("problem %d has no hint", i)
				}
			}
			if tt.want != nil {
				return
			}
			var got []string
			for _, e := range v.ExprMap(processors.WholeValue) {
				if strings.Join(e.Path, ".") != e.Name {
					t.Errorf("%s: path %q", e.Name, e.Path)
				}
				got = append(got, e.Name+"="+e.Prg.Source())
			}
			if !slices.Equal(got, tt.entries) {
				t.Errorf("entries %q, want %q", got, tt.entries)
			}
		})
	}
}

// TestSetAndMapProblems: set and map, which decode their value as a
// mapping of field names to expressions, and drop, a list of field names,
// report the codes, places and messages they always have.
func TestSetAndMapProblems(t *testing.T) {
	tests := []struct {
		name, steps string
		want        []string // "code line:col path: message"
	}{
		{"set a list", "- set: [a]", []string{"VX3004 1:8 set: expected a mapping of field names to expressions, found a list"}},
		{"set a scalar", "- set: x", []string{`VX3004 1:8 set: expected a mapping of field names to expressions, found "x"`}},
		{"set nothing", "- set: ~", []string{"VX3004 1:8 set: expected a mapping of field names to expressions, found null"}},
		{"set empty", "- set: {}", []string{"VX3004 1:8 set: expected a mapping of field names to expressions, found a mapping"}},
		{"set empty part", "- set: {a..b: '1'}", []string{`VX3004 1:9 set.a..b: field name "a..b": empty part between dots`}},
		{"set leading dot", "- set: {.a: '1'}", []string{`VX3004 1:9 set..a: field name ".a": empty part between dots`}},
		{"set empty name", "- set: {'': '1'}", []string{`VX3004 1:9 set.: field name "": empty`}},
		{"set a list value", "- set: {a: [1]}", []string{"VX3004 1:12 set.a: expected an expression, found a list"}},
		{"set syntax", "- set: {a: 'x +'}", []string{`VX3001 1:16 set.a: syntax error in expression "x +"`}},
		{"set undeclared", "- set: {a: 'nope(1)'}", []string{`VX3002 1:17 set.a: type error in expression "nope(1)": undeclared reference to 'nope'`}},
		{"set several", "- set: {a..b: 'x +', c: 'y +', d: [1]}", []string{
			`VX3004 1:9 set.a..b: field name "a..b": empty part between dots`,
			`VX3001 1:29 set.c: syntax error in expression "y +"`,
			"VX3004 1:35 set.d: expected an expression, found a list"}},
		{"map a list", "- map: [a]", []string{"VX3004 1:8 map: expected a mapping of field names to expressions, found a list"}},
		{"map empty", "- map: {}", []string{"VX3004 1:8 map: expected a mapping of field names to expressions, found a mapping"}},
		{"map empty part", "- map: {a..b: '1'}", []string{`VX3004 1:9 map.a..b: field name "a..b": empty part between dots`}},
		{"map a list value", "- map: {a: [1]}", []string{"VX3004 1:12 map.a: expected an expression, found a list"}},
		{"map entry syntax", "- map: {a: 'x +'}", []string{`VX3001 1:16 map.a: syntax error in expression "x +"`}},
		{"map expression syntax", "- map: 'x +'", []string{`VX3001 1:12 map: syntax error in expression "x +"`}},
		{"map expression of a number", "- map: '1 + 2'", []string{`VX3002 1:8 map: map must return a map, but "1 + 2" returns int`}},
		{"map expression of a list", "- map: '[1]'", []string{`VX3002 1:8 map: map must return a map, but "[1]" returns list(int)`}},
		{"drop a mapping", "- drop: {a: 1}", []string{"VX3004 1:9 drop: drop expects a list of field names, found a mapping"}},
		{"drop an empty list", "- drop: []", []string{"VX3004 1:9 drop: drop needs at least one field name"}},
		{"drop a bad name", "- drop: [a, b..c]", []string{`VX3004 1:13 drop[1]: field name "b..c": empty part between dots`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := buildErr(t, tt.steps)
			if len(errs) != len(tt.want) {
				t.Fatalf("problems %v, want %q", errs, tt.want)
			}
			for i, e := range errs {
				got := fmt.Sprintf("%s %d:%d %s: %s", e.Code, e.Line, e.Column, strings.TrimPrefix(e.Path, "rules[0].steps[0]."), e.Message)
				if !strings.HasPrefix(got, tt.want[i]) {
					t.Errorf("problem %d: %q, want %q...", i, got, tt.want[i])
				}
			}
		})
	}
}

// TestSetAndMapReadTypedValues: set and map build their steps from the
// decoded entries, in YAML order (describe shows them as written).
func TestSetAndMapReadTypedValues(t *testing.T) {
	tests := []struct{ steps, want string }{
		{"- set: {b: event.x, a.c: '1'}\n- to: out", "b = event.x, a.c = 1"},
		{"- map: {z: event.id, y.w: event.total}\n- to: out", "z = event.id, y.w = event.total"},
		{"- map: '{\"id\": event.id}'\n- to: out", `{"id": event.id}`},
	}
	for _, tt := range tests {
		info := build(t, tt.steps).Description().Rules[0].Steps[0]
		if info.Arg != tt.want {
			t.Errorf("%s: describe %q, want %q", tt.steps, info.Arg, tt.want)
		}
	}
}
