package topology

import (
	"fmt"
	"runtime/debug"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/processors"
)

// Punctuate runs the work due at the task's stream time in every rule that
// has punctuating steps: windows closing (aggregate with emit on_close, and
// deleting expired windows), sequence deadlines, purges of expired dedupe
// ids and sequences. The engine calls it after each batch of records of a
// task, in the task's transaction, and the test driver after advancing
// stream time.
//
// An event a step produces (a window's result, a missed deadline) runs
// through the steps after that step, to the end of the rule, and its
// outputs go to task.Emit. A failure of such an event follows the rule's
// on_error: skip drops it, dlq writes the event (its key and JSON value) to
// the DLQ with the veltrix.error.* and veltrix.rule headers (no source
// headers: it comes from no record), fail returns a *RuleError (with Offset
// -1) at once.
func (t *Topology) Punctuate(task processors.ProcessorContext) error {
	for _, r := range t.punctuating {
		err := processors.PunctuateChain(task, r.Steps, nil, func(ev *processors.Event, rest processors.Step) error {
			return r.deliver(task, ev, rest)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// deliver runs an event produced by punctuation through rest, emitting its
// outputs only on success, and applies on_error to a failure.
func (r *Rule) deliver(task processors.ProcessorContext, ev *processors.Event, rest processors.Step) error {
	buf := &buffer{ProcessorContext: task}
	_, err := runGuarded(r.Name, func() (bool, error) { return rest.Process(buf, ev) })
	if err == nil {
		for _, o := range buf.outs {
			task.Emit(o)
		}
		return nil
	}
	d := asDiag(err)
	switch r.OnError {
	case config.OnErrorSkip:
		return nil
	case config.OnErrorDLQ:
		value, encErr := ev.Encode()
		if encErr != nil {
			value = nil
		}
		key, value, headers := fitDLQ(ev.Key, value, nil, []kgo.RecordHeader{
			{Key: HeaderErrorCode, Value: []byte(d.Code)},
			{Key: HeaderErrorMessage, Value: []byte(shortMessage(d.Message))},
			{Key: HeaderRule, Value: []byte(r.Name)},
		}, r.maxRecordBytes)
		task.Emit(processors.Output{Topic: r.DLQ, Key: key, Value: value, Headers: headers})
		return nil
	default:
		return &RuleError{Rule: r.Name, Topic: "(punctuation)", Partition: -1, Offset: -1, Err: d}
	}
}

// runGuarded runs f, turning a panic into a VX9001 failure.
func runGuarded(rule string, f func() (bool, error)) (keep bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			keep = false
			err = &diag.Error{Code: diag.Internal, Message: fmt.Sprintf("panic in rule %q: %v", rule, p),
				Hint: "this is a bug in Veltrix; please report it with this stack: " + firstLines(debug.Stack(), 12)}
		}
	}()
	return f()
}
