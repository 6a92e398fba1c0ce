package testdriver

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/processors"
)

// Suite is one rule test file, as `veltrix test` runs it:
//
//	rule: big-orders            # optional: only this rule runs (default: every rule)
//	cases:
//	  - name: large order is flagged
//	    input:  [{topic: orders, key: o-1, value: {total: 7000}, timestamp: "2026-01-01T10:00:00Z"}]
//	    expect: [{topic: orders.high-value, key: o-1, value: {flag: high_value}}]
//	    advance: 10m                                   # optional, after the inputs
//	    expect_state: {store: revenue, key: c-1, value: {count: 1}}   # optional, one or a list
//
// An input's topic defaults to the rule's first input topic; its value is a
// YAML mapping or list (written as JSON) or a string (written as is, so a
// malformed record can be tested); headers is a mapping of strings;
// timestamp is RFC 3339 (default: the stream time so far). Without expect
// the outputs are not checked; expect: [] means no output at all.
type Suite struct {
	File    string
	Rule    string   // "" runs every rule
	RulePos diag.Pos // of the rule: value
	Cases   []*Case
}

// Case is one test case; each runs on a fresh Driver.
type Case struct {
	Name        string
	Pos         diag.Pos
	Input       []Input
	Expect      []Expect // nil: outputs are not checked
	CheckOutput bool     // expect was given (possibly empty)
	Advance     time.Duration
	ExpectState []ExpectState
}

// Input is one record to pipe. Topic "" means the rule's first input.
type Input struct {
	Record
	Pos diag.Pos
}

// Expect is one expected output record. Empty Topic and nil Key match any;
// Value is matched as a subset (see Match); Headers must be present with
// these values (others may exist).
type Expect struct {
	Topic    string
	Key      *string
	Value    any
	HasValue bool
	Headers  map[string]string
	Pos      diag.Pos
}

// ExpectState is a value expected in a store after the case's inputs (and
// advance). Without a value only the key's presence is checked.
type ExpectState struct {
	Store    string
	Key      string
	Value    any
	HasValue bool
	Pos      diag.Pos
}

// LoadSuite reads and parses a test file. The error is a diag.List of every
// problem found, each with its file, line and column.
func LoadSuite(path string) (*Suite, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, diag.List{diag.Pos{File: path}.At(diag.FileUnreadable, "cannot read test file: %v", err)}
	}
	return ParseSuite(path, data)
}

// ParseSuite parses a test file's content; file names it in errors.
func ParseSuite(file string, data []byte) (*Suite, error) {
	p := &parser{file: file}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line, msg := yamlLine(err)
		return nil, diag.List{diag.Pos{File: file, Line: line}.At(diag.YAMLSyntax, "%s", msg).
			WithHint("check indentation and quoting; a value with ': ' or '#' needs quotes")}
	}
	s := &Suite{File: file}
	if len(doc.Content) == 0 {
		p.add(p.pos(&doc, "").At(diag.MissingRequired, "empty test file").WithHint("a test file has cases: with at least one case"))
		return nil, p.errs.Err()
	}
	var cases *yaml.Node
	p.mapping(doc.Content[0], "", []string{"rule", "cases"}, func(key string, k, v *yaml.Node, path string) {
		switch key {
		case "rule":
			s.Rule, s.RulePos = p.str(v, path), p.pos(v, path)
		case "cases":
			cases = v
		}
	})
	if cases == nil {
		if doc.Content[0].Kind == yaml.MappingNode {
			p.add(p.pos(doc.Content[0], "cases").At(diag.MissingRequired, "no cases").WithHint("add cases: with at least one case"))
		}
	} else if p.seq(cases, "cases") {
		for i, c := range cases.Content {
			if tc := p.testCase(c, fmt.Sprintf("cases[%d]", i)); tc != nil {
				s.Cases = append(s.Cases, tc)
			}
		}
	}
	if err := p.errs.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlLine extracts the line of a yaml.v3 syntax error.
func yamlLine(err error) (int, string) {
	msg := err.Error()
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n, m[2]
	}
	return 0, strings.TrimPrefix(msg, "yaml: ")
}

type parser struct {
	file string
	errs diag.List
}

