package processors

import (
	"encoding/binary"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"cel.dev/cel-go/common/types"
	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/pkg/expr"
)

// Punctuator is a step that also works on stream time rather than on one
// event: it closes windows, fires deadlines and purges expired entries. The
// topology calls Punctuate for every task after each batch of records, in
// the task's transaction.
type Punctuator interface {
	// Punctuate does the work due at the task's stream time and hands each
	// event it produces (a closed window's result, a missed deadline) to
	// emit, which runs the rest of the rule after the step. An error from
	// emit is fatal (the rule's on_error is fail) and is returned as is.
	// The work per call is bounded; what is left is done on the next call.
	Punctuate(t ProcessorContext, emit func(*Event) error) error
}

// Nested is a step that holds step lists of its own (route, use), so that
// punctuating steps inside them are found.
type Nested interface {
	// NestedChains returns the step lists; Continues says whether the
	// event goes on after the list to the steps following the holder
	// (true for use, false for route branches).
	NestedChains() []NestedChain
}

// NestedChain is one step list held by a Nested step.
type NestedChain struct {
	Steps     Chain
	Continues bool
}

// NestedChains implements Nested: a route's branches are the rest of the rule.
func (s *routeStep) NestedChains() []NestedChain {
	out := make([]NestedChain, len(s.branches))
	for i, br := range s.branches {
		out[i] = NestedChain{Steps: br.steps}
	}
	return out
}

// Repartitioner is implemented by the rekey step: the topology splits the
// rule after it, and the steps that follow read Topic.
type Repartitioner interface {
	RepartitionTopic() string
}

// HasPunctuator reports whether c holds a punctuating step, nested ones
// included.
func HasPunctuator(c Chain) bool {
	for _, s := range c {
		if _, ok := s.(Punctuator); ok {
			return true
		}
		if n, ok := s.(Nested); ok {
			for _, nc := range n.NestedChains() {
				if HasPunctuator(nc.Steps) {
					return true
				}
			}
		}
	}
	return false
}

