// Package processors is the step contract of Veltrix and its built-in step
// kinds (filter, set, drop, map, route, to, log, rekey, aggregate, dedupe,
// table, join, sequence): one small interface, Step, and one Spec per kind
// that drives parsing, validation, docs/steps.md and describe.
// docs/contributing.md shows how to add a kind.
//
// # The contract
//
// Building. A Spec's Build runs once per step written in the configuration,
// when the topology is built, before anything runs. It reports every problem
// through the Builder (with a code, a place and a dotted path) and returns
// nil when the step is unusable. Build declares every effect of the step
// through the Builder: the topics it writes (Output), the store it owns
// (Store) or reads (ReadStore) and a repartition (Repartition). Topic
// creation, the cluster checks, describe and the state runtime read these
// declarations and nothing else, so a step may only Emit to topics it
// declared and only open stores it declared.
//
// Processing. A built step is shared by every task (an input partition)
// and may run on several goroutines at once, so it keeps no mutable state of
// its own: per-task state lives in the stores its ProcessorContext returns.
// Within one task, Process is called for one event at a time, in offset
// order. The ProcessorContext is valid only during the call. Before a step
// that is not Lazy, the event's Value is decoded. Outputs a step emits are
// held until the whole rule has finished the event: they are produced only
// when no later step fails, and, in exactly-once mode, become visible when
// the task's transaction commits, together with the stores' changelog
// writes and the consumed offsets; after an abort, store writes are undone.
// Processing time comes from ProcessorContext.Now and event time from
// StreamTime, never from the system clock, so the test driver can move them.
//
// Failing. A step returns an error (a *diag.Error with a stable code where
// it can) for a failure of this event; the rule's on_error policy handles
// it. Metrics, tracing and the error policy wrap steps from outside: a step
// never counts or logs for itself. A panic in a step is a VX9001 failure of
// its event, not of the process.
package processors

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Step processes one event. It returns keep=false to stop the event here
// (filtered); an error is a failure of this event, handled by the rule's
// on_error policy. Steps are built once and shared by every task, so they
// must not keep per-event or per-task state in themselves: per-task state
// lives in the ProcessorContext's stores.
type Step interface {
	Process(t ProcessorContext, ev *Event) (keep bool, err error)
}

// ProcessorContext is what a step can reach while processing (Kafka Streams'
// ProcessorContext): the outputs, stores and stream time of the task (the
// input partition) being processed.
type ProcessorContext interface {
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
func (c Chain) Process(t ProcessorContext, ev *Event) (bool, error) {
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
