package engine

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// pipeline runs polled records through the topology while the loop goes on
// polling. Partition p of every input topic is task p; each task with
// records in the open transaction (or commit interval) has a goroutine of
// its own that runs its batches in the order they were polled, and at most
// processing.workers tasks process at once. So no task waits for another's
// batch to finish, and fetching, polling and processing overlap.
//
// A task's stores, stream time and current record are touched only by its
// goroutine until drain returns: the loop drains the pipeline before it
// commits (a commit must never cover a polled record that has not been
// processed), before it applies a rebalance, and before it returns.
type pipeline struct {
	e       *Engine
	ts      *tasks
	produce func(*kgo.Record)
	slots   chan struct{} // a token per task processing now

	queues map[int32]chan []kgo.FetchTopicPartition // the loop's goroutine only
	wg     sync.WaitGroup
	// emitMu makes the tasks hand their batches' outputs to the client one
	// batch after another (see emitted).
	emitMu sync.Mutex

	failed atomic.Bool // a task failed: the others skip their batches
	// then, when set, runs on each task's goroutine once the drain has
	// closed its queue and its records are processed (see drainForCommit).
	then func(*partTask) error

	mu       sync.Mutex
	drained  sync.Cond // signalled as batches finish
	inflight int       // records dispatched and not yet processed
	err      error     // the first failure
}

// queueDepth bounds the batches waiting for one task; room bounds the
// records waiting in all of them.
const queueDepth = 8

func newPipeline(e *Engine, ts *tasks, produce func(*kgo.Record)) *pipeline {
	pl := &pipeline{e: e, ts: ts, produce: produce,
		slots: make(chan struct{}, e.workers()), queues: map[int32]chan []kgo.FetchTopicPartition{}}
	pl.drained.L = &pl.mu
	return pl
}

// room waits until fewer than max records are waiting to be processed. The
// loop calls it before each poll with twice processing.max_poll_records:
// enough that every task has records queued while the client fetches the
// next ones, few enough to bound the records held in memory.
func (pl *pipeline) room(max int) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for pl.inflight >= max && pl.err == nil {
		pl.drained.Wait()
	}
}

// dispatch hands the records of one poll to their tasks, opening (and
// restoring) a task first if it is new; it blocks while a task's queue is
// full. It returns a task's failure (on_error: fail, or a task that could
// not be restored); the caller then drains the pipeline and aborts.
func (pl *pipeline) dispatch(ctx context.Context, fetches kgo.Fetches) error {
	byTask := map[int32][]kgo.FetchTopicPartition{}
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) > 0 {
			byTask[p.Partition] = append(byTask[p.Partition], p)
		}
	})
	pl.mu.Lock()
	pl.inflight += fetches.NumRecords()
	pl.mu.Unlock()
	for p, parts := range byTask {
		q := pl.queues[p]
		if q == nil {
			// Tasks are opened (and restored) on the loop's goroutine.
			pt, err := pl.ts.get(ctx, p)
			if err != nil {
				return err
			}
			q = make(chan []kgo.FetchTopicPartition, queueDepth)
			pl.queues[p] = q
			pl.wg.Add(1)
			t := &task{e: pl.e, pt: pt}
			t.obs = &taskOutcomes{c: pl.e.obs, log: pl.e.log, current: func() *kgo.Record { return t.current }}
			go pl.work(t, q)
		}
		q <- parts
	}
	return pl.error()
}

// work runs a task's batches until its queue is closed; after a failure
// anywhere it only empties the queue.
func (pl *pipeline) work(t *task, q <-chan []kgo.FetchTopicPartition) {
	defer pl.wg.Done()
	for parts := range q {
		n := 0
		for _, p := range parts {
			n += len(p.Records)
		}
		var err error
		if !pl.failed.Load() {
			pl.slots <- struct{}{}
			t.batchLen = n
			err = t.run(parts)
			pl.emitted(t)
			<-pl.slots
		}
		pl.finished(n, err)
	}
	// The queue was closed by drain, which set then first.
	if pl.then != nil && !pl.failed.Load() {
		pl.slots <- struct{}{}
		err := pl.then(t.pt)
		<-pl.slots
		pl.finished(0, err)
	}
}

// emitted produces the outputs of a task's batch, in order. Each record
// produced takes the client's producer lock: two workers producing record
// by record keep moving that lock (and the partitions' buffers) between
// cores, which cost more CPU than the batch's wait to be produced.
func (pl *pipeline) emitted(t *task) {
	if len(t.pending) == 0 {
		return
	}
	recs := t.pending
	t.pending = nil // the client holds recs until they are produced
	pl.emitMu.Lock()
	for i := range recs {
		pl.produce(&recs[i])
	}
	pl.emitMu.Unlock()
}

// finished accounts for n processed records and a task's failure.
func (pl *pipeline) finished(n int, err error) {
	pl.mu.Lock()
	pl.inflight -= n
	if err != nil && pl.err == nil {
		pl.err = err
		pl.failed.Store(true)
	}
	pl.drained.Broadcast()
	pl.mu.Unlock()
}

func (pl *pipeline) error() error {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.err
}

// drain waits until every dispatched record has been processed and returns
// the first failure since the last drain; the pipeline is then empty and
// ready for the next transaction.
func (pl *pipeline) drain() error {
	for p, q := range pl.queues {
		close(q)
		delete(pl.queues, p)
	}
	pl.wg.Wait()
	pl.then = nil
	pl.mu.Lock()
	err := pl.err
	pl.err, pl.inflight = nil, 0 // records of a failed dispatch never reached a task
	pl.mu.Unlock()
	pl.failed.Store(false)
	return err
}

// drainForCommit drains the pipeline and produces the changelog records of
// every task with uncommitted state writes: a task's on its own goroutine as
// soon as its records are processed, while other tasks are still busy, and
// those of tasks with no records since an earlier drain afterwards.
func (pl *pipeline) drainForCommit() error {
	var (
		mu     sync.Mutex
		logged = map[int32]bool{}
	)
	pl.then = func(pt *partTask) error {
		if pt.st == nil || !pt.st.Dirty() {
			return nil
		}
		if err := pl.ts.changelog(pt, pl.produce); err != nil {
			return err
		}
		mu.Lock()
		logged[pt.partition] = true
		mu.Unlock()
		return nil
	}
	if err := pl.drain(); err != nil {
		return err
	}
	return pl.ts.changelogs(pl.produce, logged)
}

// run processes a batch of the task's records (one poll's), then punctuates
// the task.
func (t *task) run(parts []kgo.FetchTopicPartition) error {
	e := t.e
	var consumed int64
	defer func() {
		t.obs.flush()
		e.addStats(func(s *Stats) { s.Consumed += consumed })
		e.progress.setStreamTime(t.pt.partition, t.pt.streamTime)
	}()
	rules := e.rules.Load() // the loop swaps it only while the pipeline is drained
	for _, p := range parts {
		e.metrics.RecordsConsumed.WithLabelValues(p.Topic).Add(float64(len(p.Records)))
		for _, r := range p.Records {
			consumed++
			t.current = r
			if r.Timestamp.After(t.pt.streamTime) && !e.topo.AheadOfClock(r.Timestamp, e.now()) {
				t.pt.streamTime = r.Timestamp
			}
			if err := rules.Process(t, r, t.obs); err != nil {
				return err
			}
		}
	}
	return rules.Punctuate(t)
}