func (p *parser) add(e *diag.Error) { p.errs.Add(e) }

func (p *parser) pos(n *yaml.Node, path string) diag.Pos {
	return diag.Pos{File: p.file, Line: n.Line, Column: n.Column, Path: path}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// mapping walks the pairs of a mapping node, reporting unknown keys (with a
// did-you-mean hint) and a node that is not a mapping.
func (p *parser) mapping(n *yaml.Node, path string, known []string, fn func(key string, k, v *yaml.Node, path string)) bool {
	if n.Kind != yaml.MappingNode {
		p.add(p.pos(n, path).At(diag.WrongType, "expected a mapping, found %s", processors.NodeKind(n)).With("mapping", processors.NodeKind(n)))
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kp := join(path, k.Value)
		if !slices.Contains(known, k.Value) {
			e := p.pos(k, kp).At(diag.UnknownKey, "unknown key %q", k.Value)
			if c := diag.Closest(k.Value, known); c != "" {
				e = e.WithHint("did you mean %q?", c)
			} else {
				e = e.WithHint("known keys here: %s", strings.Join(known, ", "))
			}
			p.add(e)
			continue
		}
		fn(k.Value, k, v, kp)
	}
	return true
}

func (p *parser) seq(n *yaml.Node, path string) bool {
	if n.Kind != yaml.SequenceNode {
		p.add(p.pos(n, path).At(diag.WrongType, "expected a list, found %s", processors.NodeKind(n)).With("list", processors.NodeKind(n)))
		return false
	}
	return true
}

// items returns the entries of a list, or of a single mapping given where a
// list is allowed.
func (p *parser) items(n *yaml.Node, path string) []*yaml.Node {
	if n.Kind == yaml.MappingNode {
		return []*yaml.Node{n}
	}
	if p.seq(n, path) {
		return n.Content
	}
	return nil
}

func (p *parser) str(n *yaml.Node, path string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.add(p.pos(n, path).At(diag.WrongType, "expected a string, found %s", processors.NodeKind(n)).With("string", processors.NodeKind(n)))
		return ""
	}
	return n.Value
}

// value decodes a node into JSON-like values (maps with string keys, lists,
// float64 numbers, strings, bools, nil).
func (p *parser) value(n *yaml.Node, path string) (any, bool) {
	var v any
	if err := n.Decode(&v); err != nil {
		p.add(p.pos(n, path).At(diag.WrongType, "cannot read value: %v", err))
		return nil, false
	}
	b, err := json.Marshal(v)
	if err != nil {
		p.add(p.pos(n, path).At(diag.WrongType, "value is not JSON-like: %v", err).WithHint("use string keys in mappings"))
		return nil, false
	}
	var out any
	_ = json.Unmarshal(b, &out)
	return out, true
}

func (p *parser) testCase(n *yaml.Node, path string) *Case {
	c := &Case{Pos: p.pos(n, path)}
	before := len(p.errs)
	named := false
	ok := p.mapping(n, path, []string{"name", "input", "expect", "advance", "expect_state"}, func(key string, k, v *yaml.Node, path string) {
		switch key {
		case "name":
			c.Name, named = p.str(v, path), true
		case "input":
			if p.seq(v, path) {
				for i, in := range v.Content {
					c.Input = append(c.Input, p.input(in, fmt.Sprintf("%s[%d]", path, i)))
				}
			}
		case "expect":
			c.CheckOutput = true
			if v.Tag == "!!null" {
				return
			}
			if p.seq(v, path) {
				for i, e := range v.Content {
					c.Expect = append(c.Expect, p.expect(e, fmt.Sprintf("%s[%d]", path, i)))
				}
			}
		case "advance":
			s := p.str(v, path)
			if s == "" {
				return
			}
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 {
				p.add(p.pos(v, path).At(diag.InvalidValue, "advance %q is not a duration", s).
					With("a positive duration", strconv.Quote(s)).WithHint("write e.g. 10m or 1h30m"))
				return
			}
			c.Advance = d
		case "expect_state":
			for i, e := range p.items(v, path) {
				sp := path
				if v.Kind == yaml.SequenceNode {
					sp = fmt.Sprintf("%s[%d]", path, i)
				}
				c.ExpectState = append(c.ExpectState, p.expectState(e, sp))
			}
		}
	})
	if ok && !named {
		p.add(c.Pos.At(diag.MissingRequired, "case has no name").WithHint("add name: saying what the case checks"))
	}
	if ok && len(c.Input) == 0 && c.Advance == 0 && len(p.errs) == before {
		p.add(c.Pos.At(diag.MissingRequired, "case %q has no input", c.Name).WithHint("add input: with at least one record"))
	}
	if len(p.errs) > before {
		return nil
	}
	return c
}

