package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/state"
)

// tasks are this instance's tasks — partition numbers; partition p of every
// input topic belongs to task p (see internal/group) — with their stream time and,
// when the topology has stores, their state.
//
// The group callbacks only record assignments and revocations; the loop
// applies them between transactions (sync), so a task is only ever touched
// by the loop's goroutine.
type tasks struct {
	e       *Engine
	db      *state.DB // nil when the topology has no stores
	stores  []string
	restore state.RestoreOptions

	byPart map[int32]*partTask // the loop's goroutine only
	// inTxn is set by the exactly-once loop while a transaction is open:
	// no task is restored then (see get).
	inTxn bool

	// dbMu keeps queries (which read db from HTTP goroutines) out while
	// the database closes.
	dbMu     sync.RWMutex
	dbClosed bool

	mu       sync.Mutex
	assigned map[int32]bool // to open at the next sync (after revoked ones close)
	revoked  map[int32]bool // to close at the next sync
	owned    map[int32]bool // tasks this instance owns now (for queries)
	// held are the topic partitions of this member's assignment at the
	// last group sync (onSynced), and member and gen its membership then.
	held   map[string]map[int32]bool
	member string
	gen    int32
	// paused are the topic partitions of assigned tasks that sync has not
	// opened yet: their fetching is paused until then, so that no record
	// of a task arrives before the task is restored, and a restore never
	// runs inside a transaction.
	paused map[int32]map[string]bool
	// endPoll ends the loop's poll under way (nil when none), so that the
	// loop opens newly assigned tasks at once rather than when the poll
	// times out (sync runs between polls).
	endPoll context.CancelFunc
	cl      groupClient // the session's client (attach), nil between sessions
	// attached is signalled when a session attaches its client: the
	// client syncs with the group as soon as it is made, before that.
	attached *sync.Cond
}

// groupClient is what tasks need of the session's client (a *kgo.Client).
type groupClient interface {
	PauseFetchPartitions(map[string][]int32) map[string][]int32
	ResumeFetchPartitions(map[string][]int32)
	GroupMetadata() (member string, generation int32)
}

// partTask is one task.
type partTask struct {
	partition int32
	st        *state.Task // nil without stores
	// streamTime is the largest record timestamp processed; committedTime
	// is its value at the last commit, restored when a transaction aborts.
	streamTime, committedTime time.Time
}

func newTasks(e *Engine, db *state.DB, stores []string, restore state.RestoreOptions) *tasks {
	ts := &tasks{e: e, db: db, stores: stores, restore: restore,
		byPart: map[int32]*partTask{}, assigned: map[int32]bool{}, revoked: map[int32]bool{}, owned: map[int32]bool{},
		held: map[string]map[int32]bool{}, paused: map[int32]map[string]bool{}}
	ts.attached = sync.NewCond(&ts.mu)
	return ts
}

// openDB opens the state database under the state dir when the topology has
// stores.
func openDB(e *Engine) (*state.DB, error) {
	if len(e.topo.StoreNames()) == 0 {
		return nil, nil
	}
	db, err := state.Open(state.Options{Dir: filepath.Join(e.cfg.App.StateDir, "stores"), AppID: e.cfg.App.ID, Logger: e.log,
		CacheSize: stateCacheSize, MemTableSize: stateMemTableSize})
	if err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}
	return db, nil
}

// attach gives the tasks a new session's client, before it polls.
func (ts *tasks) attach(cl groupClient) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.cl = cl
	ts.member, ts.gen = "", 0
	ts.attached.Broadcast()
}

// detach forgets the session's client once it is closed.
func (ts *tasks) detach() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.cl = nil
}

// onSynced is called with this member's whole assignment each time it syncs
// with the group (see group.OnSync), before franz-go's callbacks, which are
// not a complete record: a transactional session skips revoke callbacks
// while an earlier revocation is pending (until its next End), and a lost
// session may report nothing. The assignment is: the tasks that left it
// close at the next sync, the ones that joined it are paused and open.
//
// A member that missed a generation (its session expired, it was fenced or
// stalled) may have had its tasks taken over and given back in between,
// written to by another instance: all its tasks close and open again,
// catching up from their checkpoints.
func (ts *tasks) onSynced(m map[string][]int32) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for ts.cl == nil {
		ts.attached.Wait()
	}
	member, gen := ts.cl.GroupMetadata()
	continuous := ts.member != "" && member == ts.member && gen == ts.gen+1
	ts.member, ts.gen = member, gen
	gone := map[string][]int32{}
	for topic, ps := range ts.held {
		for p := range ps {
			if !continuous || !slices.Contains(m[topic], p) {
				gone[topic] = append(gone[topic], p)
			}
		}
	}
	ts.revokeLocked(gone)
	added := map[string][]int32{}
	for topic, ps := range m {
		for _, p := range ps {
			if !ts.held[topic][p] {
				added[topic] = append(added[topic], p)
			}
		}
	}
	if len(added) == 0 {
		return
	}
	// franz-go fetches the offsets of what it assigns only after this.
	ts.cl.PauseFetchPartitions(added)
	for topic, ps := range added {
		if ts.held[topic] == nil {
			ts.held[topic] = map[int32]bool{}
		}
		for _, p := range ps {
			ts.held[topic][p] = true
			if ts.paused[p] == nil {
				ts.paused[p] = map[string]bool{}
			}
			ts.paused[p][topic] = true
			ts.assigned[p] = true // after a pending revocation: the task starts over
		}
	}
	if ts.endPoll != nil {
		ts.endPoll()
	}
}

