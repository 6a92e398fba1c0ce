package state

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/processors"
)

// Task is the state of one task (input partition): its stores, and the
// writes of its open transaction.
//
// The engine drives it around each Kafka transaction:
//
//  1. steps read and write through Store; writes go to a write-back cache
//     (the last value of each key written in the transaction, like Kafka
//     Streams' record cache) that reads and scans see;
//  2. before ending the transaction, the engine produces Changelog() in it:
//     one record per dirty key with its last value (updates to a key within a
//     transaction are coalesced);
//  3. after the transaction commits, Commit(offsets) writes the dirty keys and
//     the changelog checkpoints in one Pebble batch, applied in the
//     background while the next transaction runs; if it aborts, or its
//     outcome is unknown, Abort() discards the writes, and after an unknown
//     outcome the engine calls Restore to catch up from the changelog before
//     processing again.
//
// So local state is never ahead of what Kafka committed. While a batch is
// applied, its keys stay in the caches, so reads see the committed values
// without waiting for Pebble; what reads Pebble itself (Scan, Checkpoint,
// Restore, the next Commit, Close) waits for it first. Committed values
// the task read or wrote are also kept in a bounded read cache (see
// Options.ReadCacheSize), so that a hot key costs no Pebble look-up. A Task
// is not safe for concurrent use: one goroutine (the task's loop) owns it.
// The query API reads committed state through DB.Get and DB.Scan instead.
type Task struct {
	db        *DB
	partition int32
	stores    []*taskStore
	byName    map[string]*taskStore
	byTopic   map[string]*taskStore
	closed    bool
	// batch is reused by every Commit, so that its buffer is not grown
	// anew each time.
	batch *pebble.Batch
	// applying is closed once the last Commit's batch is in Pebble (nil
	// when none is in flight); applyErr is then its error.
	applying chan struct{}
	applyErr error
	fillKey  []byte // the applying goroutine's scratch buffer for Pebble keys
}

// commitBatchRetain is the largest commit buffer a task keeps for the next
// Commit; a larger one is left to the garbage collector.
const commitBatchRetain = 4 << 20

type taskStore struct {
	t      *Task
	name   string
	topic  string
	prefix []byte
	// slots hold, per key, the open transaction's value (the write-back
	// cache) and the committed value (the read cache); one look-up serves
	// a read either way.
	slots map[string]*slot
	// dirty lists the slots of the keys written in the open transaction,
	// once each.
	dirty []*slot
	// inFlight lists the slots of the keys in the batch being applied.
	inFlight []*slot
	// scanBatch is an indexed batch holding the dirty writes, built by the
	// first Scan of a transaction that has some (nil until then): Pebble
	// merges it with the committed state. pending lists the slots written
	// since it was last brought up to date.
	scanBatch *pebble.Batch
	pending   []*slot
	// cacheBytes is the estimated size of the committed values held, kept
	// under the store's share of Options.ReadCacheSize.
	cacheBytes int64
	// cached says whether slots hold every key the store has (see
	// allCached): then a key missing from slots is missing from Pebble
	// too, and a read of it costs no Pebble look-up.
	cached cachedKeys
	key    []byte // scratch buffer for Pebble keys
}

// cachedKeys is what a store knows of its read cache holding every key.
type cachedKeys uint8

const (
	cachedUnknown cachedKeys = iota // not looked at since the caches were dropped
	cachedAll
	cachedSome
)

// slot is one key's entry in a store's caches.
type slot struct {
	key       string // the user key (the slot's key in slots)
	committed []byte // the committed value; nil when not cached
	txn       []byte // the open transaction's value when dirty; nil: deleted
	dirty     bool
	// inFlight: the key is in the batch being applied; committed is its
	// value, nil for a delete (the slot is kept, and not evicted, until
	// Pebble has it).
	inFlight bool
}

// cacheOverhead is the estimated memory of a read cache entry besides its
// key and value bytes: the slot (80 bytes allocated), its map entry (a
// string header and a pointer, at the map's load factor) and the rounding
// of the key's and value's allocations; measured with heap profiles.
const cacheOverhead = 128

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
		s := &taskStore{t: t, name: name, topic: ChangelogTopic(db.opts.AppID, name), prefix: rangePrefix(name, partition),
			slots: make(map[string]*slot)}
		t.stores = append(t.stores, s)
		t.byName[name] = s
		t.byTopic[s.topic] = s
	}
	db.tasks[partition] = t
	db.openStores.Add(int64(len(t.stores)))
	return t, nil
}

// Partition is the task's input partition.
func (t *Task) Partition() int32 { return t.partition }