// PunctuateChain punctuates every punctuating step of c (nested ones
// included). Each event a step produces is passed to deliver with rest, the
// steps after that step up to the end of the rule (after is what follows c;
// nil when nothing does). deliver runs rest and applies the rule's error
// policy; an error it returns stops the punctuation.
func PunctuateChain(t ProcessorContext, c Chain, after Step, deliver func(ev *Event, rest Step) error) error {
	for i, s := range c {
		rest := then(c[i+1:], after)
		if p, ok := s.(Punctuator); ok {
			if err := p.Punctuate(t, func(ev *Event) error { return deliver(ev, rest) }); err != nil {
				return err
			}
		}
		if n, ok := s.(Nested); ok {
			for _, nc := range n.NestedChains() {
				var a Step
				if nc.Continues {
					a = rest
				}
				if err := PunctuateChain(t, nc.Steps, a, deliver); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// then is the steps of c followed by after.
func then(c Chain, after Step) Step {
	if after == nil {
		return c
	}
	return Chain{c, after}
}

// punctuateBatch bounds the entries one step handles per Punctuate call.
const punctuateBatch = 10_000

// Keys of stateful steps. A store holds the user's keys as they are (a
// group key, an id, a table key), so that the query API finds them; the
// step's own bookkeeping lives under keys that start with 0x00, which user
// keys may not (VX5004).
const internalPrefix = 0x00

var (
	metaStreamTime = []byte{internalPrefix, 't'} // -> 8 bytes: the step's stream time (unix ms)
	indexPrefix    = []byte{internalPrefix, 'i'} // + 8 bytes due time (unix ms) + kind byte + user key
)

// IsInternalKey reports whether a store key is bookkeeping of a stateful
// step (an index or the step's stream time) rather than a user key; the
// query API hides such keys.
func IsInternalKey(key []byte) bool { return len(key) > 0 && key[0] == internalPrefix }

// userKey checks a key computed from an event.
func userKey(k string, what string) error {
	if len(k) > 0 && k[0] == internalPrefix {
		return &diag.Error{Code: diag.ResultType, Message: what + " starts with a 0x00 byte, which is reserved for internal keys"}
	}
	return nil
}

// indexKey is indexPrefix + due + kind + key.
func indexKey(due int64, kind byte, key []byte) []byte {
	k := make([]byte, 0, len(indexPrefix)+9+len(key))
	k = append(k, indexPrefix...)
	k = binary.BigEndian.AppendUint64(k, uint64(due))
	k = append(k, kind)
	return append(k, key...)
}

// indexEntry is one decoded index key.
type indexEntry struct {
	raw  []byte
	due  int64
	kind byte
	key  []byte
}

// dueEntries returns up to punctuateBatch index entries due at or before
// now (unix ms), earliest first. The scan stops at the first entry not yet
// due, so its cost is bounded by the work found.
func dueEntries(s Store, now int64) ([]indexEntry, error) {
	var out []indexEntry
	err := s.Scan(indexPrefix, func(k, _ []byte) bool {
		if len(k) < len(indexPrefix)+9 {
			return true
		}
		due := int64(binary.BigEndian.Uint64(k[len(indexPrefix):]))
		if due > now || len(out) >= punctuateBatch {
			return false
		}
		raw := append([]byte(nil), k...)
		out = append(out, indexEntry{raw: raw, due: due, kind: raw[len(indexPrefix)+8], key: raw[len(indexPrefix)+9:]})
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("scan index: %w", err)
	}
	return out, nil
}

// due returns the index entries of st due at the task's stream time.
func (c clock) due(t ProcessorContext, st Store, store string) ([]indexEntry, error) {
	now, err := c.streamTime(t, st)
	if err != nil {
		return nil, stateError(store, err)
	}
	entries, err := dueEntries(st, now)
	if err != nil {
		return nil, stateError(store, err)
	}
	return entries, nil
}

// clock is how a stateful step tells event time and stream time.
type clock struct {
	time *expr.Program // nil: the record timestamp
}

// eventTime returns the event's time in unix milliseconds: the record
// timestamp, or the time expression's result (a timestamp, an RFC 3339
// string or a number of milliseconds since the epoch).
func (c clock) eventTime(ev *Event) (int64, error) {
	if c.time == nil {
		return ev.Timestamp.UnixMilli(), nil
	}
	v, err := c.time.Eval(ev)
	if err != nil {
		return 0, err
	}
	switch v := v.(type) {
	case types.Timestamp:
		return v.Time.UnixMilli(), nil
	case types.String:
		t, err := time.Parse(time.RFC3339Nano, string(v))
		if err != nil {
			return 0, c.time.Pos().At(diag.ResultType, "%s: %q is not an RFC 3339 time", c.time.Source(), string(v))
		}
		return t.UnixMilli(), nil
	case types.Int:
		return int64(v), nil
	case types.Double:
		return int64(v), nil
	case types.Uint:
		return int64(v), nil
	}
	return 0, c.time.Pos().At(diag.ResultType, "%s: must return a timestamp, an RFC 3339 string or epoch milliseconds, got %s", c.time.Source(), v.Type().TypeName())
}

// streamTime is the step's stream time in unix ms: the largest event time
// the step has seen in this task (kept in its store, so it survives a
// restart with the store) and, when event time is the record timestamp,
// the task's stream time.
func (c clock) streamTime(t ProcessorContext, s Store) (int64, error) {
	own, err := c.stored(s)
	if err != nil {
		return 0, err
	}
	return c.withTask(t, own), nil
}

// withTask is own, or the task's stream time when event time is the record
// timestamp and the task's is later.
func (c clock) withTask(t ProcessorContext, own int64) int64 {
	if c.time == nil {
		if st := t.StreamTime(); !st.IsZero() && st.UnixMilli() > own {
			return st.UnixMilli()
		}
	}
	return own
}

// stored is the stream time kept in the step's store (0 when none).
func (c clock) stored(s Store) (int64, error) {
	v, ok, err := s.Get(metaStreamTime)
	if err != nil {
		return 0, fmt.Errorf("read stream time: %w", err)
	}
	if ok && len(v) == 8 {
		return int64(binary.BigEndian.Uint64(v)), nil
	}
	return 0, nil
}

// advance moves the step's stored stream time to ts when ts is later, and
// returns the stream time. The stored time is compared, not streamTime: the
// task's stream time already counts the record being processed, and the
// store must keep it for the task's next owner, whose own stream time
// starts over (a window closed before a restart stays closed).
func (c clock) advance(t ProcessorContext, s Store, ts int64) (int64, error) {
	own, err := c.stored(s)
	if err != nil {
		return 0, err
	}
	if ts > own {
		if err := s.Put(metaStreamTime, binary.BigEndian.AppendUint64(nil, uint64(ts))); err != nil {
			return 0, fmt.Errorf("write stream time: %w", err)
		}
		own = ts
	}
	return c.withTask(t, own), nil
}

// observe reads the event's time and advances the task's stream time with
// it; it returns both (unix ms).
func (c clock) observe(t ProcessorContext, st Store, store string, ev *Event) (ts, now int64, err error) {
	if ts, err = c.eventTime(ev); err != nil {
		return 0, 0, err
	}
	if now, err = c.advance(t, st, ts); err != nil {
		return 0, 0, stateError(store, err)
	}
	return ts, now, nil
}

// keyOf evaluates key (the event's own key when key is nil) and checks that
// it is a user key; what names it in errors.
func keyOf(key *expr.Program, ev *Event, what string) (string, error) {
	var k string
	if key == nil {
		k = string(ev.Key)
	} else {
		var err error
		if k, err = key.String(ev); err != nil {
			return "", err
		}
	}
	if err := userKey(k, what); err != nil {
		return "", err
	}
	return k, nil
}

// storeOf returns the task's store, or a VX9001 error when the task has
// none of that name (the engine did not open the stores the topology lists).
func storeOf(t ProcessorContext, name string) (Store, error) {
	s := t.Store(name)
	if s == nil {
		return nil, &diag.Error{Code: diag.Internal, Message: fmt.Sprintf("store %q is not open in this task", name)}
	}
	return s, nil
}

// stateError wraps a store failure as VX9001.
func stateError(store string, err error) error {
	return &diag.Error{Code: diag.Internal, Message: fmt.Sprintf("store %q: %v", store, err)}
}

// daysRE matches a number of days, which Go durations lack.
var daysRE = regexp.MustCompile(`^(\d+)d$`)

// duration parses a positive duration node (or 0 too, when zeroOK): a Go
// duration ("90s", "1h30m") or a number of days ("7d"), in whole
// milliseconds.
func duration(b Builder, n *yaml.Node, path string, zeroOK bool) (time.Duration, bool) {
	if !scalar(b, n, path, "a duration such as 30m, 1h or 7d") {
		return 0, false
	}
	d, err := time.ParseDuration(n.Value)
	if m := daysRE.FindStringSubmatch(n.Value); m != nil {
		days, _ := strconv.Atoi(m[1])
		d, err = time.Duration(days)*24*time.Hour, nil
	}
	switch {
	case err != nil:
		setHint(b.Errorf(n, path, diag.InvalidStep, "%q is not a duration", n.Value), "write a duration such as 30s, 5m, 1h or 7d")
		return 0, false
	case d == 0 && zeroOK:
	case d <= 0:
		b.Errorf(n, path, diag.InvalidStep, "duration %s must be positive", n.Value)
		return 0, false
	case d%time.Millisecond != 0:
		b.Errorf(n, path, diag.InvalidStep, "duration %s must be a whole number of milliseconds", n.Value)
		return 0, false
	}
	return d, true
}

// rfc3339 formats unix ms as RFC 3339 in UTC.
func rfc3339(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }
