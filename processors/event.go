package processors

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/pkg/expr"
	"github.com/veltrix/veltrix/pkg/jsonval"
)

// Event is one consumed record moving through a rule's steps.
//
// Its JSON value is read lazily: Decode validates Raw and indexes its
// top-level fields, expressions decode only the fields they select, set and
// drop of top-level fields record edits that Encode splices into Raw, and an
// event no step changed is written out as its original bytes. The value is
// decoded into a Go map (Value) only when something needs one: a step that
// is not Lazy (Chain decodes it before such a step runs), a dotted set or
// drop, or a caller of Map.
type Event struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Headers   []kgo.RecordHeader
	Timestamp time.Time

	// Value is the decoded JSON object, or nil while the event is read
	// lazily from Raw: call Map to have it decoded. Once it is set it is the
	// truth; steps that change it must call Touch so that outputs are
	// encoded from it instead of passing Raw through.
	Value map[string]any
	// Raw is the original record value.
	Raw []byte

	// Clock is the processing-time clock that now() reads in expressions
	// (the runner sets it to the ProcessorContext); nil means the system clock.
	Clock Clock

	obj   jsonval.Object // the index of Raw (valid after Decode)
	edits []jsonval.Edit // changes to top-level fields while Value is nil
	vals  []ref.Val      // the values of edits (nil for a removal)
	enc   []byte         // storage of the edits' encodings
	view  expr.LazyMap   // the value as expressions see it while Value is nil
	// slab is where Encode writes spliced values: a chunk shared by the
	// outputs of successive records (DecodeInto keeps it), so that an
	// output costs no allocation of its own. Only the free end is written.
	slab []byte
	// encoded is the JSON encoding of Value given by SetValue, used by
	// Encode until the next Touch.
	encoded []byte

	modified bool
}

// Clock tells the processing time; ProcessorContext satisfies it.
type Clock interface {
	Now() time.Time
}

// Lazy is implemented by steps that read and change the event only through
// expressions and the Event's methods, never through the Value field, so
// the event's JSON need not be decoded into a map for them. Chain decodes
// Value (Map) before running a step that is not Lazy, so a step that uses
// Value directly needs nothing more than to work as it always did.
type Lazy interface {
	Step
	// LazyValue is a marker; it does nothing.
	LazyValue()
}

// Touch marks the value as changed by a step.
func (e *Event) Touch() { e.modified, e.encoded = true, nil }

// SetValue replaces the value with m, whose JSON encoding (exactly what
// json.Marshal(m) writes) the step already has as enc: Encode returns enc
// instead of encoding m again, until a step changes the value (Touch).
func (e *Event) SetValue(m map[string]any, enc []byte) {
	e.Value = m
	e.Touch()
	e.encoded = enc
}

// SetJSON replaces the value with the JSON object enc, a step's result that
// it encoded itself and must not change afterwards. It is read lazily, as a
// consumed record's value is: its fields are indexed only when a later step
// reads one, expressions decode only the fields they select, and Encode
// returns enc itself until a step changes a field.
func (e *Event) SetJSON(enc []byte) {
	e.obj.SetValid(enc)
	clear(e.vals)
	e.Value, e.encoded = nil, nil
	e.edits, e.vals, e.enc = e.edits[:0], e.vals[:0], e.enc[:0]
	e.view.Reset(e)
	e.modified = true
}

// Modified reports whether a step changed the value since it was decoded.
func (e *Event) Modified() bool { return e.modified }

// Map returns the event's value as a Go map (float64 numbers, as
// encoding/json decodes), decoding it from Raw and the edits made so far if
// that has not been done yet. From then on Value holds it. It is nil for an
// event whose Raw was never decoded (a tombstone).
func (e *Event) Map() map[string]any {
	if e.Value == nil && e.obj.Raw() != nil {
		e.Value = e.decoded()
		clear(e.vals)
		e.edits, e.vals, e.enc = e.edits[:0], e.vals[:0], e.enc[:0]
		e.view.Reset(e)
	}
	return e.Value
}

// decoded returns a new map of Raw with the edits applied.
func (e *Event) decoded() map[string]any {
	m := e.obj.Map()
	for i, ed := range e.edits {
		if ed.Value == nil {
			delete(m, ed.Key)
			continue
		}
		m[ed.Key], _ = expr.ToJSON(e.vals[i]) // it was encoded: no error
	}
	return m
}

// Field returns the top-level field name as a CEL value, as an expression
// reading event.<name> sees it, or false when the event has no such field.
// It implements expr.Fields.
func (e *Event) Field(name string) (ref.Val, bool) {
	if e.Value != nil {
		v, ok := e.Value[name]
		if !ok {
			return nil, false
		}
		return types.DefaultTypeAdapter.NativeToValue(v), true
	}
	for i := len(e.edits) - 1; i >= 0; i-- {
		if e.edits[i].Key == name {
			if e.vals[i] == nil {
				return nil, false
			}
			return expr.AsJSON(e.vals[i]), true
		}
	}
	v, ok := e.obj.Get(name)
	if !ok {
		return nil, false
	}
	return expr.FromJSON(v), true
}

// JSONField returns the top-level field name as it is written in Raw, when
// the event is read lazily and no step changed that field. It implements
// expr.JSONFields.
func (e *Event) JSONField(name string) (jsonval.Value, bool) {
	if e.Value != nil {
		return jsonval.Value{}, false
	}
	for i := range e.edits {
		if e.edits[i].Key == name {
			return jsonval.Value{}, false
		}
	}
	return e.obj.Get(name)
}

