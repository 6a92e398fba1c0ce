package processors

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/pkg/expr"
)

var sequenceFields = []Field{
	{Name: "store", Type: StoreType, Required: true, Doc: "the store of the open sequences; `${params.x}` is substituted"},
	{Name: "key", Type: KeyExpr, Doc: "what ties the events of one sequence together (e.g. the order id); default: the event's key"},
	{Name: "first", Type: BoolExpr, Required: true, Doc: "a boolean expression: the event opens a sequence"},
	{Name: "then", Type: BoolExpr, Required: true, Doc: "a boolean expression: the event must follow a `first` of the same key"},
	{Name: "within", Type: DurationType, Doc: "the `then` must come at most this long (in event time) after the `first`; none: no deadline"},
	{Name: "ttl", Type: DurationType, Doc: "how long a sequence is remembered after its `first`, in event time; default 24h, and longer than `within`"},
	{Name: "emit", Type: EnumOf("violations", "all"), Doc: "`violations` (default): only violations go on; `all`: every event goes on, violations flagged"},
	{Name: "time", Type: TimeExpr, Doc: "the event time: a timestamp, an RFC 3339 string or epoch milliseconds; default: the record timestamp"},
	repartitionField,
}

// Violation kinds, the value of the violation field.
const (
	ViolationMissingFirst = "missing_first" // a then event with no first before it (within ttl)
	ViolationMissingThen  = "missing_then"  // a first event with no then within the deadline
)

func sequenceSpec() *Spec {
	return &Spec{
		Kind:    "sequence",
		Summary: "Check that events of one key come in order, and in time.",
		Doc: "Per `key`, an event matching `first` opens a sequence and an event matching `then` must " +
			"follow it. Two violations are detected:\n\n" +
			"- `missing_first`: a `then` event for a key with no open sequence (a payment for an order " +
			"never created). The event goes on with the field `violation: \"missing_first\"`.\n" +
			"- `missing_then`: with `within`, no `then` came by the deadline (`first`'s event time plus " +
			"`within`). It fires on punctuation, when the task's stream time passes the deadline: the " +
			"`first` event goes on through the steps after the sequence, keyed by the sequence key, with " +
			"`violation: \"missing_then\"` and `deadline` (RFC 3339). A `then` after the deadline does " +
			"not cancel it.\n\n" +
			"With `emit: violations` (default) only violations go on, so the steps after the sequence " +
			"handle violations (e.g. `to: alerts`); with `emit: all` every event goes on and only " +
			"violations carry the field. A sequence is forgotten `ttl` after its `first` (a later `then` " +
			"is then `missing_first`). Both kinds of events must reach the same task: when `key` is not what " +
			"the input is partitioned by, the topology adds a repartition by `key` before the step (see " +
			"\"Keys and repartitioning\"; the events then go on keyed by the sequence key). A rule that " +
			"reads several topics needs them co-partitioned.",
		Fields: sequenceFields,
		Key:    "`key` (default: the record key): ties the `first` and `then` events of one sequence together",
		Example: "- sequence:\n" +
			"    store: order-payments\n" +
			"    key: event.order_id\n" +
			"    first: event.type == \"order.created\"\n" +
			"    then: event.type == \"payment.captured\"\n" +
			"    within: 30m\n" +
			"- to: payments.anomalies",
		Build: buildSequence,
	}
}

type sequenceStep struct {
	store       string
	key         *expr.Program
	first, then *expr.Program
	within, ttl int64 // ms; within 0: none
	all         bool
	clock       clock
	repart      bool
}

// GroupKey implements Grouper: a sequence's events must meet in one task.
func (s *sequenceStep) GroupKey() (*expr.Program, bool) { return s.key, s.repart }

// KeyEffect implements KeyEffecter: violations carry the fields violation
// and deadline.
func (s *sequenceStep) KeyEffect() KeyEffect {
	return KeyEffect{Fields: []string{"violation", "deadline"}}
}

func buildSequence(b Builder, n *yaml.Node, path string) Step {
	v, ok := DecodeFields(b, n, path, "sequence", sequenceFields)
	s := &sequenceStep{
		store:  v.String("store", ""),
		key:    v.Expr("key"),
		first:  v.Expr("first"),
		then:   v.Expr("then"),
		within: v.Duration("within", 0).Milliseconds(),
		ttl:    v.Duration("ttl", 24*time.Hour).Milliseconds(),
		all:    v.String("emit", "violations") == "all",
		repart: v.Bool("repartition", true),
	}
	s.clock.time = v.Expr("time")
	if tn := v.Node("ttl"); tn != nil && v.Has("within") {
		if _, good := v.vals["ttl"]; good && s.within > 0 && s.ttl <= s.within {
			b.Errorf(tn, path+".ttl", diag.InvalidStep, "ttl %s must be longer than within %s", tn.Value, v.Node("within").Value)
			ok = false
		}
	} else if tn == nil && s.within >= s.ttl {
		s.ttl = 2 * s.within
	}
	if !ok {
		return nil
	}
	return s
}

