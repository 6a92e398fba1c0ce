package topology

import (
	"bytes"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/processors"
)

// Outcome is what happened to one record in one rule; the values are the
// outcome label of veltrix_rule_records_total.
type Outcome string

// Outcomes.
const (
	OutcomeMatched  Outcome = "matched"  // the record went through every step
	OutcomeFiltered Outcome = "filtered" // a step stopped it (filter, route without a match)
	OutcomeError    Outcome = "error"    // it failed (on_error skip or fail)
	OutcomeDLQ      Outcome = "dlq"      // it failed and was written to the DLQ
)

// Observer is told the outcome of every record in every rule (metrics).
// code is the failure's code, "" unless the outcome is error or dlq; took is
// the time the rule spent on the record, measured for one record in
// LatencySampleEvery (those whose offset is a multiple of it: reading the
// clock twice per record and rule costs more than the rest of a simple
// rule's bookkeeping) and 0 for the others. It is called from the goroutine
// that called Process.
type Observer interface {
	Outcome(rule string, outcome Outcome, code diag.Code, took time.Duration)
}

// LatencySampleEvery is how often Process times a record (see Observer).
const LatencySampleEvery = 8

// Names of the headers added to DLQ records.
const (
	HeaderErrorCode    = "veltrix.error.code"
	HeaderErrorMessage = "veltrix.error.message"
	// HeaderDLQTruncated is on a DLQ record shortened to fit
	// kafka.max_record_bytes: the original value, header and key sizes.
	HeaderDLQTruncated    = "veltrix.dlq.truncated"
	HeaderRule            = "veltrix.rule"
	HeaderSourceTopic     = "veltrix.source.topic"
	HeaderSourcePartition = "veltrix.source.partition"
	HeaderSourceOffset    = "veltrix.source.offset"
)

// RuleError is the error Process returns when a rule with on_error fail
// fails on a record: the engine treats it as fatal. It unwraps to the
// *diag.Error.
type RuleError struct {
	Rule      string
	Topic     string
	Partition int32
	Offset    int64
	Err       *diag.Error
}

func (e *RuleError) Error() string {
	return fmt.Sprintf("rule %q failed on record %s[%d]@%d (on_error: fail): %v", e.Rule, e.Topic, e.Partition, e.Offset, e.Err)
}

func (e *RuleError) Unwrap() error { return e.Err }

// Process runs one consumed record through every rule that reads its topic.
// The record is decoded once; when several rules read the topic each gets
// its own copy of the event. Outputs go to task.Emit; a rule's outputs for a
// record are emitted only when the rule finishes it without error, so a
// failed record never leaves half of its outputs behind.
//
// A failure (malformed JSON, an evaluation error, a missing field, a panic
// inside a step as VX9001) follows the rule's on_error: skip counts it (obs)
// and goes on; dlq emits the original key, value and headers plus the
// veltrix.* error headers to the rule's DLQ topic through task.Emit, so it
// is part of the same transaction; fail returns a *RuleError at once (rules
// after it do not run). obs may be nil.
func (t *Topology) Process(task processors.ProcessorContext, rec *kgo.Record, obs Observer) error {
	rules := t.byTopic[rec.Topic]
	if len(rules) == 0 {
		return nil
	}
	sc := scratches.Get().(*scratch)
	defer scratches.Put(sc)
	ev := &sc.ev
	decodeErr := processors.DecodeInto(ev, rec)
	var recErr error // fails the record for every rule
	// Stream time is never ahead of the clock, and the callers raise it to
	// every record's timestamp but one too far ahead: only a record later
	// than stream time needs the clock (one read per record is measurable).
	if rec.Timestamp.After(task.StreamTime()) {
		if now := task.Now(); t.AheadOfClock(rec.Timestamp, now) {
			recErr = &diag.Error{Code: diag.EventTimeAhead,
				Message: fmt.Sprintf("record timestamp %s is %s ahead of the clock (processing.max_event_time_skew %s)",
					rec.Timestamp.UTC().Format(time.RFC3339), rec.Timestamp.Sub(now).Round(time.Second), t.maxSkew),
				Hint: "fix the producer's clock or timestamps; the record did not move stream time"}
		}
	}
	timed := obs != nil && rec.Offset%LatencySampleEvery == 0
	var traced RecordSpan
	if t.tracer != nil {
		if traced = t.tracer.Record(rec); traced != nil {
			defer traced.End()
		}
	}
	for i, r := range rules {
		var start time.Time
		if timed {
			start = time.Now()
		}
		var span RuleSpan
		if traced != nil {
			span = traced.Rule(r.Name)
		}
		var keep bool
		var err error
		if recErr != nil {
			err = recErr
		} else if decodeErr != nil && !(r.tombstones && isTombstone(rec.Value)) {
			err = decodeErr
		} else {
			e := ev
			if i < len(rules)-1 {
				e = ev.Clone()
			}
			e.Clock = task
			keep, err = r.run(task, e, span, &sc.buf)
		}
		outcome, code := OutcomeMatched, diag.Code("")
		var fatal error
		switch {
		case err != nil:
			d := asDiag(err)
			code = d.Code
			outcome, fatal = r.fail(task, rec, d, span)
		case !keep:
			outcome = OutcomeFiltered
		}
		if span != nil {
			span.End(outcome, code)
		}
		if obs != nil {
			var took time.Duration
			if timed {
				took = max(time.Since(start), 1)
			}
			obs.Outcome(r.Name, outcome, code, took)
		}
		if fatal != nil {
			return fatal
		}
	}
	return nil
}

