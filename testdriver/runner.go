package testdriver

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/topology"
	"github.com/veltrix/veltrix/pkg/diag"
)

// Result is the outcome of one case.
type Result struct {
	File     string
	Case     string
	Pos      diag.Pos
	Failures []string // readable differences, one per line group; empty when the case passed
}

// Passed reports whether the case passed.
func (r Result) Passed() bool { return len(r.Failures) == 0 }

// Run runs every case of the suite against the configuration, each on a
// fresh Driver built with opts. When the suite names a rule, only that rule
// is built and run. The error is a diag.List of problems of the suite
// itself (an unknown rule, an input with no topic when no rule is named) or
// of building the topology; failed cases are Results, not errors.
func (s *Suite) Run(cfg *config.Config, opts ...Option) ([]Result, error) {
	run := cfg
	var defaultTopic string
	if s.Rule != "" {
		var rule *config.Rule
		names := make([]string, 0, len(cfg.Rules))
		for _, r := range cfg.Rules {
			names = append(names, r.Name)
			if r.Name == s.Rule {
				rule = r
			}
		}
		if rule == nil {
			e := s.RulePos.At(diag.InvalidValue, "the configuration has no rule %q", s.Rule)
			if c := diag.Closest(s.Rule, names); c != "" {
				e = e.WithHint("did you mean %q?", c)
			} else {
				e = e.WithHint("rules are %s", strings.Join(names, ", "))
			}
			return nil, diag.List{e}
		}
		c := *cfg
		c.Rules = []*config.Rule{rule}
		// The keys declared for topics the rule does not read are not
		// unused in the whole configuration.
		c.Topics = nil
		for _, tk := range cfg.Topics {
			if slices.Contains(rule.From, tk.Topic) {
				c.Topics = append(c.Topics, tk)
			}
		}
		run = &c
		if len(rule.From) > 0 {
			defaultTopic = rule.From[0]
		}
	}
	var problems diag.List
	for _, c := range s.Cases {
		for _, in := range c.Input {
			if in.Topic == "" && defaultTopic == "" {
				problems.Add(in.Pos.At(diag.MissingRequired, "input has no topic").
					WithHint("give topic:, or name the rule under test with rule: at the top of the file"))
			}
		}
	}
	if err := problems.Err(); err != nil {
		return nil, err
	}
	var o Driver
	for _, opt := range opts {
		opt(&o)
	}
	topo, err := topology.Build(run, o.topoOpts...)
	if err != nil {
		return nil, err
	}
	results := make([]Result, 0, len(s.Cases))
	for _, c := range s.Cases {
		results = append(results, Result{File: s.File, Case: c.Name, Pos: c.Pos, Failures: c.run(topo, defaultTopic, opts)})
	}
	return results, nil
}

// run runs one case on a fresh driver and returns its failures.
func (c *Case) run(topo *topology.Topology, defaultTopic string, opts []Option) []string {
	d := New(topo, opts...)
	for i, in := range c.Input {
		rec := in.Record
		if rec.Topic == "" {
			rec.Topic = defaultTopic
		}
		if err := d.Pipe(rec); err != nil {
			return []string{fmt.Sprintf("input[%d] (line %d): %v", i, in.Pos.Line, err)}
		}
	}
	if c.Advance > 0 {
		if err := d.AdvanceTime(c.Advance); err != nil {
			return []string{fmt.Sprintf("advance %v: %v", c.Advance, err)}
		}
	}
	var fails []string
	if c.CheckOutput {
		fails = append(fails, CompareOutputs(c.Expect, d.Outputs())...)
	}
	for _, es := range c.ExpectState {
		fails = append(fails, es.check(d)...)
	}
	return fails
}

// CompareOutputs compares the expected records with the actual outputs, in
// order, and returns one readable difference per mismatch: a record that
// differs (naming each field that does), a missing record, an unexpected
// one.
func CompareOutputs(want []Expect, got []Record) []string {
	var out []string
	for i := 0; i < max(len(want), len(got)); i++ {
		switch {
		case i >= len(got):
			out = append(out, fmt.Sprintf("output[%d]: missing\n  expected: %s\n  actual:   (no more output; %d record(s) in all)", i, want[i], len(got)))
		case i >= len(want):
			out = append(out, fmt.Sprintf("output[%d]: unexpected record\n  actual:   %s", i, got[i]))
		default:
			if d := want[i].diff(got[i]); len(d) > 0 {
				out = append(out, fmt.Sprintf("output[%d]: %s\n  expected: %s\n  actual:   %s", i, strings.Join(d, "\n           "), want[i], got[i]))
			}
		}
	}
	return out
}

