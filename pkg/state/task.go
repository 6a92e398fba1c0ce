package state

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// Record is a changelog record to produce in the task's open transaction.
// Partition is always the task's partition: the engine must produce it there
// (for example with kgo.ManualPartitioner, or a partitioner that honours a
// set partition), not let a key partitioner pick one, because store keys
// (window keys, for instance) need not hash to the task's partition.
type Record struct {
	Topic     string
	Partition int32
	Key       []byte
	// Value is the stored value; nil is a tombstone (the key was deleted).
	Value []byte
}

// Task is the state of one task (input partition): its stores, and the
// writes of its open transaction.
//
// The engine drives it around each Kafka transaction:
//
//  1. steps read and write through Store; writes go to a Pebble indexed batch
//     that reads see, and each written key is remembered as dirty;
//  2. before ending the transaction, the engine produces Changelog() in it:
//     one record per dirty key with its last value (updates to a key within a
//     transaction are coalesced, like a write-back cache);
//  3. after the transaction commits, Commit(offsets) applies the batch and the
//     changelog checkpoints in one Pebble batch; if it aborts, or its outcome
//     is unknown, Abort() discards the batch, and after an unknown outcome
//     the engine calls Restore to catch up from the changelog before
//     processing again.
//
// So local state is never ahead of what Kafka committed. A Task is not safe
// for concurrent use: one goroutine (the task's loop) owns it. The query API
// reads committed state through DB.Get and DB.Scan instead.
type Task struct {
	db        *DB
	partition int32
	stores    []*taskStore
	byName    map[string]*taskStore
	byTopic   map[string]*taskStore
	batch     *pebble.Batch // nil when no write since the last commit/abort
	closed    bool
}

type taskStore struct {
	t      *Task
	name   string
	topic  string
	prefix []byte
	dirty  map[string]struct{}
}

// OpenTask opens the stores of a task (input partition) on assignment. The
// task must then Restore before processing. Opening a partition that is
// already open is ErrTaskOpen.
func (db *DB) OpenTask(partition int32, stores ...string) (*Task, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return nil, ErrClosed
	}
	if _, ok := db.tasks[partition]; ok {
		return nil, fmt.Errorf("%w: partition %d", ErrTaskOpen, partition)
	}
	t := &Task{
		db:        db,
		partition: partition,
		byName:    make(map[string]*taskStore, len(stores)),
		byTopic:   make(map[string]*taskStore, len(stores)),
	}
	for _, name := range stores {
		if name == "" || len(name) > 0xffff {
			return nil, fmt.Errorf("state: invalid store name %q", name)
		}
		if _, ok := t.byName[name]; ok {
			return nil, fmt.Errorf("state: store %q listed twice", name)
		}
		s := &taskStore{t: t, name: name, topic: ChangelogTopic(db.opts.AppID, name), prefix: rangePrefix(name, partition), dirty: make(map[string]struct{})}
		t.stores = append(t.stores, s)
		t.byName[name] = s
		t.byTopic[s.topic] = s
	}
	db.tasks[partition] = t
	return t, nil
}

// Partition is the task's input partition.
func (t *Task) Partition() int32 { return t.partition }

// Store returns the named store of the task, or nil if the task has no such
// store.
func (t *Task) Store(name string) Store {
	s, ok := t.byName[name]
	if !ok {
		return nil
	}
	return s
}

// Dirty reports whether the open transaction wrote anything.
func (t *Task) Dirty() bool {
	for _, s := range t.stores {
		if len(s.dirty) > 0 {
			return true
		}
	}
	return false
}

