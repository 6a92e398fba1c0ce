// Package testdriver runs a built topology in memory, with no broker, through
// the same code as `veltrix run` (topology.Process with a
// processors.ProcessorContext), in the spirit of Kafka Streams'
// TopologyTestDriver: pipe input records, read the output records in order,
// inspect the stores and advance time.
//
// It serves `veltrix test` (see Suite) and the unit tests of step kinds.
//
//	d := testdriver.New(topo)
//	err := d.Pipe(testdriver.Record{Topic: "orders", Key: []byte("o-1"), Value: []byte(`{"total": 7000}`)})
//	outs := d.Outputs()
//
// # What the driver guarantees
//
//   - The steps, the rules' error policies (on_error, the DLQ record) and the
//     key analysis are the engine's own: a topology that passes here runs the
//     same code under `veltrix run`.
//   - Each input partition is a task with its own stores (processors.MemStore)
//     and stream time, as in the engine. A record's partition is the one
//     Kafka's default partitioner picks for its key among WithPartitions
//     partitions (default 1, so every key meets its state in one task).
//   - Pipe is synchronous: when it returns, the record and everything it
//     caused (records through repartition topics, piped back in order into
//     the task of their new key, and the punctuation of its task) are done.
//     Outputs are in emission order; repartition records are not outputs.
//   - Time moves only when told: stream time by the records' timestamps and
//     AdvanceTime, processing time by WithClock. No test needs to sleep.
//
// What it does not model: transactions and restarts. A record that fails
// under on_error: fail returns its *topology.RuleError and its outputs are
// dropped, but its store writes are kept (the engine would abort them), and
// there is no changelog, restore or rebalance (see internal/state and the
// end-to-end tests for those). A Driver is not safe for concurrent use.
package testdriver

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/state"
	"github.com/veltrix/veltrix/internal/topology"
	"github.com/veltrix/veltrix/processors"
)

// Record is an input or output record. On input, Partition and Offset are
// ignored (the driver assigns them); a zero Timestamp means the stream time
// of the record's task (the driver's start time before its first record). On
// output, Timestamp is the timestamp of the input record it derives from, as
// the engine writes it, and Partition is the task that emitted it.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []kgo.RecordHeader
	Timestamp time.Time
}