// Store returns the named store of the task, or nil if the task has no such
// store.
func (t *Task) Store(name string) processors.Store {
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
// key's current value (nil for a deleted key), in the order the keys were
// first written (records of distinct keys need no other order).
// Calling it does not end the transaction; it can be called again and
// returns the same records if nothing was written in between. The values
// are shared with the task: the caller must not change them.
//
// The records are ready to produce in the task's open transaction, one
// allocation that the client may hold until they are produced. Partition is
// always the task's partition: the engine must produce them there (for
// example with kgo.ManualPartitioner, or a partitioner that honours a set
// partition), not let a key partitioner pick one, because store keys
// (window keys, for instance) need not hash to the task's partition.
func (t *Task) Changelog() ([]kgo.Record, error) {
	if t.closed {
		return nil, ErrClosed
	}
	n := 0
	for _, s := range t.stores {
		n += len(s.dirty)
	}
	if n == 0 {
		return nil, nil
	}
	size := 0
	for _, s := range t.stores {
		for _, sl := range s.dirty {
			size += len(sl.key)
		}
	}
	// The keys share one allocation.
	keys := make([]byte, 0, size)
	out := make([]kgo.Record, 0, n)
	for _, s := range t.stores {
		for _, sl := range s.dirty {
			keys = append(keys, sl.key...)
			key := keys[len(keys)-len(sl.key) : len(keys) : len(keys)]
			out = append(out, kgo.Record{Topic: s.topic, Partition: t.partition, Key: key, Value: sl.txn})
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
// The batch is applied in the background: Commit returns once it is built,
// and the next transaction's writes and reads go on meanwhile. A failure to
// apply it is returned by the next Commit (or Scan, Checkpoint, Close); its
// checkpoints did not land either, so a restore replays its changelog.
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
		// The batch's fate is unknown to the read caches: drop them (the
		// engine restores before processing again).
		for _, s := range t.stores {
			s.dropCache()
		}
		return fmt.Errorf("state: commit partition %d: %w", t.partition, err)
	}
	return nil
}

func (t *Task) commit(offsets map[string]int64) error {
	if err := t.settle(); err != nil {
		return fmt.Errorf("the previous commit: %w", err)
	}
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
	if !t.Dirty() && len(offsets) == 0 {
		return nil
	}
	if t.batch == nil {
		t.batch = t.db.pdb.NewBatch(pebble.WithMaxRetainedSizeBytes(commitBatchRetain))
	}
	b := t.batch
	// Committed: the dirty values are now the committed ones, in flight
	// until the batch is in Pebble.
	for _, s := range t.stores {
		s.allCached() // looked at before this batch adds keys to Pebble
		for _, sl := range s.dirty {
			s.cacheBytes -= entrySize(sl.key, sl.committed)
			sl.committed, sl.txn, sl.dirty, sl.inFlight = sl.txn, nil, false, true
			s.cacheBytes += entrySize(sl.key, sl.committed)
		}
		s.inFlight, s.dirty = s.dirty, s.inFlight[:0]
		s.closeScanBatch()
	}
	// The batch is filled and applied by a goroutine of its own. It reads
	// the in-flight slots' keys and committed values, which nothing
	// changes until settle has waited for it.
	done := make(chan struct{})
	t.applying = done
	go func() {
		defer close(done)
		if testHookApply != nil {
			testHookApply()
		}
		err := t.fill(b, offsets)
		if err == nil {
			err = b.Commit(pebble.NoSync)
		}
		t.applyErr = err
		b.Reset()
	}()
	return nil
}

// fill writes the in-flight keys, in key order, and the new checkpoints to
// b.
func (t *Task) fill(b *pebble.Batch, offsets map[string]int64) error {
	for _, s := range t.stores {
		// Pebble inserts a batch's keys into its memtable in batch order:
		// in key order each insert starts next to the last one.
		slices.SortFunc(s.inFlight, func(a, b *slot) int { return strings.Compare(a.key, b.key) })
		for _, sl := range s.inFlight {
			t.fillKey = append(append(t.fillKey[:0], s.prefix...), sl.key...)
			var err error
			if v := sl.committed; v == nil {
				err = b.Delete(t.fillKey, nil)
			} else {
				err = b.Set(t.fillKey, v, nil)
			}
			if err != nil {
				return err
			}
		}
		if off, ok := offsets[s.topic]; ok {
			if err := b.Set(checkpointKey(s.name, t.partition), encodeOffset(off+1), nil); err != nil {
				return err
			}
		}
	}
	if len(offsets) > 0 {
		return t.markInSync(b)
	}
	return nil
}

// testHookApply, set by tests, runs before a commit's batch is applied.
var testHookApply func()

// settle waits until the last Commit's batch is in Pebble, then finishes
// that commit: deleted keys leave the caches, which are trimmed to their
// limit. It returns the batch's error.
func (t *Task) settle() error {
	if t.applying == nil {
		return nil
	}
	<-t.applying
	t.applying = nil
	err := t.applyErr
	t.applyErr = nil
	for _, s := range t.stores {
		for _, sl := range s.inFlight {
			sl.inFlight = false
			if sl.committed == nil && !sl.dirty {
				delete(s.slots, sl.key)
			}
		}
		clear(s.inFlight)
		s.inFlight = s.inFlight[:0]
		s.evict()
	}
	return err
}

// Abort discards the open transaction's writes. Call it when the Kafka
// transaction aborted. When its outcome is unknown, call Abort and then
// Restore: if the transaction did commit, its changelog records are replayed.
func (t *Task) Abort() {
	for _, s := range t.stores {
		s.endTxn()
	}
}

// Checkpoint returns the next changelog offset to restore store from (ok is
// false when the store has none yet).
func (t *Task) Checkpoint(store string) (int64, bool, error) {
	if _, ok := t.byName[store]; !ok {
		return 0, false, fmt.Errorf("%w: %q", ErrUnknownStore, store)
	}
	if err := t.settle(); err != nil {
		return 0, false, fmt.Errorf("state: last commit of partition %d: %w", t.partition, err)
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
	serr := t.settle()
	for _, s := range t.stores {
		s.dropCache()
	}
	if t.batch != nil {
		_ = t.batch.Close()
		t.batch = nil
	}
	t.closed = true
	t.db.mu.Lock()
	delete(t.db.tasks, t.partition)
	t.db.openStores.Add(-int64(len(t.stores)))
	closed := t.db.closed
	t.db.mu.Unlock()
	if serr != nil {
		serr = fmt.Errorf("state: last commit of partition %d: %w", t.partition, serr)
	}
	if closed {
		return serr
	}
	// The copy was in step up to now (only its owner writes the
	// changelogs); the sync below makes the mark durable with the data.
	if err := t.syncedNow(); err != nil {
		return errors.Join(serr, err)
	}
	if err := t.db.pdb.LogData(nil, pebble.Sync); err != nil {
		return errors.Join(serr, fmt.Errorf("state: sync on close of partition %d: %w", t.partition, err))
	}
	return serr
}

// endTxn drops the open transaction's writes and its scan batch.
func (s *taskStore) endTxn() {
	for _, sl := range s.dirty {
		sl.txn, sl.dirty = nil, false
		if sl.committed == nil && !sl.inFlight {
			delete(s.slots, sl.key)
		}
	}
	clear(s.dirty)
	s.dirty = s.dirty[:0]
	s.closeScanBatch()
}

func (s *taskStore) closeScanBatch() {
	if s.scanBatch != nil {
		_ = s.scanBatch.Close()
		s.scanBatch = nil
	}
	clear(s.pending)
	s.pending = s.pending[:0]
}

// entrySize is the estimated memory of a cached committed value.
func entrySize(k string, v []byte) int64 {
	if v == nil {
		return 0
	}
	return int64(len(k) + cap(v) + cacheOverhead)
}

// cacheLimit is the store's share of the read cache.
func (s *taskStore) cacheLimit() int64 {
	return s.t.db.opts.ReadCacheSize / max(s.t.db.openStores.Load(), 1)
}

// evict drops committed values, from a random place (map iteration order),
// while the store is over its share of the read cache: down to a quarter
// below it, so that eviction runs rarely.
func (s *taskStore) evict() {
	limit := s.cacheLimit()
	if s.cacheBytes <= limit {
		return
	}
	for k, sl := range s.slots {
		if s.cacheBytes <= limit-limit/4 {
			break
		}
		if sl.committed == nil || sl.inFlight {
			continue
		}
		s.cacheBytes -= entrySize(k, sl.committed)
		sl.committed = nil
		s.cached = cachedSome
		if !sl.dirty {
			delete(s.slots, k)
		}
	}
}

// dropCache forgets the committed values (the committed state changed
// under them: a restore, or a commit whose outcome is unknown). There must
// be no open transaction.
func (s *taskStore) dropCache() {
	s.endTxn()
	s.slots = make(map[string]*slot)
	s.cacheBytes = 0
	s.cached = cachedUnknown
}

// pebbleKey returns the Pebble key of a user key, in the store's scratch
// buffer (valid until the next call).
func (s *taskStore) pebbleKey(key string) []byte {
	s.key = append(append(s.key[:0], s.prefix...), key...)
	return s.key
}

// Get implements Store: the value as the open transaction sees it.
func (s *taskStore) Get(key []byte) ([]byte, bool, error) {
	if s.t.closed {
		return nil, false, ErrClosed
	}
	sl := s.slots[string(key)]
	if sl != nil {
		switch {
		case sl.dirty && sl.txn == nil:
			return nil, false, nil
		case sl.dirty:
			return sl.txn, true, nil
		case sl.committed != nil:
			return sl.committed, true, nil
		case sl.inFlight:
			return nil, false, nil // deleted by the batch being applied
		}
	} else if s.allCached() {
		return nil, false, nil
	}
	v, closer, err := s.t.db.pdb.Get(s.pebbleKey(string(key)))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("state: get from store %q: %w", s.name, err)
	}
	out := clone(v)
	if err := closer.Close(); err != nil {
		return nil, false, fmt.Errorf("state: get from store %q: %w", s.name, err)
	}
	k := string(key)
	if size := entrySize(k, out); size <= s.cacheLimit()/8 {
		if sl == nil {
			sl = &slot{key: k}
			s.slots[k] = sl
		}
		sl.committed = out
		s.cacheBytes += size
		s.evict()
	}
	return out, true, nil
}

// allCached reports whether slots hold every key of the store. After the
// caches are dropped it looks at Pebble once, before the next commit adds
// keys to it (at that commit, or at an earlier read that misses): when
// Pebble has no key of the store then, every key the store gets from then
// on passes through slots, and stays there until an eviction.
func (s *taskStore) allCached() bool {
	if s.cached == cachedUnknown {
		// Anything but a clean look at an empty range leaves reads to
		// Pebble, which reports its own errors.
		s.cached = cachedSome
		if it, err := s.t.db.pdb.NewIter(&pebble.IterOptions{LowerBound: s.prefix, UpperBound: prefixEnd(s.prefix)}); err == nil {
			empty := !it.First() && it.Error() == nil
			if it.Close() == nil && empty {
				s.cached = cachedAll
			}
		}
	}
	return s.cached == cachedAll
}

// clone copies v into a new slice that is never nil.
func clone(v []byte) []byte { return append(make([]byte, 0, len(v)), v...) }

// Put implements Store.
func (s *taskStore) Put(key, value []byte) error {
	return s.write(key, clone(value))
}

// PutOwned implements processors.OwnedPutter: value is kept as it is.
func (s *taskStore) PutOwned(key, value []byte) error {
	if value == nil {
		value = []byte{} // nil is a delete
	}
	return s.write(key, value)
}

// Delete implements Store.
func (s *taskStore) Delete(key []byte) error {
	return s.write(key, nil)
}

// write records a write of the open transaction (v nil: a delete).
func (s *taskStore) write(key, v []byte) error {
	if s.t.closed {
		return ErrClosed
	}
	sl := s.slots[string(key)]
	if sl == nil {
		sl = &slot{key: string(key)}
		s.slots[sl.key] = sl
	}
	sl.txn = v
	if !sl.dirty {
		sl.dirty = true
		s.dirty = append(s.dirty, sl)
	}
	if s.scanBatch != nil {
		s.pending = append(s.pending, sl)
	}
	return nil
}

// Scan implements Store: keys with prefix in key order, as the open
// transaction sees them. key and value are valid only during fn.
func (s *taskStore) Scan(prefix []byte, fn func(key, value []byte) bool) error {
	if s.t.closed {
		return ErrClosed
	}
	if err := s.t.settle(); err != nil {
		return fmt.Errorf("state: scan store %q: the last commit: %w", s.name, err)
	}
	var r iterMaker = s.t.db.pdb
	if len(s.dirty) > 0 {
		b, err := s.syncScanBatch()
		if err != nil {
			return fmt.Errorf("state: scan store %q: %w", s.name, err)
		}
		r = b
	}
	if err := scan(r, s.prefix, prefix, fn); err != nil {
		return fmt.Errorf("state: scan store %q: %w", s.name, err)
	}
	return nil
}

// syncScanBatch returns the store's indexed batch holding the dirty writes,
// building it, or bringing it up to date with the writes since the last
// scan.
func (s *taskStore) syncScanBatch() (*pebble.Batch, error) {
	apply := func(b *pebble.Batch, sl *slot) error {
		key := s.pebbleKey(sl.key)
		if sl.txn == nil {
			return b.Delete(key, nil)
		}
		return b.Set(key, sl.txn, nil)
	}
	if s.scanBatch == nil {
		b := s.t.db.pdb.NewIndexedBatch()
		for _, sl := range s.dirty {
			if err := apply(b, sl); err != nil {
				_ = b.Close()
				return nil, err
			}
		}
		s.scanBatch = b
		return b, nil
	}
	for _, sl := range s.pending {
		if err := apply(s.scanBatch, sl); err != nil {
			return nil, err
		}
	}
	clear(s.pending)
	s.pending = s.pending[:0]
	return s.scanBatch, nil
}