// pollContext returns the context of a poll of the loop: ctx, ended early
// when tasks are assigned (see endPoll). Call done when the poll returns.
func (ts *tasks) pollContext(ctx context.Context) (pctx context.Context, done func()) {
	pctx, cancel := context.WithCancel(ctx)
	ts.mu.Lock()
	ts.endPoll = cancel
	ts.mu.Unlock()
	return pctx, func() {
		ts.mu.Lock()
		ts.endPoll = nil
		ts.mu.Unlock()
		cancel()
	}
}

// onRevoked is called from the revoke callback (when franz-go calls it).
func (ts *tasks) onRevoked(m map[string][]int32) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.revokeLocked(m)
}

// revokeLocked records the revocation of the held topic partitions in m.
func (ts *tasks) revokeLocked(m map[string][]int32) {
	for topic, ps := range m {
		for _, p := range ps {
			if !ts.held[topic][p] {
				continue
			}
			delete(ts.held[topic], p)
			delete(ts.paused[p], topic)
			ts.revoked[p] = true
			delete(ts.assigned, p)
			delete(ts.owned, p)
		}
	}
}

// resume resumes fetching the partitions of task p once sync opened it.
func (ts *tasks) resume(p int32) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.paused[p]) == 0 {
		return
	}
	m := map[string][]int32{}
	for topic := range ts.paused[p] {
		m[topic] = []int32{p}
	}
	delete(ts.paused, p)
	ts.cl.ResumeFetchPartitions(m)
}

// Owns reports whether this instance owns task p now.
func (ts *tasks) Owns(p int32) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.owned[p]
}

// sync applies revocations and assignments recorded by the callbacks: revoked
// tasks are closed (their state flushed and released), assigned ones opened
// and restored. It runs only when no transaction is open.
func (ts *tasks) sync(ctx context.Context) error {
	ts.mu.Lock()
	revoked := slices.Sorted(maps.Keys(ts.revoked))
	assigned := slices.Sorted(maps.Keys(ts.assigned))
	clear(ts.revoked)
	clear(ts.assigned)
	ts.mu.Unlock()
	for _, p := range revoked {
		if t := ts.byPart[p]; t != nil {
			if t.st != nil {
				if err := t.st.Close(); err != nil {
					ts.e.log.Warn("close task state", "partition", p, "err", err)
				}
			}
			delete(ts.byPart, p)
		}
	}
	return ts.openAll(ctx, assigned)
}

// openAll opens and restores the tasks ps that are not open yet, up to
// processing.workers at once (each restores its own changelog partitions,
// so on two or more cores their fetches and writes overlap), and resumes
// fetching their partitions. A task that failed to restore stays closed;
// the others are opened.
func (ts *tasks) openAll(ctx context.Context, ps []int32) error {
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		errs   []error
		opened = map[int32]*partTask{}
		slots  = make(chan struct{}, ts.e.workers())
	)
	for _, p := range ps {
		if ts.byPart[p] != nil {
			ts.resume(p)
			continue
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			t, err := ts.open(ctx, p)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			opened[p] = t
		})
	}
	wg.Wait()
	for _, p := range slices.Sorted(maps.Keys(opened)) {
		ts.register(opened[p])
		ts.resume(p)
	}
	return errors.Join(errs...)
}

// errRestoreInTransaction is a task's record arriving while a transaction
// is open before the task was opened: newly assigned partitions are paused
// until sync has restored their task, so this does not happen; if it did,
// the session ends (its transaction aborted) rather than restore inside a
// transaction, which could outlast the transaction timeout.
var errRestoreInTransaction = errors.New("a record of a task not yet restored arrived during a transaction")

// get returns task p, opening and restoring it first if needed; never while
// a transaction is open (errRestoreInTransaction).
func (ts *tasks) get(ctx context.Context, p int32) (*partTask, error) {
	if t := ts.byPart[p]; t != nil {
		return t, nil
	}
	if ts.inTxn {
		return nil, fmt.Errorf("task %d: %w", p, errRestoreInTransaction)
	}
	t, err := ts.open(ctx, p)
	if err != nil {
		return nil, err
	}
	ts.register(t)
	return t, nil
}

