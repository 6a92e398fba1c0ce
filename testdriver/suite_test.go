package testdriver

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/veltrix/veltrix/internal/topology"
	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/processors"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		name      string
		want, got any
		diffs     []string
	}{
		{"equal scalars", "a", "a", nil},
		{"numbers as float64", 7000, float64(7000), nil},
		{"subset object", map[string]any{"a": 1}, map[string]any{"a": float64(1), "b": "x"}, nil},
		{"nested subset", map[string]any{"a": map[string]any{"b": true}}, map[string]any{"a": map[string]any{"b": true, "c": 1}}, nil},
		{"differing field", map[string]any{"flag": "HIGH"}, map[string]any{"flag": "high"}, []string{`v.flag: expected "HIGH", got "high"`}},
		{"missing field", map[string]any{"a": 1}, map[string]any{}, []string{"v.a: missing (expected 1)"}},
		{"not an object", map[string]any{"a": 1}, "str", []string{`v: expected an object, got "str"`}},
		{"arrays exact", []any{1, 2}, []any{float64(1), float64(2), float64(3)}, []string{"v: expected [1,2], got [1,2,3]"}},
		{"arrays equal", []any{1, map[string]any{"a": "b"}}, []any{float64(1), map[string]any{"a": "b"}}, nil},
		{"null", nil, nil, nil},
		{"null vs value", nil, "x", []string{`v: expected null, got "x"`}},
		{"nested diff path", map[string]any{"a": map[string]any{"b": 2}}, map[string]any{"a": map[string]any{"b": 3}}, []string{"v.a.b: expected 2, got 3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Match("v", tt.want, tt.got); !slices.Equal(got, tt.diffs) {
				t.Errorf("Match = %q, want %q", got, tt.diffs)
			}
		})
	}
}