// All returns the whole value as a new map of JSON-compatible Go values. It
// implements expr.Fields.
func (e *Event) All() map[string]any {
	if e.Value != nil {
		return cloneMap(e.Value)
	}
	return e.decoded()
}

// has reports whether the top-level field name exists.
func (e *Event) has(name string) bool {
	for i := len(e.edits) - 1; i >= 0; i-- {
		if e.edits[i].Key == name {
			return e.vals[i] != nil
		}
	}
	_, ok := e.obj.Get(name)
	return ok
}

// edit records a change of a top-level field while Value is nil: v is the
// new value and enc its JSON encoding, or both nil to remove the field.
func (e *Event) edit(name string, v ref.Val, enc []byte) {
	e.edits = append(e.edits, jsonval.Edit{Key: name, Value: enc})
	e.vals = append(e.vals, v)
	e.view.Reset(e)
	e.modified = true
}

// slabSize is the size of the chunks Encode writes spliced values into. A
// chunk lives until every output written into it is produced.
const slabSize = 32 << 10

// Encode returns the JSON encoding of the value: the original bytes when no
// step changed it, the original bytes with the changed fields spliced in
// when only top-level fields were set or removed, and the encoding of Value
// (keys sorted, as encoding/json writes maps) once Value is decoded.
func (e *Event) Encode() ([]byte, error) {
	if !e.modified && e.Raw != nil {
		return e.Raw, nil
	}
	if e.Value != nil && e.encoded != nil {
		return e.encoded, nil
	}
	if e.Value == nil && len(e.edits) == 0 && e.obj.Raw() != nil {
		return e.obj.Raw(), nil // a value set by SetJSON
	}
	if e.Value == nil && e.obj.Raw() != nil {
		n := e.obj.PatchedLen(e.edits)
		if cap(e.slab)-len(e.slab) < n {
			e.slab = make([]byte, 0, max(slabSize, n))
		}
		start := len(e.slab)
		e.slab = e.obj.AppendPatched(e.slab, e.edits)
		return e.slab[start:len(e.slab):len(e.slab)], nil
	}
	return json.Marshal(e.Value)
}

// Clone returns a copy whose value can be changed without affecting e (used
// when one record runs through several rules).
func (e *Event) Clone() *Event {
	c := *e
	c.Value = cloneMap(e.Value)
	// The copy shares no storage with e, which DecodeInto may reuse.
	c.obj = e.obj.Clone()
	c.edits, c.vals, c.enc = nil, slices.Clone(e.vals), nil
	if len(e.edits) > 0 {
		n := 0
		for _, ed := range e.edits {
			n += len(ed.Value)
		}
		c.enc = make([]byte, 0, n)
		c.edits = make([]jsonval.Edit, len(e.edits))
		for i, ed := range e.edits {
			c.edits[i].Key = ed.Key
			if ed.Value != nil {
				start := len(c.enc)
				c.enc = append(c.enc, ed.Value...)
				c.edits[i].Value = c.enc[start:len(c.enc):len(c.enc)]
			}
		}
	}
	c.slab = nil // the copy must not write into e's chunk
	c.view.Reset(&c)
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

// Decode turns a consumed record into an Event: it validates the value as a
// JSON object and indexes its top-level fields, decoding nothing else. A
// value that is not a JSON object (malformed JSON, another kind, a number
// out of float64 range: what encoding/json would not decode into a map) is
// a MalformedEvent error; the Event is returned with it, undecoded.
func Decode(r *kgo.Record) (*Event, error) {
	ev := &Event{}
	return ev, DecodeInto(ev, r)
}

// DecodeInto is Decode into an existing Event, which it resets first,
// reusing its storage: a caller that runs records one at a time can keep
// (or pool) one Event instead of allocating one per record. Nothing may
// keep ev, or anything DecodeInto reuses (its edits), past the next
// DecodeInto; Value maps and the slices Encode returns are never reused.
func DecodeInto(ev *Event, r *kgo.Record) error {
	clear(ev.vals)
	// Field by field: building a whole Event and copying it in cost
	// three times as many instructions (a copy of every field, with
	// write barriers on its pointers while the collector runs). Every
	// field but obj, slab and the storage of edits, vals and enc is set
	// here (TestDecodeIntoResets).
	ev.Topic, ev.Partition, ev.Offset = r.Topic, r.Partition, r.Offset
	ev.Key, ev.Headers, ev.Timestamp, ev.Raw = r.Key, r.Headers, r.Timestamp, r.Value
	ev.Value, ev.Clock, ev.encoded, ev.modified = nil, nil, nil, false
	ev.edits, ev.vals, ev.enc = ev.edits[:0], ev.vals[:0], ev.enc[:0]
	ev.view.Reset(ev)
	if err := ev.obj.Parse(r.Value); err != nil {
		return &diag.Error{Code: diag.MalformedEvent, Message: "value is not a JSON object: " + err.Error(),
			Hint: "producers must write one JSON object per record"}
	}
	// JSON text is UTF-8 (RFC 8259): invalid bytes inside a string would
	// pass through to the outputs and fail strict readers downstream.
	// Only what Parse did not see to be ASCII is read again.
	if at := ev.obj.InvalidUTF8(); at >= 0 {
		return &diag.Error{Code: diag.MalformedEvent,
			Message: fmt.Sprintf("value is not valid UTF-8 at byte %d", at),
			Hint:    "producers must write JSON in UTF-8; escape other bytes (\\u00ff) or encode binary data (base64)"}
	}
	return nil
}
