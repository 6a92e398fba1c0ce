package topology

import (
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/pkg/diag"
)

// FuzzBuildSteps builds arbitrary YAML as a rule's steps and runs a record
// through the result: Build and Process must never panic, and every problem
// must carry a code. Run with go test ./internal/topology -fuzz FuzzBuildSteps.
func FuzzBuildSteps(f *testing.F) {
	for _, s := range []string{
		"- filter: event.total > 1\n- to: out",
		"- set: {a.b: '1', c: now()}\n- drop: [a]\n- map: '{\"x\": event}'\n- to: {topic: out, key: event.id}",
		"- route:\n  - when: event.x\n    steps: [{to: a}]\n  - default: [{log: event}]",
		"- filter: |\n    event.total >\n    1 &&\n- to: out",
		"- use: nope\n  with: {a: 1}",
		"- to: ${params.x}",
		"- &a {filter: 'true'}\n- *a",
		"- [1, 2]\n- {}\n- ~\n- filter:\n- route: []",
	} {
		f.Add(s, `{"total": 5, "x": true, "id": "o"}`)
	}
	f.Fuzz(func(t *testing.T, steps, value string) {
		var doc yaml.Node
		if yaml.Unmarshal([]byte(steps), &doc) != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.SequenceNode {
			return
		}
		cfg := &config.Config{App: config.App{ID: "app"}, Rules: []*config.Rule{{
			Name: "r", From: []string{"in"}, Steps: doc.Content[0].Content, OnError: config.OnErrorDLQ,
		}}}
		top, err := Build(cfg)
		if err != nil {
			for _, e := range diag.AsList(err) {
				if e.Code == "" || e.Message == "" {
					t.Fatalf("problem without code or message: %+v", e)
				}
			}
			return
		}
		if err := top.Process(&task{}, record("in", "k", value), nil); err != nil {
			t.Fatalf("Process with on_error dlq returned %v", err)
		}
	})
}