// Header returns the value of the first header named key.
func (r Record) Header(key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// Option changes a Driver.
type Option func(*Driver)

// WithPartitions sets the number of partitions of every input topic, so the
// number of tasks records can land in. The default is 1: every key meets its
// state in one task. Use more to test that a rule keys its state correctly.
func WithPartitions(n int32) Option {
	return func(d *Driver) {
		if n > 0 {
			d.partitions = n
		}
	}
}

// WithClock sets the processing-time clock (what now() returns in
// expressions and ProcessorContext.Now returns to steps). The default is the
// system clock.
func WithClock(now func() time.Time) Option {
	return func(d *Driver) {
		if now != nil {
			d.now = now
		}
	}
}

// WithStartTime sets the event time given to records piped with no timestamp
// before their task has seen one. The default is 2026-01-01T00:00:00Z, so
// that runs are reproducible.
func WithStartTime(t time.Time) Option { return func(d *Driver) { d.start = t } }

// WithTopologyOptions sets options Suite.Run passes to topology.Build when
// it builds the configuration (extra step kinds in tests, a logger for log
// steps). New ignores them: it gets a built topology.
func WithTopologyOptions(opts ...topology.Option) Option {
	return func(d *Driver) { d.topoOpts = append(d.topoOpts, opts...) }
}

// DefaultStartTime is the default of WithStartTime.
var DefaultStartTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// punctuator is what a topology implements when it has time-driven work
// (windows that close on stream time, expiring entries). The driver calls it
// after each input and after AdvanceTime.
type punctuator interface {
	Punctuate(task processors.ProcessorContext) error
}

// storeNamer is what a topology implements when it declares its stores; the
// driver then gives steps only those stores, as the engine does.
type storeNamer interface {
	StoreNames() []string
}

// Driver runs a topology in memory. It is not safe for concurrent use.
type Driver struct {
	topo       *topology.Topology
	stores     []string // declared store names; nil: any name, created on first use
	topoOpts   []topology.Option
	partitions int32
	now        func() time.Time
	start      time.Time

	tasks   map[int32]*task
	offsets map[string]int64 // "topic/partition" -> next offset
	outputs []Record
	read    int // outputs already returned by ReadOutputs
}

// New returns a driver for topo.
func New(topo *topology.Topology, opts ...Option) *Driver {
	d := &Driver{
		topo:       topo,
		partitions: 1,
		now:        time.Now,
		start:      DefaultStartTime,
		tasks:      map[int32]*task{},
		offsets:    map[string]int64{},
	}
	for _, o := range opts {
		o(d)
	}
	if n, ok := any(topo).(storeNamer); ok {
		d.stores = append([]string{}, n.StoreNames()...)
	}
	return d
}

// Pipe runs one input record through every rule that reads its topic, then
// punctuates its task. Records a rule writes to its repartition topic (after
// a rekey) are not outputs: they are piped back, in order, into the task of
// their new key, as the engine would consume them. Outputs (DLQ records
// included) are collected in order. A rule with on_error: fail that fails
// returns its *topology.RuleError; the outputs of that record are then dropped, as the
// engine's transaction would be aborted (store writes are not rolled back).
func (d *Driver) Pipe(in Record) error {
	if in.Topic == "" {
		return fmt.Errorf("testdriver: pipe: record has no topic")
	}
	p := int32(0)
	if in.Key != nil {
		p = state.PartitionFor(in.Key, d.partitions)
	}
	t := d.task(p)
	ts := in.Timestamp
	if ts.IsZero() {
		ts = t.streamTime
		if ts.IsZero() {
			ts = d.start
		}
	}
	if ts.After(t.streamTime) && !d.topo.AheadOfClock(ts, d.now()) {
		t.streamTime = ts
	}
	off := d.offsets[fmt.Sprint(in.Topic, "/", p)]
	d.offsets[fmt.Sprint(in.Topic, "/", p)] = off + 1
	rec := &kgo.Record{Topic: in.Topic, Partition: p, Offset: off, Key: in.Key, Value: in.Value,
		Headers: slices.Clone(in.Headers), Timestamp: ts}
	t.current = rec
	mark := len(d.outputs)
	if err := d.topo.Process(t, rec, nil); err != nil {
		d.outputs = d.outputs[:mark]
		return err
	}
	if err := d.punctuate(t); err != nil {
		return err
	}
	return d.repartition(mark)
}

// repartitioner is what a topology implements when rules change keys: the
// records written to these internal topics are read back by the rest of the
// rule, as the engine would consume them.
type repartitioner interface {
	Repartitions() []string
}

// repartition takes the records written to repartition topics since mark
// out of the outputs and pipes them, in order, into the task of their new
// key.
func (d *Driver) repartition(mark int) error {
	r, ok := any(d.topo).(repartitioner)
	if !ok {
		return nil
	}
	topics := r.Repartitions()
	if len(topics) == 0 {
		return nil
	}
	var internal []Record
	kept := d.outputs[:mark]
	for _, o := range d.outputs[mark:] {
		if slices.Contains(topics, o.Topic) {
			internal = append(internal, o)
		} else {
			kept = append(kept, o)
		}
	}
	d.outputs = kept
	for _, o := range internal {
		if err := d.Pipe(Record{Topic: o.Topic, Key: o.Key, Value: o.Value, Headers: o.Headers, Timestamp: o.Timestamp}); err != nil {
			return err
		}
	}
	return nil
}

// AdvanceTime moves the stream time of every task that has seen a record
// forward by by (tasks that never saw one have no state to expire), then
// punctuates them, so windows close and entries expire as if later records
// had arrived. Outputs of the punctuation carry the new stream time as
// timestamp.
func (d *Driver) AdvanceTime(by time.Duration) error {
	if by < 0 {
		return fmt.Errorf("testdriver: advance time by %v: stream time never goes back", by)
	}
	for _, p := range d.taskIDs() {
		t := d.tasks[p]
		if t.streamTime.IsZero() {
			continue
		}
		t.streamTime = t.streamTime.Add(by)
		t.current = &kgo.Record{Partition: p, Timestamp: t.streamTime}
		if err := d.punctuate(t); err != nil {
			return err
		}
	}
	return nil
}

func (d *Driver) punctuate(t *task) error {
	if p, ok := any(d.topo).(punctuator); ok {
		if err := p.Punctuate(t); err != nil {
			return fmt.Errorf("testdriver: punctuate task %d: %w", t.partition, err)
		}
	}
	return nil
}

// Outputs returns every output record so far, in the order they were
// emitted.
func (d *Driver) Outputs() []Record { return slices.Clone(d.outputs) }

// ReadOutputs returns the output records emitted since the last call.
func (d *Driver) ReadOutputs() []Record {
	out := slices.Clone(d.outputs[d.read:])
	d.read = len(d.outputs)
	return out
}

// StreamTime returns the stream time of a task (zero before its first
// record).
func (d *Driver) StreamTime(partition int32) time.Time {
	if t := d.tasks[partition]; t != nil {
		return t.streamTime
	}
	return time.Time{}
}

// Store returns a task's store of that name, or nil when no step of that
// task has used it yet.
func (d *Driver) Store(partition int32, name string) *processors.MemStore {
	if t := d.tasks[partition]; t != nil {
		return t.stores[name]
	}
	return nil
}

// Get looks key up in the store of that name of every task, in partition
// order, and returns the first value found: the key's value whichever task
// owns it.
func (d *Driver) Get(store string, key []byte) ([]byte, bool) {
	for _, p := range d.taskIDs() {
		if s := d.tasks[p].stores[store]; s != nil {
			if v, ok, _ := s.Get(key); ok {
				return v, true
			}
		}
	}
	return nil, false
}

// StoreKeys returns the keys of the store of that name over every task,
// sorted (for messages that say what a store holds).
func (d *Driver) StoreKeys(store string) []string {
	var keys []string
	for _, t := range d.tasks {
		if s := t.stores[store]; s != nil {
			_ = s.Scan(nil, func(k, _ []byte) bool {
				keys = append(keys, string(k))
				return true
			})
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

func (d *Driver) taskIDs() []int32 {
	ids := make([]int32, 0, len(d.tasks))
	for p := range d.tasks {
		ids = append(ids, p)
	}
	slices.Sort(ids)
	return ids
}

func (d *Driver) task(p int32) *task {
	t := d.tasks[p]
	if t == nil {
		t = &task{d: d, partition: p, stores: map[string]*processors.MemStore{}}
		d.tasks[p] = t
	}
	return t
}

// task is one input partition: the processors.ProcessorContext steps see.
type task struct {
	d          *Driver
	partition  int32
	stores     map[string]*processors.MemStore
	streamTime time.Time
	current    *kgo.Record // the record being processed (or the punctuation time)
}

var _ processors.ProcessorContext = (*task)(nil)

// Emit collects a copy of an output (steps may reuse their buffers), stamped
// like the engine does with the timestamp of the record being processed.
func (t *task) Emit(o processors.Output) {
	t.d.outputs = append(t.d.outputs, Record{
		Topic: o.Topic, Partition: t.partition, Key: bytes.Clone(o.Key), Value: bytes.Clone(o.Value),
		Headers: slices.Clone(o.Headers), Timestamp: t.current.Timestamp,
	})
}

func (t *task) Now() time.Time { return t.d.now() }

// Store returns the task's in-memory store of that name, created on first
// use; nil for a name the topology does not declare (when it declares its
// stores).
func (t *task) Store(name string) processors.Store {
	s := t.stores[name]
	if s == nil {
		if t.d.stores != nil && !slices.Contains(t.d.stores, name) {
			return nil
		}
		s = processors.NewMemStore()
		t.stores[name] = s
	}
	return s
}

func (t *task) StreamTime() time.Time { return t.streamTime }