// open opens task p and restores its stores; several run at once (openAll).
func (ts *tasks) open(ctx context.Context, p int32) (*partTask, error) {
	t := &partTask{partition: p}
	if ts.db != nil {
		st, err := ts.db.OpenTask(p, ts.stores...)
		if err != nil {
			return nil, fmt.Errorf("open task %d: %w", p, err)
		}
		ts.e.ready.Store(false)
		start := time.Now()
		if err := st.Restore(ctx, ts.restore); err != nil {
			_ = st.Close()
			return nil, fmt.Errorf("restore task %d: %w", p, err)
		}
		ts.e.log.Info("task restored", "partition", p, "took", time.Since(start).Round(time.Millisecond))
		t.st = st
	}
	return t, nil
}

// register makes an opened task the loop's and answerable by queries.
func (ts *tasks) register(t *partTask) {
	ts.byPart[t.partition] = t
	ts.mu.Lock()
	ts.owned[t.partition] = true
	ts.mu.Unlock()
}

// changelogs produces into the open transaction the changelog records of
// every task with uncommitted state writes but those in done, several tasks
// at once (see eachDirty).
func (ts *tasks) changelogs(send func(*kgo.Record), done map[int32]bool) error {
	return ts.eachDirty(func(t *partTask) error {
		if done[t.partition] {
			return nil
		}
		return ts.changelog(t, send)
	})
}

// changelog produces a task's changelog records, in order, to the task's
// partitions of its stores' changelogs.
func (ts *tasks) changelog(t *partTask, send func(*kgo.Record)) error {
	recs, err := t.st.Changelog()
	if err != nil {
		return fmt.Errorf("changelog of task %d: %w", t.partition, err)
	}
	for i := range recs {
		send(&recs[i])
	}
	return nil
}

// committed applies the tasks' writes to the local stores with the changelog
// offsets the transaction produced (topic -> partition -> last offset).
func (ts *tasks) committed(offsets map[string]map[int32]int64) error {
	for _, t := range ts.byPart {
		t.committedTime = t.streamTime
	}
	return ts.eachDirty(func(t *partTask) error {
		mine := map[string]int64{}
		for topic, byPart := range offsets {
			if o, ok := byPart[t.partition]; ok {
				mine[topic] = o
			}
		}
		return t.st.Commit(mine)
	})
}

// eachDirty calls fn for every task with uncommitted state writes. The
// tasks' states are independent: up to processing.workers calls run at
// once (the workers are idle: the pipeline is drained).
func (ts *tasks) eachDirty(fn func(t *partTask) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		errs  []error
		slots = make(chan struct{}, ts.e.workers())
	)
	for _, t := range ts.byPart {
		if t.st == nil || !t.st.Dirty() {
			continue
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := fn(t); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// aborted discards the tasks' writes and stream time since the last commit.
func (ts *tasks) aborted() {
	for _, t := range ts.byPart {
		t.streamTime = t.committedTime
		if t.st != nil {
			t.st.Abort()
		}
	}
}

// closeAll drops every task's uncommitted state and closes it, as after a
// revocation of all: a task is opened again (and restored from its
// changelog) when the group next assigns it. The loop calls it between
// sessions.
func (ts *tasks) closeAll() {
	ts.aborted()
	ts.mu.Lock()
	for p := range ts.byPart {
		ts.revoked[p] = true
		delete(ts.owned, p)
	}
	clear(ts.assigned)
	clear(ts.held)
	clear(ts.paused) // the next session has a client of its own
	ts.mu.Unlock()
	_ = ts.sync(context.Background()) // closes only: nothing is assigned
}

// close closes every task and the database.
func (ts *tasks) close() {
	for p, t := range ts.byPart {
		if t.st != nil {
			_ = t.st.Close()
		}
		delete(ts.byPart, p)
	}
	if ts.db != nil {
		ts.dbMu.Lock()
		ts.dbClosed = true
		err := ts.db.Close()
		ts.dbMu.Unlock()
		if err != nil {
			ts.e.log.Warn("close state", "err", err)
		}
	}
}

// read runs fn with the database, unless it is closed or there is none.
func (ts *tasks) read(fn func(db *state.DB) error) error {
	ts.dbMu.RLock()
	defer ts.dbMu.RUnlock()
	if ts.db == nil || ts.dbClosed {
		return ErrNotRunning
	}
	return fn(ts.db)
}

// stateCacheSize is Pebble's block cache: with the stores' own read cache
// in front of it, 64 MiB keeps an instance within 256 MiB of memory.
const stateCacheSize = 64 << 20

// stateMemTableSize is Pebble's memtable size. Pebble keeps up to two
// (one filling while the other flushes), both in memory: 16 MiB each hold
// a few hundred thousand coalesced updates and keep that memory at 32 MiB.
const stateMemTableSize = 16 << 20