// Changelog returns the changelog records of the open transaction: for each
// store, one record per key written since the last Commit or Abort, with the
// key's current value (nil for a deleted key), ordered by store then key.
// Calling it does not end the transaction; it can be called again and
// returns the same records if nothing was written in between.
func (t *Task) Changelog() ([]Record, error) {
	if t.closed {
		return nil, ErrClosed
	}
	var out []Record
	for _, s := range t.stores {
		if len(s.dirty) == 0 {
			continue
		}
		keys := make([]string, 0, len(s.dirty))
		for k := range s.dirty {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			v, ok, err := s.Get([]byte(k))
			if err != nil {
				return nil, err
			}
			r := Record{Topic: s.topic, Partition: t.partition, Key: []byte(k)}
			if ok {
				if v == nil {
					v = []byte{}
				}
				r.Value = v
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// Commit applies the open transaction to Pebble once its Kafka transaction
// has committed. offsets maps changelog topics to the offset of the last
// record produced to the task's partition of that topic in the transaction
// (from the produce results). The data and the new checkpoints (offset+1)
// are written in one Pebble batch, so they land together or not at all.
//
// Every store with dirty keys needs an offset; an offset for a store with no
// dirty keys just advances its checkpoint. Writes are not fsynced: the
// changelog is the truth, and a tail lost in a machine crash is restored from
// it. On error the transaction is discarded as by Abort, and the engine must
// Restore before processing again.
func (t *Task) Commit(offsets map[string]int64) error {
	if t.closed {
		return ErrClosed
	}
	err := t.commit(offsets)
	if err != nil {
		t.Abort()
		return fmt.Errorf("state: commit partition %d: %w", t.partition, err)
	}
	return nil
}

func (t *Task) commit(offsets map[string]int64) error {
	for topic := range offsets {
		if _, ok := t.byTopic[topic]; !ok {
			return fmt.Errorf("%w: no store of this task has changelog %q", ErrUnknownStore, topic)
		}
	}
	for _, s := range t.stores {
		if _, ok := offsets[s.topic]; len(s.dirty) > 0 && !ok {
			return fmt.Errorf("store %q has %d dirty keys but no changelog offset for %s", s.name, len(s.dirty), s.topic)
		}
	}
	if t.batch == nil && len(offsets) == 0 {
		return nil
	}
	b := t.batch
	if b == nil {
		b = t.db.pdb.NewBatch()
	}
	t.batch = nil
	for _, s := range t.stores {
		if off, ok := offsets[s.topic]; ok {
			if err := b.Set(checkpointKey(s.name, t.partition), encodeOffset(off+1), nil); err != nil {
				_ = b.Close()
				return err
			}
		}
		clear(s.dirty)
	}
	err := b.Commit(pebble.NoSync)
	return errors.Join(err, b.Close())
}

// Abort discards the open transaction's writes. Call it when the Kafka
// transaction aborted. When its outcome is unknown, call Abort and then
// Restore: if the transaction did commit, its changelog records are replayed.
func (t *Task) Abort() {
	if t.batch != nil {
		_ = t.batch.Close()
		t.batch = nil
	}
	for _, s := range t.stores {
		clear(s.dirty)
	}
}

// Checkpoint returns the next changelog offset to restore store from (ok is
// false when the store has none yet).
func (t *Task) Checkpoint(store string) (int64, bool, error) {
	if _, ok := t.byName[store]; !ok {
		return 0, false, fmt.Errorf("%w: %q", ErrUnknownStore, store)
	}
	return t.db.Checkpoint(store, t.partition)
}

// Close releases the task on revocation: the open transaction, if any, is
// discarded (the engine commits or aborts it first), the WAL is synced so
// the committed state survives a restart, and the task's in-memory
// structures are dropped. The data stays on disk for a fast restart.
func (t *Task) Close() error {
	if t.closed {
		return nil
	}
	t.Abort()
	t.closed = true
	t.db.mu.Lock()
	delete(t.db.tasks, t.partition)
	closed := t.db.closed
	t.db.mu.Unlock()
	if closed {
		return nil
	}
	if err := t.db.pdb.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("state: sync on close of partition %d: %w", t.partition, err)
	}
	return nil
}

func (t *Task) writeBatch() *pebble.Batch {
	if t.batch == nil {
		t.batch = t.db.pdb.NewIndexedBatch()
	}
	return t.batch
}

// Get implements Store: the value as the open transaction sees it.
func (s *taskStore) Get(key []byte) ([]byte, bool, error) {
	if s.t.closed {
		return nil, false, ErrClosed
	}
	k := append(bytes.Clone(s.prefix), key...)
	var (
		v      []byte
		closer interface{ Close() error }
		err    error
	)
	if s.t.batch != nil {
		v, closer, err = s.t.batch.Get(k)
	} else {
		v, closer, err = s.t.db.pdb.Get(k)
	}
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("state: get from store %q: %w", s.name, err)
	}
	out := bytes.Clone(v)
	if out == nil {
		out = []byte{}
	}
	return out, true, closer.Close()
}

// Put implements Store.
func (s *taskStore) Put(key, value []byte) error {
	if s.t.closed {
		return ErrClosed
	}
	if err := s.t.writeBatch().Set(append(bytes.Clone(s.prefix), key...), value, nil); err != nil {
		return fmt.Errorf("state: put to store %q: %w", s.name, err)
	}
	s.dirty[string(key)] = struct{}{}
	return nil
}

// Delete implements Store.
func (s *taskStore) Delete(key []byte) error {
	if s.t.closed {
		return ErrClosed
	}
	if err := s.t.writeBatch().Delete(append(bytes.Clone(s.prefix), key...), nil); err != nil {
		return fmt.Errorf("state: delete from store %q: %w", s.name, err)
	}
	s.dirty[string(key)] = struct{}{}
	return nil
}

// Scan implements Store: keys with prefix in key order, as the open
// transaction sees them. key and value are valid only during fn.
func (s *taskStore) Scan(prefix []byte, fn func(key, value []byte) bool) error {
	if s.t.closed {
		return ErrClosed
	}
	var r iterMaker = s.t.db.pdb
	if s.t.batch != nil {
		r = s.t.batch
	}
	if err := scan(r, s.prefix, prefix, fn); err != nil {
		return fmt.Errorf("state: scan store %q: %w", s.name, err)
	}
	return nil
}
