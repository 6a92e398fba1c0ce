package processors_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/topology"
	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/processors"
)

// task collects outputs and tells a fixed time.
type task struct {
	now time.Time
	out []processors.Output
}

func (t *task) Emit(o processors.Output)      { t.out = append(t.out, o) }
func (t *task) Now() time.Time                { return t.now }
func (t *task) Store(string) processors.Store { return nil }
func (t *task) StreamTime() time.Time         { return time.Time{} }

// build compiles steps (YAML of a step list) as the inline steps of one
// rule reading "in" with on_error skip.
func build(t testing.TB, steps string, opts ...topology.Option) *topology.Topology {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(steps), &doc); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{App: config.App{ID: "app"}, Rules: []*config.Rule{{
		Name: "r", From: []string{"in"}, Steps: doc.Content[0].Content, OnError: config.OnErrorSkip,
		Pos: diag.Pos{File: "rules.yaml", Path: "rules[0]"},
	}}}
	top, err := topology.Build(cfg, opts...)
	if err != nil {
		t.Fatalf("Build:\n%v", err)
	}
	return top
}

// buildErr compiles steps that must fail and returns the problems.
func buildErr(t *testing.T, steps string) diag.List {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(steps), &doc); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{App: config.App{ID: "app"}, Rules: []*config.Rule{{
		Name: "r", From: []string{"in"}, Steps: doc.Content[0].Content, Pos: diag.Pos{File: "rules.yaml", Path: "rules[0]"},
	}}}
	_, err := topology.Build(cfg)
	if err == nil {
		t.Fatalf("Build succeeded, want an error")
	}
	return diag.AsList(err)
}

// outcome records the last outcome.
type outcome struct {
	outcome topology.Outcome
	code    diag.Code
}

func (o *outcome) Outcome(_ string, out topology.Outcome, code diag.Code, _ time.Duration) {
	o.outcome, o.code = out, code
}

type want struct {
	topic   string
	key     string
	value   string // JSON, compared as data
	headers map[string]string
}