func (p *parser) input(n *yaml.Node, path string) Input {
	in := Input{Pos: p.pos(n, path)}
	hasValue := false
	ok := p.mapping(n, path, []string{"topic", "key", "value", "headers", "timestamp"}, func(key string, k, v *yaml.Node, path string) {
		switch key {
		case "topic":
			in.Topic = p.str(v, path)
		case "key":
			if v.Tag != "!!null" {
				in.Key = []byte(p.str(v, path))
			}
		case "value":
			hasValue = true
			if v.Kind == yaml.ScalarNode && v.Tag == "!!str" {
				in.Value = []byte(v.Value)
				return
			}
			if val, ok := p.value(v, path); ok {
				in.Value, _ = json.Marshal(val)
			}
		case "headers":
			for hk, hv := range p.headers(v, path) {
				in.Headers = append(in.Headers, kgo.RecordHeader{Key: hk, Value: []byte(hv)})
			}
		case "timestamp":
			s := p.str(v, path)
			if s == "" {
				return
			}
			ts, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				p.add(p.pos(v, path).At(diag.InvalidValue, "timestamp %q is not RFC 3339", s).
					With("RFC 3339 time", strconv.Quote(s)).WithHint(`write e.g. "2026-01-01T10:00:00Z"`))
				return
			}
			in.Timestamp = ts
		}
	})
	if ok && !hasValue {
		p.add(in.Pos.At(diag.MissingRequired, "input record has no value").WithHint("add value: {...} (a mapping is written as JSON)"))
	}
	sortHeaders(in.Headers)
	return in
}

func (p *parser) headers(n *yaml.Node, path string) map[string]string {
	out := map[string]string{}
	if n.Kind != yaml.MappingNode {
		p.add(p.pos(n, path).At(diag.WrongType, "expected a mapping of header names to strings, found %s", processors.NodeKind(n)))
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		out[n.Content[i].Value] = p.str(n.Content[i+1], join(path, n.Content[i].Value))
	}
	return out
}

func (p *parser) expect(n *yaml.Node, path string) Expect {
	e := Expect{Pos: p.pos(n, path)}
	p.mapping(n, path, []string{"topic", "key", "value", "headers"}, func(key string, k, v *yaml.Node, path string) {
		switch key {
		case "topic":
			e.Topic = p.str(v, path)
		case "key":
			s := p.str(v, path)
			e.Key = &s
		case "value":
			e.Value, e.HasValue = p.value(v, path)
		case "headers":
			e.Headers = p.headers(v, path)
		}
	})
	return e
}

func (p *parser) expectState(n *yaml.Node, path string) ExpectState {
	e := ExpectState{Pos: p.pos(n, path)}
	var hasStore, hasKey bool
	ok := p.mapping(n, path, []string{"store", "key", "value"}, func(key string, k, v *yaml.Node, path string) {
		switch key {
		case "store":
			e.Store, hasStore = p.str(v, path), true
		case "key":
			e.Key, hasKey = p.str(v, path), true
		case "value":
			e.Value, e.HasValue = p.value(v, path)
		}
	})
	if ok && (!hasStore || !hasKey) {
		p.add(e.Pos.At(diag.MissingRequired, "expect_state needs store: and key:").WithHint("e.g. {store: revenue, key: c-1, value: {count: 1}}"))
	}
	return e
}

// sortHeaders orders headers by key so that a mapping gives a stable order.
func sortHeaders(h []kgo.RecordHeader) {
	slices.SortStableFunc(h, func(a, b kgo.RecordHeader) int { return strings.Compare(a.Key, b.Key) })
}