// seqEntry is the stored state of one key's sequence (JSON).
type seqEntry struct {
	FirstAt  int64          `json:"first_at"`           // event time of the first, epoch ms
	Deadline int64          `json:"deadline,omitempty"` // epoch ms; 0: none
	Done     bool           `json:"done,omitempty"`     // the then came in time
	Event    map[string]any `json:"event,omitempty"`    // the first event, kept for missing_then
}

// Index kinds of sequence stores (idxExpiry is shared with dedupe).
const idxDeadline = 'd'

func (s *sequenceStep) Process(t ProcessorContext, ev *Event) (bool, error) {
	isFirst, err := s.first.Bool(ev)
	if err != nil {
		return false, err
	}
	isThen := false
	if !isFirst {
		if isThen, err = s.then.Bool(ev); err != nil {
			return false, err
		}
	}
	if !isFirst && !isThen {
		return s.all, nil
	}
	st, err := storeOf(t, s.store)
	if err != nil {
		return false, err
	}
	k, err := keyOf(s.key, ev, "the sequence key")
	if err != nil {
		return false, err
	}
	ts, _, err := s.clock.observe(t, st, s.store, ev)
	if err != nil {
		return false, err
	}
	if isFirst {
		e := seqEntry{FirstAt: ts}
		if s.within > 0 {
			e.Deadline, e.Event = ts+s.within, ev.Value
		}
		if err := s.put(st, k, &e); err != nil {
			return false, err
		}
		if err := st.Put(indexKey(ts+s.ttl, idxExpiry, []byte(k)), nil); err != nil {
			return false, stateError(s.store, err)
		}
		if e.Deadline > 0 {
			if err := st.Put(indexKey(e.Deadline, idxDeadline, []byte(k)), nil); err != nil {
				return false, stateError(s.store, err)
			}
		}
		return s.all, nil
	}
	e, found, err := s.get(st, []byte(k))
	if err != nil {
		return false, err
	}
	if !found || ts >= e.FirstAt+s.ttl {
		return s.flag(ev, ViolationMissingFirst, nil)
	}
	if !e.Done && (e.Deadline == 0 || ts <= e.Deadline) {
		e.Done, e.Event = true, nil
		if err := s.put(st, k, e); err != nil {
			return false, err
		}
	}
	return s.all, nil
}

// flag marks the event as a violation; it always goes on.
func (s *sequenceStep) flag(ev *Event, kind string, extra map[string]any) (bool, error) {
	if ev.Value == nil {
		ev.Value = map[string]any{}
	}
	ev.Value["violation"] = kind
	for k, v := range extra {
		ev.Value[k] = v
	}
	ev.Touch()
	return true, nil
}

func (s *sequenceStep) get(st Store, k []byte) (*seqEntry, bool, error) {
	v, found, err := st.Get(k)
	if err != nil {
		return nil, false, stateError(s.store, err)
	}
	if !found {
		return nil, false, nil
	}
	var e seqEntry
	if err := json.Unmarshal(v, &e); err != nil {
		return nil, false, stateError(s.store, fmt.Errorf("decode sequence %q: %w", k, err))
	}
	return &e, true, nil
}

func (s *sequenceStep) put(st Store, k string, e *seqEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return stateError(s.store, err)
	}
	if err := st.Put([]byte(k), b); err != nil {
		return stateError(s.store, err)
	}
	return nil
}

// Punctuate implements Punctuator: deadlines the stream time passed emit
// missing_then violations; sequences past their ttl are deleted.
func (s *sequenceStep) Punctuate(t ProcessorContext, emit func(*Event) error) error {
	st, err := storeOf(t, s.store)
	if err != nil {
		return err
	}
	due, err := s.clock.due(t, st, s.store)
	if err != nil {
		return err
	}
	for _, ix := range due {
		if err := st.Delete(ix.raw); err != nil {
			return stateError(s.store, err)
		}
		e, found, err := s.get(st, ix.key)
		if err != nil {
			return err
		}
		if !found {
			continue
		}
		switch {
		case ix.kind == idxExpiry && e.FirstAt+s.ttl == ix.due:
			if err := st.Delete(ix.key); err != nil {
				return stateError(s.store, err)
			}
		case ix.kind == idxDeadline && e.Deadline == ix.due && !e.Done:
			ev := &Event{Key: append([]byte(nil), ix.key...), Value: e.Event, Timestamp: time.UnixMilli(e.Deadline), Clock: t}
			e.Done, e.Event = true, nil // fired: a late then is no violation of its own
			if err := s.put(st, string(ix.key), e); err != nil {
				return err
			}
			if _, err := s.flag(ev, ViolationMissingThen, map[string]any{"deadline": rfc3339(ix.due)}); err != nil {
				return err
			}
			if err := emit(ev); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *sequenceStep) Describe() Info {
	parts := []string{"store " + s.store}
	if s.key != nil {
		parts = append(parts, "key = "+s.key.Source())
	}
	parts = append(parts, "first = "+s.first.Source(), "then = "+s.then.Source())
	if s.within > 0 {
		parts = append(parts, "within "+time.Duration(s.within*1e6).String())
	}
	if s.all {
		parts = append(parts, "emit all")
	}
	return Info{Kind: "sequence", Arg: strings.Join(parts, ", ")}
}