// isTombstone reports whether a record value deletes its key: null, or
// the JSON value null.
func isTombstone(v []byte) bool {
	return v == nil || string(bytes.TrimSpace(v)) == "null"
}

// scratch is what Process needs for a record: the Event it is decoded into
// and the buffer of a rule's outputs. Steps keep neither past Process (see
// processors.DecodeInto), so scratches recycles them, in one pool: a Get
// and a Put per record instead of two of each.
type scratch struct {
	ev  processors.Event
	buf buffer
}

var scratches = sync.Pool{New: func() any { return &scratch{buf: buffer{outs: make([]processors.Output, 0, 4)}} }}

// asDiag returns the *diag.Error in err, or wraps err as VX9001.
func asDiag(err error) *diag.Error {
	var d *diag.Error
	if errors.As(err, &d) {
		return d
	}
	return &diag.Error{Code: diag.Internal, Message: err.Error()}
}

// fail applies the rule's on_error to a failed record. A DLQ record carries
// the trace context of span, when the record is traced.
func (r *Rule) fail(task processors.ProcessorContext, rec *kgo.Record, d *diag.Error, span RuleSpan) (Outcome, error) {
	switch r.OnError {
	case config.OnErrorSkip:
		return OutcomeError, nil
	case config.OnErrorDLQ:
		headers := make([]kgo.RecordHeader, 0, 7)
		headers = append(headers,
			kgo.RecordHeader{Key: HeaderErrorCode, Value: []byte(d.Code)},
			kgo.RecordHeader{Key: HeaderErrorMessage, Value: []byte(shortMessage(d.Message))},
			kgo.RecordHeader{Key: HeaderRule, Value: []byte(r.Name)},
			kgo.RecordHeader{Key: HeaderSourceTopic, Value: []byte(rec.Topic)},
			kgo.RecordHeader{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(rec.Partition), 10)},
			kgo.RecordHeader{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, rec.Offset, 10)},
		)
		key, value, headers := fitDLQ(rec.Key, rec.Value, rec.Headers, headers, r.maxRecordBytes)
		if span != nil {
			headers = span.Inject(headers)
		}
		task.Emit(processors.Output{Topic: r.DLQ, Key: key, Value: value, Headers: headers})
		return OutcomeDLQ, nil
	default:
		return OutcomeError, &RuleError{Rule: r.Name, Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Err: d}
	}
}

// buffer holds a rule's outputs for one record until the rule finishes it.
// It passes every other ProcessorContext method through.
type buffer struct {
	processors.ProcessorContext
	outs []processors.Output
}

func (b *buffer) Emit(o processors.Output) { b.outs = append(b.outs, o) }

// run runs the rule's steps over ev, emitting its outputs only on success,
// each with the trace context of span when the record is traced. buf holds
// the outputs meanwhile; run leaves it empty. A panic inside a step is a
// VX9001 failure of this event.
func (r *Rule) run(task processors.ProcessorContext, ev *processors.Event, span RuleSpan, buf *buffer) (keep bool, err error) {
	buf.ProcessorContext = task
	defer func() {
		if p := recover(); p != nil {
			keep = false
			err = &diag.Error{Code: diag.Internal, Message: fmt.Sprintf("panic in rule %q: %v", r.Name, p),
				Hint: "this is a bug in Veltrix; please report it with this stack: " + firstLines(debug.Stack(), 12)}
		}
		if err == nil {
			if err = oversized(buf.outs, r.maxRecordBytes); err != nil {
				keep = false
			}
		}
		if err == nil {
			for _, o := range buf.outs {
				if span != nil {
					o.Headers = span.Inject(o.Headers)
				}
				task.Emit(o)
			}
		}
		clear(buf.outs)
		buf.outs = buf.outs[:0]
		buf.ProcessorContext = nil
	}()
	return r.Steps.Process(buf, ev)
}

// firstLines returns up to n lines of b.
func firstLines(b []byte, n int) string {
	for i, c := range b {
		if c == '\n' {
			n--
			if n == 0 {
				return string(b[:i])
			}
		}
	}
	return string(b)
}