func TestSteps(t *testing.T) {
	tests := []struct {
		name    string
		steps   string
		value   string
		outcome topology.Outcome
		code    diag.Code
		want    []want
	}{
		{
			name:    "filter passes",
			steps:   `[{filter: 'event.total > 1000'}, {to: out}]`,
			value:   `{"total": 1500}`,
			outcome: topology.OutcomeMatched,
			want:    []want{{topic: "out", key: "k", value: `{"total": 1500}`}},
		},
		{
			name:    "filter stops",
			steps:   `[{filter: 'event.total > 1000'}, {to: out}]`,
			value:   `{"total": 15}`,
			outcome: topology.OutcomeFiltered,
		},
		{
			name:    "filter on a missing field fails",
			steps:   `[{filter: 'event.total > 1000'}, {to: out}]`,
			value:   `{"amount": 15}`,
			outcome: topology.OutcomeError, code: diag.MissingField,
		},
		{
			name:    "filter not returning bool",
			steps:   `[{filter: 'event.flag'}, {to: out}]`,
			value:   `{"flag": "yes"}`,
			outcome: topology.OutcomeError, code: diag.ResultType,
		},
		{
			name:    "set adds, replaces and nests",
			steps:   `[{set: {flag: '"high"', total: 'event.total * 2.0', customer.tier: '"gold"', checked_at: now()}}, {to: out}]`,
			value:   `{"total": 10, "customer": {"id": "c1"}}`,
			outcome: topology.OutcomeMatched,
			want: []want{{topic: "out", key: "k", value: `{"total": 20, "flag": "high", "customer": {"id": "c1", "tier": "gold"},
				"checked_at": "2026-05-06T07:08:09Z"}`}},
		},
		{
			name:    "set creates missing parents",
			steps:   `[{set: {a.b.c: '1'}}, {to: out}]`,
			value:   `{}`,
			outcome: topology.OutcomeMatched,
			want:    []want{{topic: "out", key: "k", value: `{"a": {"b": {"c": 1}}}`}},
		},
		{
			name:    "set reads the event as it was",
			steps:   `[{set: {a: 'event.b', b: 'event.a'}}, {to: out}]`,
			value:   `{"a": 1, "b": 2}`,
			outcome: topology.OutcomeMatched,
			want:    []want{{topic: "out", key: "k", value: `{"a": 2, "b": 1}`}},
		},
		{
			name:    "set through a non-object fails",
			steps:   `[{set: {customer.tier: '"gold"'}}, {to: out}]`,
			value:   `{"customer": "c1"}`,
			outcome: topology.OutcomeError, code: diag.ResultType,
		},
		{
			name:    "drop top-level and nested",
			steps:   `[{drop: [secret, customer.email]}, {to: out}]`,
			value:   `{"id": 1, "secret": "s", "customer": {"id": "c", "email": "e"}}`,
			outcome: topology.OutcomeMatched,
			want:    []want{{topic: "out", key: "k", value: `{"id": 1, "customer": {"id": "c"}}`}},
		},
		{
			name:    "drop a missing field passes the original bytes",
			steps:   `[{drop: [nope, a.b]}, {to: out}]`,
			value:   `{ "id" : 1 }`,
			outcome: topology.OutcomeMatched,
			want:    []want{{topic: "out", key: "k", value: `{ "id" : 1 }`}},
		},
		{
			name:    "map fields",
			steps:   `[{map: {order_id: event.id, amount.value: event.total, amount.currency: '"EUR"'}}, {to: out}]`,
			value:   `{"id": "o1", "total": 5, "noise": true}`,
			outcome: topology.OutcomeMatched,
			want:    []want{{topic: "out", key: "k", value: `{"order_id": "o1", "amount": {"value": 5, "currency": "EUR"}}`}},
		},
		{
			name:    "map expression",
			steps:   `[{map: '{"id": event.id, "n": size(event.items)}'}, {to: out}]`,
			value:   `{"id": "o1", "items": [1, 2, 3]}`,
			outcome: topology.OutcomeMatched,
			want:    []want{{topic: "out", key: "k", value: `{"id": "o1", "n": 3}`}},
		},
		{
			name:    "map expression not returning a map",
			steps:   `[{map: 'event.id'}, {to: out}]`,
			value:   `{"id": "o1"}`,
			outcome: topology.OutcomeError, code: diag.ResultType,
		},
		{
			name: "route takes the first matching branch",
			steps: `
- route:
    - when: event.total > 100
      steps: [{set: {size: '"large"'}}, {to: large}]
    - when: event.total > 10
      steps: [{to: medium}]
    - default: [{to: small}]`,
			value:   `{"total": 500}`,
			outcome: topology.OutcomeMatched,
			want:    []want{{topic: "large", key: "k", value: `{"total": 500, "size": "large"}`}},
		},
		{
			name: "route second branch",
			steps: `
- route:
    - when: event.total > 100
      steps: [{to: large}]
    - when: event.total > 10
      steps: [{to: medium}]
    - default: [{to: small}]`,
			value:   `{"total": 50}`,
			outcome: topology.OutcomeMatched,
			want:    []want{{topic: "medium", key: "k", value: `{"total": 50}`}},
		},
		{
			name: "route default",
			steps: `
- route:
    - when: event.total > 100
      steps: [{to: large}]
    - default: [{to: small}]`,
			value:   `{"total": 5}`,
			outcome: topology.OutcomeMatched,
			want:    []want{{topic: "small", key: "k", value: `{"total": 5}`}},
		},
		{
			name: "route without a match filters",
			steps: `
- route:
    - when: event.total > 100
      steps: [{to: large}]`,
			value:   `{"total": 5}`,
			outcome: topology.OutcomeFiltered,
		},
		{
			name:    "to with key and header expressions",
			steps:   `[{to: {topic: out, key: event.customer_id, headers: {source: '"veltrix"', total: event.total, trace: '"new"'}}}]`,
			value:   `{"customer_id": "c-9", "total": 12.5}`,
			outcome: topology.OutcomeMatched,
			want: []want{{topic: "out", key: "c-9", value: `{"customer_id": "c-9", "total": 12.5}`,
				headers: map[string]string{"source": "veltrix", "total": "12.5", "trace": "new", "origin": "shop"}}},
		},
		{
			name:    "to keeps the original bytes, headers and key",
			steps:   `[{to: a}, {set: {x: '1'}}, {to: b}]`,
			value:   `{"y":  2}`,
			outcome: topology.OutcomeMatched,
			want: []want{
				{topic: "a", key: "k", value: `{"y":  2}`, headers: map[string]string{"trace": "t-1", "origin": "shop"}},
				{topic: "b", key: "k", value: `{"y": 2, "x": 1}`},
			},
		},
		{
			name:    "a failure after to emits nothing",
			steps:   `[{to: a}, {filter: 'event.nope'}]`,
			value:   `{"y": 2}`,
			outcome: topology.OutcomeError, code: diag.MissingField,
		},
		{
			name:    "log continues",
			steps:   `[{log: 'event.y'}, {to: a}]`,
			value:   `{"y": 2}`,
			outcome: topology.OutcomeMatched,
			want:    []want{{topic: "a", key: "k", value: `{"y": 2}`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			top := build(t, tt.steps)
			tk := &task{now: time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)}
			rec := &kgo.Record{Topic: "in", Key: []byte("k"), Value: []byte(tt.value),
				Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("t-1")}, {Key: "origin", Value: []byte("shop")}}}
			var obs outcome
			if err := top.Process(tk, rec, &obs); err != nil {
				t.Fatal(err)
			}
			if obs.outcome != tt.outcome || obs.code != tt.code {
				t.Errorf("outcome %s %s, want %s %s", obs.outcome, obs.code, tt.outcome, tt.code)
			}
			if len(tk.out) != len(tt.want) {
				t.Fatalf("got %d outputs, want %d: %+v", len(tk.out), len(tt.want), tk.out)
			}
			for i, w := range tt.want {
				got := tk.out[i]
				if got.Topic != w.topic || string(got.Key) != w.key {
					t.Errorf("output %d: topic %s key %s, want %s %s", i, got.Topic, got.Key, w.topic, w.key)
				}
				if !jsonEqual(t, got.Value, w.value) {
					t.Errorf("output %d: value %s, want %s", i, got.Value, w.value)
				}
				if strings.Contains(tt.name, "original bytes") && i == 0 && string(got.Value) != w.value {
					t.Errorf("output %d: value %q is not the original bytes %q", i, got.Value, w.value)
				}
				if w.headers != nil {
					h := map[string]string{}
					for _, kv := range got.Headers {
						h[kv.Key] = string(kv.Value)
					}
					if !reflect.DeepEqual(h, w.headers) {
						t.Errorf("output %d: headers %v, want %v", i, h, w.headers)
					}
				}
			}
		})
	}
}

