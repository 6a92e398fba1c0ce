package processors_test

import (
	"slices"
	"testing"

	"github.com/veltrix/veltrix/pkg/diag"
)

// TestResultTypes checks that an expression whose checked type cannot be
// what its field needs is VX3002 with a hint, and that expressions over
// event fields (dyn) are never rejected.
func TestResultTypes(t *testing.T) {
	cases := []struct {
		name, steps string
		bad         []string // paths of the VX3002 problems; none: valid
	}{
		{"sum of a string", `[{aggregate: {store: s, sum: '"x"'}}, {to: out}]`, []string{"rules[0].steps[0].aggregate.sum"}},
		{"min and max of bools and lists", `[{aggregate: {store: s, min: event.a > 1, max: '[1, 2]', avg: 'event.a + 1'}}, {to: out}]`,
			[]string{"rules[0].steps[0].aggregate.min", "rules[0].steps[0].aggregate.max"}},
		{"sum of event fields and arithmetic", `[{aggregate: {store: s, sum: event.total, min: 'event.a * 2', max: 'double(event.n)', avg: '1'}}, {to: out}]`, nil},
		{"a key that is a map", `[{aggregate: {store: s, key: '{"a": event.a}', repartition: false}}, {to: out}]`, []string{"rules[0].steps[0].aggregate.key"}},
		{"keys of string, number, bool, header and event", `[{aggregate: {store: a, key: 'event.a + "x"', repartition: false}}, {dedupe: {store: b, id: '1', repartition: false}}, {rekey: 'headers.h'}, {join: {table: t, key: 'event.a > 1', as: c, repartition: false}}, {to: out}, {table: t}]`, nil},
		{"an id that is a list", `[{dedupe: {store: s, id: '[event.a]'}}, {to: out}]`, []string{"rules[0].steps[0].dedupe.id"}},
		{"a rekey by null", `[{rekey: 'null'}, {to: out}]`, []string{"rules[0].steps[0].rekey"}},
		{"a to key that is a list", `[{to: {topic: out, key: '[1]'}}]`, []string{"rules[0].steps[0].to.key"}},
		{"a time that is a bool", `[{aggregate: {store: s, time: 'event.a == 1', window: {tumbling: 1h}}}, {to: out}]`, []string{"rules[0].steps[0].aggregate.time"}},
		{"times of timestamp, string and number", `[{aggregate: {store: s, time: timestamp, window: {tumbling: 1h}}}, {dedupe: {store: d, id: event.id, time: '"2024-01-01T00:00:00Z"', repartition: false}}, {sequence: {store: q, first: 'true', then: 'false', time: '1000'}}, {to: out}]`, nil},
		{"a duration as a time", `[{dedupe: {store: d, id: event.id, time: 'duration("1h")', repartition: false}}, {to: out}]`, []string{"rules[0].steps[0].dedupe.time"}},
		{"a filter that is a string", `[{filter: '"yes"'}, {to: out}]`, []string{"rules[0].steps[0].filter"}},
		{"a filter over an event field", `[{filter: event.paid}, {to: out}]`, nil},
		{"a sequence then that is a number", `[{sequence: {store: q, first: 'true', then: '1'}}, {to: out}]`, []string{"rules[0].steps[0].sequence.then"}},
		{"a map expression that is a list", `[{map: '[event.id]'}, {to: out}]`, []string{"rules[0].steps[0].map"}},
		{"map expressions of a literal, the event and a field", `[{map: '{"id": event.id}'}, {map: event}, {map: event.inner}, {to: out}]`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := buildConfig(t, "rules:\n  - name: r\n    from: in\n    steps: "+tc.steps)
			var got []string
			for _, e := range diag.AsList(err) {
				if e.Code != diag.ExprType || e.Hint == "" || e.Expected == "" {
					t.Errorf("unexpected problem (or one without a hint): %v", e)
					continue
				}
				got = append(got, e.Path)
			}
			if !slices.Equal(got, tc.bad) {
				t.Errorf("VX3002 at %q, want %q\n%v", got, tc.bad, err)
			}
		})
	}
}