func TestParseSuiteErrors(t *testing.T) {
	tests := []struct {
		name, yml string
		want      []string // "CODE line:col path"
	}{
		{"syntax", "cases:\n  - name: a: b\n", []string{"VX1002 2:0 "}},
		{"empty", "", []string{"VX1103 0:0 "}},
		{"no cases", "rule: r\n", []string{"VX1103 1:1 cases"}},
		{"cases not a list", "cases: {a: 1}\n", []string{"VX1102 1:8 cases"}},
		{"unknown top key", "rules: r\ncases: []\n", []string{"VX1101 1:1 rules"}},
		{"case without name and input", "cases:\n  - expect: []\n", []string{"VX1103 2:5 cases[0]"}},
		{"input without value", "cases:\n  - name: a\n    input: [{key: k}]\n", []string{"VX1103 3:13 cases[0].input[0]"}},
		{"bad timestamp", "cases:\n  - name: a\n    input: [{value: {}, timestamp: noon}]\n", []string{"VX1104 3:36 cases[0].input[0].timestamp"}},
		{"bad advance", "cases:\n  - name: a\n    input: [{value: {}}]\n    advance: -1m\n", []string{"VX1104 4:14 cases[0].advance"}},
		{"expect_state without key", "cases:\n  - name: a\n    input: [{value: {}}]\n    expect_state: {store: s}\n", []string{"VX1103 4:19 cases[0].expect_state"}},
		{"headers not a mapping", "cases:\n  - name: a\n    input: [{value: {}, headers: [a]}]\n", []string{"VX1102 3:34 cases[0].input[0].headers"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSuite("t.yaml", []byte(tt.yml))
			var got []string
			for _, e := range diag.AsList(err) {
				got = append(got, fmt.Sprintf("%s %d:%d %s", e.Code, e.Line, e.Column, e.Path))
				if e.File != "t.yaml" || e.Message == "" {
					t.Errorf("problem without file or message: %+v", e)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems %q, want %q\n%v", got, tt.want, err)
			}
		})
	}
}

func TestParseSuite(t *testing.T) {
	s, err := ParseSuite("t.yaml", []byte(`
rule: counter
cases:
  - name: full
    input:
      - {topic: in, key: k, value: {a: [1, 2]}, headers: {h2: b, h1: a}, timestamp: "2026-01-01T10:00:00Z"}
      - {value: "raw bytes"}
    expect: [{topic: out, key: k, value: {a: 1}, headers: {h1: a}}]
    advance: 1h30m
    expect_state: [{store: s, key: k}, {store: s, key: j, value: 2}]
  - name: no expect
    input: [{key: ~, value: {}}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Rule != "counter" || len(s.Cases) != 2 {
		t.Fatalf("suite = %+v", s)
	}
	c := s.Cases[0]
	in := c.Input[0]
	if in.Topic != "in" || string(in.Key) != "k" || string(in.Value) != `{"a":[1,2]}` || in.Timestamp.Hour() != 10 ||
		len(in.Headers) != 2 || in.Headers[0].Key != "h1" {
		t.Errorf("input[0] = %+v", in)
	}
	if string(c.Input[1].Value) != "raw bytes" || c.Input[1].Topic != "" {
		t.Errorf("input[1] = %+v", c.Input[1])
	}
	if !c.CheckOutput || len(c.Expect) != 1 || *c.Expect[0].Key != "k" || c.Advance.Minutes() != 90 || len(c.ExpectState) != 2 || c.ExpectState[0].HasValue || !c.ExpectState[1].HasValue {
		t.Errorf("case 0 = %+v", c)
	}
	if s.Cases[1].CheckOutput || s.Cases[1].Input[0].Key != nil {
		t.Errorf("case 1 = %+v", s.Cases[1])
	}
}

// TestSuiteRun runs a suite over a stateful rule: outputs, advance and
// expected state, passing and failing.
func TestSuiteRun(t *testing.T) {
	cfg := loadConfig(t, stateful+`
  - name: other
    from: in2
    steps: [{to: out2}]
`)
	s, err := ParseSuite("t.yaml", []byte(`
rule: counter
cases:
  - name: counts per key
    input: [{key: a, value: {}}, {key: a, value: {}}, {key: b, value: {}}]
    advance: 5m
    expect:
      - {topic: counts, key: a, value: {count: 1}}
      - {topic: counts, key: a, value: {count: 2}}
      - {topic: counts, key: b, value: {count: 1}}
    expect_state: [{store: counts, key: a}]
  - name: fresh driver per case
    input: [{key: a, value: {}}]
    expect: [{value: {count: 2}}]
    expect_state: {store: counts, key: z}
  - name: only the rule under test runs
    input: [{topic: in2, key: a, value: {}}]
    expect: []
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(cfg, WithStartTime(DefaultStartTime)); err == nil {
		// the custom step kind is unknown to the default specs: Build fails.
		t.Fatal("Run built a topology with an unknown step kind")
	}
	results, err := s.Run(cfg, WithTopologyOptions(topology.WithSpecs(append(processors.Specs(), countSpec()))))
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 3 {
		t.Fatalf("%d results", len(results))
	}
	if !results[0].Passed() || !results[2].Passed() {
		t.Errorf("passing cases failed: %+v", results)
	}
	f := strings.Join(results[1].Failures, "\n")
	if results[1].Passed() || !strings.Contains(f, "value.count: expected 2, got 1") || !strings.Contains(f, "state counts[z]: missing") {
		t.Errorf("failures of case 1:\n%s", f)
	}
	var b strings.Builder
	passed, failed := Report(&b, results)
	if passed != 2 || failed != 1 || !strings.Contains(b.String(), "FAIL  t.yaml:12  fresh driver per case\n") {
		t.Errorf("Report = %d, %d:\n%s", passed, failed, b.String())
	}
}

func TestSuiteRunProblems(t *testing.T) {
	cfg := loadConfig(t, stateless)
	for _, tt := range []struct{ yml, want string }{
		{"rule: fwdd\ncases: [{name: a, input: [{value: {}}]}]\n", `t.yaml:1:7 VX1104 rule: the configuration has no rule "fwdd"` + "\n  hint: did you mean \"fwd\"?"},
		{"cases: [{name: a, input: [{value: {}}]}]\n", "t.yaml:1:27 VX1103 cases[0].input[0]: input has no topic"},
	} {
		s, err := ParseSuite("t.yaml", []byte(tt.yml))
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Run(cfg)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Run = %v, want %s", err, tt.want)
		}
	}
}
