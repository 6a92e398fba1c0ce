// Package processors holds Veltrix's built-in step kinds (filter, set, drop,
// map, route, to, ...) behind one small interface, Step, and one spec per kind
// that drives parsing, validation, docs and describe.
//
// A step sees one decoded Event at a time and the Task it runs in (where it
// emits outputs and, for stateful kinds, reaches its stores). Metrics, tracing
// and the rule's error policy wrap steps from outside: a step only returns an
// error, with a diag code, and never counts or logs for itself.
package processors

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Step processes one event. It returns keep=false to stop the event here
// (filtered); an error is a failure of this event, handled by the rule's
// on_error policy. Steps are built once and shared by every task, so they
// must not keep per-event or per-task state in themselves: per-task state
// lives in the Task's stores.
type Step interface {
	Process(t Task, ev *Event) (keep bool, err error)
}

// Task is what a step can reach while processing: the outputs, stores and
// stream time of the task (the input partition number) being processed.
type Task interface {
	// Emit queues an output record. In exactly-once mode it becomes visible
	// only when the task's transaction commits.
	Emit(out Output)
	// Now is the processing-time clock (a fake one in tests).
	Now() time.Time
	// Store returns this task's store of that name: one declared by a
	// stateful step when the topology was built (nil for any other name).
	Store(name string) Store
	// StreamTime is the largest event time the task has seen so far (zero
	// before its first event). Windows close and entries expire on it.
	StreamTime() time.Time
}

// Output is a record to produce.
type Output struct {
	Topic   string
	Key     []byte
	Value   []byte
	Headers []kgo.RecordHeader
}

// Chain runs steps in order until one filters the event or fails.
type Chain []Step

// Process runs the chain; it is itself a Step, so chains nest (route
// branches). Before a step that is not Lazy it decodes the event's Value.
func (c Chain) Process(t Task, ev *Event) (bool, error) {
	for _, s := range c {
		if ev.Value == nil {
			if _, ok := s.(Lazy); !ok {
				ev.Map()
			}
		}
		keep, err := s.Process(t, ev)
		if err != nil || !keep {
			return false, err
		}
	}
	return true, nil
}
