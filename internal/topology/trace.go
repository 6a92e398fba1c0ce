package topology

import (
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/pkg/diag"
)

// Tracer follows records through the rules (package tracing implements it
// with OpenTelemetry). A topology without one (the default) does no
// tracing work at all: Process checks a nil interface once per record.
type Tracer interface {
	// Record is called once for each record Process runs through at least
	// one rule; it returns nil when the record is not traced.
	Record(rec *kgo.Record) RecordSpan
}

// RecordSpan is the trace of one record.
type RecordSpan interface {
	// Rule starts the span of one rule on the record.
	Rule(rule string) RuleSpan
	// End ends the record's span, after its last rule.
	End()
}

// RuleSpan is the span of one rule on one record.
type RuleSpan interface {
	// Inject returns headers with the span's trace context (traceparent
	// and tracestate) in place of any trace context they held. It never
	// writes to headers' backing array, which may be shared with the
	// input record.
	Inject(headers []kgo.RecordHeader) []kgo.RecordHeader
	// End ends the span with the rule's outcome and, for error and dlq,
	// its code.
	End(outcome Outcome, code diag.Code)
}

// WithTracer returns a copy of t whose Process traces records with tr (nil:
// none). The copy shares everything else with t, which is unchanged.
func (t *Topology) WithTracer(tr Tracer) *Topology {
	c := *t
	c.tracer = tr
	return &c
}

// Tracer returns the topology's tracer, nil when it has none: a topology
// rebuilt from a changed configuration keeps tracing with
// rebuilt.WithTracer(old.Tracer()).
func (t *Topology) Tracer() Tracer { return t.tracer }
