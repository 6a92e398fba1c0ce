package processors

import (
	"encoding/binary"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/pkg/expr"
)

var dedupeFields = []Field{
	{Name: "store", Type: StoreType, Required: true, Doc: "the store of the ids seen; `${params.x}` is substituted"},
	{Name: "id", Type: KeyExpr, Required: true, Doc: "the id of the event (a string, or a number formatted as text)"},
	{Name: "ttl", Type: DurationType, Doc: "how long an id is remembered, in event time (e.g. 10m, 24h, 7d); default 24h"},
	{Name: "time", Type: TimeExpr, Doc: "the event time: a timestamp, an RFC 3339 string or epoch milliseconds; default: the record timestamp"},
	repartitionField,
}

func dedupeSpec() *Spec {
	return &Spec{
		Kind:    "dedupe",
		Summary: "Drop an event whose id was already seen within a TTL.",
		Doc: "The first event with an id goes on; a later one with the same id whose event time is less " +
			"than `ttl` after the first is dropped (the rule counts it as `filtered`). Once the TTL has " +
			"passed the id counts as new again. Entries whose TTL passed the task's stream time are " +
			"purged on punctuation (after each batch of records), a bounded number per batch. Ids are " +
			"remembered per task (input partition): when `id` is not what the input is partitioned by, " +
			"the topology adds a repartition by `id` before the step (see \"Keys and repartitioning\"; " +
			"the events then go on keyed by their id), unless `repartition: false`. The store maps each id to the time it was first seen (8 bytes, " +
			"big-endian epoch milliseconds).",
		Fields:  dedupeFields,
		Key:     "`id` (required): the ids seen are remembered per task, so the events of one id must meet in one task",
		Example: "- dedupe: {store: payments-seen, id: event.payment_id, ttl: 24h}",
		Build: func(b Builder, n *yaml.Node, path string) Step {
			v, ok := DecodeFields(b, n, path, "dedupe", dedupeFields)
			if !ok {
				return nil
			}
			s := &dedupeStep{
				store:  v.String("store", ""),
				id:     v.Expr("id"),
				ttl:    v.Duration("ttl", 24*time.Hour).Milliseconds(),
				repart: v.Bool("repartition", true),
			}
			s.clock.time = v.Expr("time")
			return s
		},
	}
}

type dedupeStep struct {
	store  string
	id     *expr.Program
	ttl    int64 // ms
	clock  clock
	repart bool
}

// GroupKey implements Grouper: the ids are remembered per task.
func (s *dedupeStep) GroupKey() (*expr.Program, bool) { return s.id, s.repart }

// KeyEffect implements KeyEffecter: the event goes on unchanged.
func (s *dedupeStep) KeyEffect() KeyEffect { return KeyEffect{} }

// Index kind of dedupe stores: an id's expiry.
const idxExpiry = 'x'

// LazyValue implements Lazy: the id and the event time are expressions.
func (*dedupeStep) LazyValue() {}

func (s *dedupeStep) Process(t ProcessorContext, ev *Event) (bool, error) {
	st, err := storeOf(t, s.store)
	if err != nil {
		return false, err
	}
	id, err := keyOf(s.id, ev, "the id")
	if err != nil {
		return false, err
	}
	ts, _, err := s.clock.observe(t, st, s.store, ev)
	if err != nil {
		return false, err
	}
	v, found, err := st.Get([]byte(id))
	if err != nil {
		return false, stateError(s.store, err)
	}
	if found && len(v) == 8 {
		if seen := int64(binary.BigEndian.Uint64(v)); ts < seen+s.ttl {
			return false, nil // a repeat within the TTL
		}
	}
	if err := st.Put([]byte(id), binary.BigEndian.AppendUint64(nil, uint64(ts))); err != nil {
		return false, stateError(s.store, err)
	}
	if err := st.Put(indexKey(ts+s.ttl, idxExpiry, []byte(id)), nil); err != nil {
		return false, stateError(s.store, err)
	}
	return true, nil
}

// Punctuate implements Punctuator: ids whose TTL passed are deleted. An
// index entry whose id was seen again since is only dropped.
func (s *dedupeStep) Punctuate(t ProcessorContext, _ func(*Event) error) error {
	st, err := storeOf(t, s.store)
	if err != nil {
		return err
	}
	return purgeExpired(t, st, s.store, s.clock, func(v []byte) int64 {
		if len(v) != 8 {
			return -1
		}
		return int64(binary.BigEndian.Uint64(v)) + s.ttl
	})
}

// purgeExpired deletes the entries whose expiry index entry is due; expiry
// tells an entry's current expiry from its value (an index entry that no
// longer matches is stale and only dropped).
func purgeExpired(t ProcessorContext, st Store, store string, c clock, expiry func(v []byte) int64) error {
	due, err := c.due(t, st, store)
	if err != nil {
		return err
	}
	for _, e := range due {
		if e.kind != idxExpiry {
			continue
		}
		if err := st.Delete(e.raw); err != nil {
			return stateError(store, err)
		}
		v, found, err := st.Get(e.key)
		if err != nil {
			return stateError(store, err)
		}
		if found && expiry(v) == e.due {
			if err := st.Delete(e.key); err != nil {
				return stateError(store, err)
			}
		}
	}
	return nil
}

func (s *dedupeStep) Describe() Info {
	arg := "store " + s.store + ", id = " + s.id.Source() + ", ttl " + time.Duration(s.ttl*1e6).String()
	if s.clock.time != nil {
		arg += ", time = " + s.clock.time.Source()
	}
	return Info{Kind: "dedupe", Arg: arg}
}