// diff names each field of r that does not match e.
func (e Expect) diff(r Record) []string {
	var out []string
	if e.Topic != "" && e.Topic != r.Topic {
		out = append(out, fmt.Sprintf("topic: expected %q, got %q", e.Topic, r.Topic))
	}
	if e.Key != nil && *e.Key != string(r.Key) {
		out = append(out, fmt.Sprintf("key: expected %q, got %q", *e.Key, string(r.Key)))
	}
	for _, k := range sortedKeys(e.Headers) {
		v, ok := r.Header(k)
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("headers.%s: missing (expected %q)", k, e.Headers[k]))
		case v != e.Headers[k]:
			out = append(out, fmt.Sprintf("headers.%s: expected %q, got %q", k, e.Headers[k], v))
		}
	}
	if e.HasValue {
		out = append(out, Match("value", e.Value, decode(r.Value))...)
	}
	return out
}

// String formats an expected record like a test file entry.
func (e Expect) String() string {
	var parts []string
	if e.Topic != "" {
		parts = append(parts, "topic: "+e.Topic)
	}
	if e.Key != nil {
		parts = append(parts, "key: "+*e.Key)
	}
	if e.HasValue {
		parts = append(parts, "value: "+compact(e.Value))
	}
	if len(e.Headers) > 0 {
		parts = append(parts, "headers: "+compact(e.Headers))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// String formats a record like a test file entry (value as JSON when it is).
func (r Record) String() string {
	s := fmt.Sprintf("{topic: %s, key: %s, value: %s", r.Topic, string(r.Key), compact(decode(r.Value)))
	if len(r.Headers) > 0 {
		h := make([]string, len(r.Headers))
		for i, x := range r.Headers {
			h[i] = x.Key + ": " + string(x.Value)
		}
		s += ", headers: {" + strings.Join(h, ", ") + "}"
	}
	return s + "}"
}

func (es ExpectState) check(d *Driver) []string {
	v, ok := d.Get(es.Store, []byte(es.Key))
	if !ok {
		keys := d.StoreKeys(es.Store)
		if len(keys) > 10 {
			keys = append(keys[:10], "...")
		}
		return []string{fmt.Sprintf("state %s[%s]: missing\n  keys in the store: %v", es.Store, es.Key, keys)}
	}
	if !es.HasValue {
		return nil
	}
	if d := Match("value", es.Value, decode(v)); len(d) > 0 {
		return []string{fmt.Sprintf("state %s[%s]: %s\n  expected: %s\n  actual:   %s", es.Store, es.Key, strings.Join(d, "\n           "), compact(es.Value), compact(decode(v)))}
	}
	return nil
}

// Match compares an expected value with an actual one and returns one line
// per difference, each naming the dotted path that differs. Objects match
// as a subset (every expected key must be present and match; extra actual
// keys are allowed); lists and scalars must be equal. Numbers compare as
// float64. Values are JSON-like (as encoding/json decodes into any).
func Match(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: expected an object, got %s", path, compact(got))}
		}
		var out []string
		for _, k := range sortedKeys(w) {
			gv, ok := g[k]
			if !ok {
				out = append(out, fmt.Sprintf("%s.%s: missing (expected %s)", path, k, compact(w[k])))
				continue
			}
			out = append(out, Match(path+"."+k, w[k], gv)...)
		}
		return out
	default:
		if !reflect.DeepEqual(normalize(want), normalize(got)) {
			return []string{fmt.Sprintf("%s: expected %s, got %s", path, compact(want), compact(got))}
		}
		return nil
	}
}

// normalize turns every number into float64, recursively.
func normalize(v any) any {
	switch x := v.(type) {
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case json.Number:
		f, _ := x.Float64()
		return f
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	}
	return v
}

// decode returns a record value as JSON-like data, or as a string when it
// is not JSON.
func decode(b []byte) any {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return string(b)
	}
	return v
}

func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Report writes one line per case (PASS or FAIL, the file, line and name),
// the differences of each failed case indented below it, and returns the
// counts. The caller prints the summary.
func Report(w io.Writer, results []Result) (passed, failed int) {
	for _, r := range results {
		if r.Passed() {
			passed++
			fmt.Fprintf(w, "PASS  %s:%d  %s\n", r.File, r.Pos.Line, r.Case)
			continue
		}
		failed++
		fmt.Fprintf(w, "FAIL  %s:%d  %s\n", r.File, r.Pos.Line, r.Case)
		for _, f := range r.Failures {
			fmt.Fprintf(w, "      %s\n", strings.ReplaceAll(f, "\n", "\n      "))
		}
	}
	return passed, failed
}