func jsonEqual(t *testing.T, got []byte, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Errorf("output is not JSON: %s", got)
		return false
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want %s: %v", want, err)
	}
	return reflect.DeepEqual(g, w)
}

func TestLogStep(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	top := build(t, `[{log: '{"id": event.id, "twice": event.n * 2.0}'}]`, topology.WithLogger(log))
	rec := &kgo.Record{Topic: "in", Partition: 3, Offset: 7, Value: []byte(`{"id": "o1", "n": 2}`)}
	if err := top.Process(&task{}, rec, nil); err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log output %q: %v", buf.String(), err)
	}
	if line["rule"] != "r" || line["level"] != "INFO" || line["offset"] != 7.0 ||
		!reflect.DeepEqual(line["value"], map[string]any{"id": "o1", "twice": 4.0}) {
		t.Errorf("log line %v", line)
	}
}

func TestStepShapeErrors(t *testing.T) {
	tests := []struct {
		name  string
		steps string
		code  diag.Code
		line  int
		col   int
		hint  string
	}{
		{"unknown kind", "- filtr: 'true'", diag.UnknownStep, 1, 3, `did you mean "filter"?`},
		{"filter with a list", "- filter: [1, 2]", diag.InvalidStep, 1, 11, ""},
		{"filter not bool", "- filter: 'event.a + 1 > 2 ? 1 : 2'", diag.ExprType, 1, 11, ""},
		{"to without topic", "- to: {key: event.id}", diag.InvalidStep, 1, 7, ""},
		{"to with an extra key", "- to: {topic: out, keys: event.id}", diag.InvalidStep, 1, 20, `did you mean "key"?`},
		{"to an invalid topic", "- to: 'bad topic!'", diag.InvalidTopic, 1, 7, ""},
		{"to the input topic", "- to: in", diag.OutputLoop, 1, 7, ""},
		{"set with a list", "- set: [a]", diag.InvalidStep, 1, 8, ""},
		{"set field with empty part", "- set: {a..b: '1'}", diag.InvalidStep, 1, 9, ""},
		{"drop a mapping", "- drop: {a: 1}", diag.InvalidStep, 1, 9, ""},
		{"map returning a number", "- map: '1 + 2'", diag.ExprType, 1, 8, ""},
		{"two kinds in one step", "- filter: 'true'\n  to: out", diag.InvalidStep, 2, 3, ""},
		{"a step that is not a mapping", "- filter", diag.InvalidStep, 1, 3, ""},
		{"route not a list", "- route: {when: 'true'}", diag.InvalidStep, 1, 10, ""},
		{"route branch without steps", "- route:\n  - when: 'true'", diag.InvalidStep, 2, 5, ""},
		{"route branch unknown key", "- route:\n  - when: 'true'\n    step: []", diag.InvalidStep, 3, 5, `did you mean "steps"?`},
		{"unreachable after default", "- route:\n  - default: [{to: a}]\n  - when: event.x\n    steps: [{to: b}]", diag.UnreachableBranch, 3, 5, ""},
		{"unreachable after when true", "- route:\n  - when: 'true'\n    steps: [{to: a}]\n  - default: [{to: b}]", diag.UnreachableBranch, 4, 5, ""},
		{"step after a route", "- route:\n  - default: [{to: a}]\n- to: b", diag.InvalidStep, 3, 3, ""},
		{"error inside a branch", "- route:\n  - when: 'true'\n    steps: [{filter: 'event.a >'}]", diag.ExprSyntax, 3, 32, ""},
		{"params outside a template", "- to: '${params.out}'", diag.UnknownParam, 1, 7, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := buildErr(t, tt.steps)
			e := errs[0]
			if e.Code != tt.code || e.Line != tt.line || e.Column != tt.col || e.File != "rules.yaml" {
				t.Errorf("got %s at %d:%d, want %s at %d:%d\n%v", e.Code, e.Line, e.Column, tt.code, tt.line, tt.col, errs)
			}
			if !strings.Contains(e.Hint, tt.hint) {
				t.Errorf("hint %q does not contain %q", e.Hint, tt.hint)
			}
			if !strings.HasPrefix(e.Path, "rules[0].steps[") {
				t.Errorf("path %q", e.Path)
			}
		})
	}
}

func TestSpecsAreComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range processors.Specs() {
		if s.Kind == "" || s.Summary == "" || s.Doc == "" || s.Example == "" || s.Build == nil {
			t.Errorf("spec %q is incomplete", s.Kind)
		}
		if seen[s.Kind] {
			t.Errorf("kind %q twice", s.Kind)
		}
		seen[s.Kind] = true
		// Every example builds.
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(s.Example), &doc); err != nil {
			t.Errorf("%s example: %v", s.Kind, err)
			continue
		}
		var cfgErr error
		func() {
			defer func() {
				if p := recover(); p != nil {
					cfgErr = errors.New("panic")
				}
			}()
			tmpl := &config.Template{Name: "t", Steps: doc.Content[0].Content,
				Params: []*config.Param{{Name: "out", Type: config.ParamTopic, Default: &config.Value{V: "x.out"}}}}
			cfg := &config.Config{App: config.App{ID: "app"}, Templates: []*config.Template{tmpl},
				Rules: []*config.Rule{{Name: "r", From: []string{"in"}, Template: "t"}}}
			_, cfgErr = topology.Build(cfg)
		}()
		if cfgErr != nil {
			t.Errorf("%s example does not build: %v", s.Kind, cfgErr)
		}
	}
}
