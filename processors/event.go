package processors

import (
	"encoding/json"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/pkg/diag"
)

// Event is one consumed record, decoded once, moving through a rule's steps.
type Event struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Headers   []kgo.RecordHeader
	Timestamp time.Time

	// Value is the decoded JSON object. Steps that change it must call
	// Touch so that outputs are re-encoded instead of passing Raw through.
	Value map[string]any
	// Raw is the original record value.
	Raw []byte

	// Clock is the processing-time clock that now() reads in expressions
	// (the runner sets it to the Task); nil means the system clock.
	Clock Clock

	modified bool
}

// Clock tells the processing time; Task satisfies it.
type Clock interface {
	Now() time.Time
}

// Touch marks the value as changed by a step.
func (e *Event) Touch() { e.modified = true }

// Modified reports whether a step changed the value since it was decoded.
func (e *Event) Modified() bool { return e.modified }

// Encode returns the JSON encoding of the value: the original bytes when no
// step changed it.
func (e *Event) Encode() ([]byte, error) {
	if !e.modified && e.Raw != nil {
		return e.Raw, nil
	}
	return json.Marshal(e.Value)
}

// Clone returns a copy whose Value can be changed without affecting e (used
// when one record runs through several rules).
func (e *Event) Clone() *Event {
	c := *e
	c.Value = cloneMap(e.Value)
	return &c
}

func cloneMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	c := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			v = cloneMap(sub)
		}
		c[k] = v
	}
	return c
}

// Decode turns a consumed record into an Event. A value that is not a JSON
// object is a MalformedEvent error.
func Decode(r *kgo.Record) (*Event, error) {
	ev := &Event{
		Topic:     r.Topic,
		Partition: r.Partition,
		Offset:    r.Offset,
		Key:       r.Key,
		Headers:   r.Headers,
		Timestamp: r.Timestamp,
		Raw:       r.Value,
	}
	if err := json.Unmarshal(r.Value, &ev.Value); err != nil || ev.Value == nil {
		msg := "value is not a JSON object"
		if err != nil {
			msg += ": " + err.Error()
		}
		return ev, &diag.Error{Code: diag.MalformedEvent, Message: msg, Hint: "producers must write one JSON object per record"}
	}
	return ev, nil
}
