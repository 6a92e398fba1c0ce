package topology

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/pkg/diag"
)

// fakeTracer records what Process tells a Tracer.
type fakeTracer struct {
	skip    bool     // Record returns nil: the record is not traced
	records int      // records Record was asked about
	spans   []string // "rule outcome code" for every ended rule span
	ended   int      // record spans ended
}

func (f *fakeTracer) Record(*kgo.Record) RecordSpan {
	f.records++
	if f.skip {
		return nil
	}
	return f
}
func (f *fakeTracer) Rule(rule string) RuleSpan { return &fakeRuleSpan{f: f, rule: rule} }
func (f *fakeTracer) End()                      { f.ended++ }

type fakeRuleSpan struct {
	f    *fakeTracer
	rule string
}

func (s *fakeRuleSpan) Inject(hs []kgo.RecordHeader) []kgo.RecordHeader {
	return append(slices.Clip(hs), kgo.RecordHeader{Key: "traceparent", Value: []byte(s.rule)})
}

func (s *fakeRuleSpan) End(o Outcome, code diag.Code) {
	s.f.spans = append(s.f.spans, s.rule+" "+string(o)+" "+string(code))
}

const tracedRules = `
rules:
  - name: big
    from: orders
    steps:
      - filter: event.total >= 100.0
      - to: orders.big
  - name: strict
    from: orders
    on_error: dlq
    dlq: orders.dlq
    steps:
      - filter: event.nope > 1
      - to: orders.never
  - name: small
    from: orders
    steps:
      - filter: event.total < 100.0
      - to: orders.small
`

// Process gives the tracer a span per rule with its outcome and code, puts
// the rule span's context on the rule's outputs and DLQ records, and ends
// the record's span once.
func TestProcessTracesEveryRule(t *testing.T) {
	top, err := Build(parseConfig(t, "veltrix.yaml", tracedRules))
	if err != nil {
		t.Fatal(err)
	}
	ft := &fakeTracer{}
	traced := top.WithTracer(ft)
	if top.Tracer() != nil || traced.Tracer() != ft {
		t.Fatalf("WithTracer changed the original or lost the tracer")
	}
	tk := &task{}
	if err := traced.Process(tk, record("orders", "o-1", `{"total": 250}`), nil); err != nil {
		t.Fatal(err)
	}
	want := []string{"big matched ", "strict dlq " + string(diag.MissingField), "small filtered "}
	if !slices.Equal(ft.spans, want) || ft.ended != 1 {
		t.Errorf("spans %q, ended %d; want %q, ended 1", ft.spans, ft.ended, want)
	}
	got := map[string]string{}
	for _, o := range tk.out {
		for _, h := range o.Headers {
			if h.Key == "traceparent" {
				got[o.Topic] = string(h.Value)
			}
		}
	}
	if wantOut := map[string]string{"orders.big": "big", "orders.dlq": "strict"}; len(got) != len(tk.out) || got["orders.big"] != "big" || got["orders.dlq"] != "strict" {
		t.Errorf("trace context on outputs %v (of %d outputs), want %v", got, len(tk.out), wantOut)
	}

	// A record the tracer does not trace gets no span and no header.
	ft.skip, ft.spans, tk.out = true, nil, nil
	if err := traced.Process(tk, record("orders", "o-2", `{"total": 250}`), nil); err != nil {
		t.Fatal(err)
	}
	if len(ft.spans) != 0 || len(tk.out) != 2 || slices.ContainsFunc(tk.out[0].Headers, func(h kgo.RecordHeader) bool { return h.Key == "traceparent" }) {
		t.Errorf("untraced record: spans %q, outputs %+v", ft.spans, tk.out)
	}
}

// With no tracer (tracing.sample_ratio 0, the default) the tracing hooks
// cost no allocation: a record every rule filters out allocates nothing at
// all. (Run without the race detector, which makes sync.Pool drop items:
// make test runs the allocation tests a second time without it.)
func TestProcessWithoutTracerAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts need the race detector off; make test runs this test without it")
	}
	top, err := Build(parseConfig(t, "veltrix.yaml", `
rules:
  - name: big
    from: orders
    steps:
      - filter: event.total >= 100.0
      - set: {flag: '"big"'}
      - to: orders.big
`))
	if err != nil {
		t.Fatal(err)
	}
	untraced := top.WithTracer(nil)
	tk := &discard{}
	filtered := record("orders", "o-1", `{"total": 5, "currency": "EUR"}`)
	n := testing.AllocsPerRun(500, func() {
		if err := untraced.Process(tk, filtered, nil); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 || tk.n != 0 {
		t.Errorf("a filtered record allocates %v times per record with tracing off (%d outputs), want 0", n, tk.n)
	}
	// The hook is really on that path: a tracer that traces nothing is
	// asked about the same record.
	ft := &fakeTracer{skip: true}
	if err := top.WithTracer(ft).Process(tk, filtered, nil); err != nil || ft.records != 1 || len(ft.spans) != 0 {
		t.Fatalf("Process = %v; tracer asked about %d records, spans %q; want 1 record, no span", err, ft.records, ft.spans)
	}
}
