package processors_test

// This file is the example of docs/contributing.md: a complete step kind,
// mask, written against the exported step contract, with its test and its
// generated docs. A built-in kind lives in processors/<kind>.go and is
// listed in processors.Specs(); this one is added with topology.WithSpecs.

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/topology"
	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/processors"
	"github.com/veltrix/veltrix/testdriver"
)

// maskSpec is the spec of `mask: {field: card, keep: 4}`: it replaces every
// character of a string field but the last keep with '*'.
func maskSpec() *processors.Spec {
	return &processors.Spec{
		Kind:    "mask",
		Summary: "Hide all but the last characters of a string field.",
		Doc:     "Replaces every character of the field but the last `keep` with `*`. A missing field, or one that is not a string, is left as it is.",
		Fields: []processors.Field{
			{Name: "field", Type: processors.FieldName, Required: true, Doc: "the top-level field to mask"},
			{Name: "keep", Type: processors.IntType, Doc: "characters left visible at the end; default 4"},
		},
		Example: "- mask: {field: card_number, keep: 4}",
		Build:   buildMask,
	}
}

// buildMask decodes the step's mapping by its typed fields (DecodeFields
// reports unknown and missing keys and a keep that is not an integer) and
// checks what the types do not say.
func buildMask(b processors.Builder, n *yaml.Node, path string) processors.Step {
	v, ok := processors.DecodeFields(b, n, path, "mask", maskSpec().Fields)
	if !ok {
		return nil
	}
	parts, name := v.FieldName("field")
	if len(parts) != 1 {
		b.Errorf(v.Node("field"), path+".field", diag.InvalidStep, "mask takes a top-level field, found %q", name)
		return nil
	}
	s := &maskStep{field: parts[0], keep: v.Int("keep", 4)}
	if s.keep < 0 {
		b.Errorf(v.Node("keep"), path+".keep", diag.InvalidStep, "keep must not be negative, found %d", s.keep)
		return nil
	}
	return s
}

// maskStep is built once and shared by every task: it holds configuration
// only.
type maskStep struct {
	field string
	keep  int
}

// Process implements processors.Step.
func (s *maskStep) Process(_ processors.ProcessorContext, ev *processors.Event) (bool, error) {
	v, ok := ev.Value[s.field].(string)
	if !ok || len(v) <= s.keep {
		return true, nil
	}
	ev.Value[s.field] = strings.Repeat("*", len(v)-s.keep) + v[len(v)-s.keep:]
	ev.Touch() // the value changed: it is encoded again
	return true, nil
}

// KeyEffect implements processors.KeyEffecter: the step changes one field,
// so a key read from it is no longer known.
func (s *maskStep) KeyEffect() processors.KeyEffect {
	return processors.KeyEffect{Fields: []string{s.field}}
}

// Describe implements processors.Describer (what describe shows).
func (s *maskStep) Describe() processors.Info {
	return processors.Info{Kind: "mask", Arg: s.field + ", keep " + strconv.Itoa(s.keep)}
}

// buildRules builds rules written in YAML with the mask kind added.
func buildRules(t *testing.T, rules string) (*topology.Topology, error) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(rules), &doc); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{File: "veltrix.yaml", App: config.App{ID: "shop"}}
	for _, r := range doc.Content[0].Content {
		var name, from string
		var steps []*yaml.Node
		for i := 0; i+1 < len(r.Content); i += 2 {
			switch k, v := r.Content[i], r.Content[i+1]; k.Value {
			case "name":
				name = v.Value
			case "from":
				from = v.Value
			case "steps":
				steps = v.Content
			}
		}
		cfg.Rules = append(cfg.Rules, &config.Rule{Name: name, From: []string{from}, Steps: steps, OnError: config.OnErrorSkip})
	}
	return topology.Build(cfg, topology.WithSpecs(append(processors.Specs(), maskSpec())))
}

func TestMaskStep(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"masks all but the last four", `{"card_number": "4111111111111111"}`, `{"card_number":"************1111"}`},
		{"a short value is kept (the record as it came)", `{"card_number": "111"}`, `{"card_number": "111"}`},
		{"a missing field is kept", `{"id": 1}`, `{"id": 1}`},
	}
	topo, err := buildRules(t, `
- name: payments
  from: payments
  steps:
    - mask: {field: card_number}
    - to: payments.masked
`)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := testdriver.New(topo)
			if err := d.Pipe(testdriver.Record{Topic: "payments", Value: []byte(tt.in)}); err != nil {
				t.Fatal(err)
			}
			outs := d.Outputs()
			if len(outs) != 1 || outs[0].Topic != "payments.masked" || string(outs[0].Value) != tt.want {
				t.Fatalf("outputs %+v, want one on payments.masked: %s", outs, tt.want)
			}
		})
	}
}

func TestMaskStepErrors(t *testing.T) {
	_, err := buildRules(t, `
- name: payments
  from: payments
  steps:
    - mask: {keep: many, fields: card}
    - mask: {field: card.number}
`)
	var got []string
	for _, e := range diag.AsList(err) {
		got = append(got, string(e.Code)+" "+e.Path)
	}
	want := []string{"VX3004 rules[0].steps[0].mask", "VX3004 rules[0].steps[0].mask.fields", "VX3004 rules[0].steps[1].mask.field"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("problems\n%v\nwant\n%v", got, want)
	}
}

// TestMaskStepDocs renders the kind's reference as docs/steps.md does.
func TestMaskStepDocs(t *testing.T) {
	var b bytes.Buffer
	if err := processors.WriteDocs(&b, []*processors.Spec{maskSpec()}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## mask", "| `field` | field | yes | the top-level field to mask |", "- mask: {field: card_number, keep: 4}"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("docs lack %q:\n%s", want, b.String())
		}
	}
}
