package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// producer produces records and remembers the first failure, so that a
// transaction (or an offset commit) is never completed over a lost record.
type producer struct {
	e       *Engine
	produce func(context.Context, *kgo.Record, func(*kgo.Record, error))
	onDone  func(*kgo.Record, error) // p.done, made once: a method value allocates
	// track names the changelog topics whose produced offsets are kept for
	// the stores' checkpoints.
	track map[string]bool
	// produced counts acknowledged records per topic.
	produced counters

	mu      sync.Mutex
	err     error
	offsets map[string]map[int32]int64 // changelog topic -> partition -> last offset
}

func newProducer(e *Engine, produce func(context.Context, *kgo.Record, func(*kgo.Record, error))) *producer {
	p := &producer{e: e, produce: produce, track: changelogTopics(e.topo), offsets: map[string]map[int32]int64{}}
	p.produced.vec = e.metrics.RecordsProduced
	p.onDone = p.done
	return p
}

// takeOffsets returns the changelog offsets produced since the last call.
func (p *producer) takeOffsets() map[string]map[int32]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	o := p.offsets
	p.offsets = map[string]map[int32]int64{}
	return o
}

func (p *producer) send(r *kgo.Record) {
	// Records are produced with a context that outlives shutdown: the open
	// transaction (or commit) is finished with them, never cut short.
	p.produce(context.Background(), r, p.onDone)
}

// done handles a produce result.
func (p *producer) done(r *kgo.Record, err error) {
	if err != nil {
		p.mu.Lock()
		if p.err == nil {
			p.err = fmt.Errorf("produce to %s: %w", r.Topic, err)
		}
		p.mu.Unlock()
		return
	}
	if p.track[r.Topic] {
		p.mu.Lock()
		if p.offsets[r.Topic] == nil {
			p.offsets[r.Topic] = map[int32]int64{}
		}
		if o, ok := p.offsets[r.Topic][r.Partition]; !ok || r.Offset > o {
			p.offsets[r.Topic][r.Partition] = r.Offset
		}
		p.mu.Unlock()
	}
	p.produced.get(r.Topic).Inc()
	p.e.produced.Add(1)
}

func (p *producer) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// runExactlyOnce is the transactional loop: each commit interval's outputs and
// consumed offsets are committed in one Kafka transaction. A rebalance while a
// transaction is open aborts it and the session rewinds to the committed
// offsets, so the records are processed again and nothing partial is ever
// visible to read_committed consumers.
//
// A session that fails in a way a new one can recover from (see
// sessionRecoverable: the producer was fenced, or the transaction
// coordinator kept failing) ends: its open transaction counts as aborted,
// every task is closed (its next owner, this instance or another, restores
// it from the changelog), and a new session joins the group again, after a
// growing pause. Any other error ends Run.
func (e *Engine) runExactlyOnce(ctx context.Context, opts []kgo.Opt, ts *tasks) error {
	backoff := time.Duration(0)
	for {
		progressed, err := e.runTransactSession(ctx, opts, ts)
		if err == nil || ctx.Err() != nil || !sessionRecoverable(err) {
			return err
		}
		ts.closeAll()
		if progressed {
			backoff = 0
		}
		backoff = min(max(2*backoff, 250*time.Millisecond), 10*time.Second)
		e.metrics.SessionRestarts.Inc()
		e.log.Warn("transactional session failed; its transaction is aborted, its tasks closed, and a new session joins the group",
			"err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
}

// sessionRecoverable reports whether a new transactional session can go on
// where err ended one: the producer was fenced (a zombie: the group and the
// transaction coordinator moved on while this instance was stalled), its
// producer id is unknown to the coordinator (expired), a retriable error
// franz-go's own retries did not get past, or the brokers could not be
// reached.
func sessionRecoverable(err error) bool {
	switch {
	case errors.Is(err, kerr.ProducerFenced),
		errors.Is(err, kerr.InvalidProducerEpoch),
		errors.Is(err, kerr.InvalidProducerIDMapping),
		errors.Is(err, kerr.InvalidTxnState),
		errors.Is(err, kerr.TransactionAbortable),
		errors.Is(err, kerr.ConcurrentTransactions),
		errors.Is(err, kerr.CoordinatorNotAvailable),
		errors.Is(err, kerr.CoordinatorLoadInProgress),
		errors.Is(err, kerr.NotCoordinator),
		errors.Is(err, kerr.RequestTimedOut),
		errors.Is(err, errRestoreInTransaction),
		kerr.IsRetriable(err):
		return true
	}
	// The brokers went away with a transaction open (a dial or read
	// failure): the transaction times out on the broker; a new session
	// waits for the brokers to come back.
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

// runTransactSession runs one transactional session until ctx ends (nil) or
// an error; progressed says whether it committed a transaction.
func (e *Engine) runTransactSession(ctx context.Context, opts []kgo.Opt, ts *tasks) (progressed bool, _ error) {
	opts = append(slices.Clone(opts),
		kgo.WithHooks(e.metrics.KafkaHooks()),
		kgo.TransactionalID(TransactionalID(e.cfg)),
		kgo.TransactionTimeout(e.cfg.Processing.TransactionTimeout),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			e.metrics.Rebalances.Inc()
			ts.onRevoked(m)
		}),
	)
	opts = append(opts, e.extra...)
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return false, fmt.Errorf("run: kafka client: %w", err)
	}
	defer ts.detach()  // after Close (deferred calls run last first)
	defer sess.Close() // a static member does not leave the group here: Run leaves it after a clean stop
	ts.attach(sess.Client())
	e.ready.Store(false)
	// Initialise the producer id before any task restores: it fences an
	// earlier incarnation with this transactional id and aborts its open
	// transaction at once, which a restore would otherwise wait for (see
	// state.RestoreOptions.SettleTimeout).
	if _, _, err := sess.Client().ProducerID(ctx); err != nil {
		if ctx.Err() != nil {
			return false, nil
		}
		return false, fmt.Errorf("init producer id: %w", err)
	}
	purge := newPurger(e, sess.Client())
	defer purge.wait()

	prod := newProducer(e, sess.Produce)
	pl := newPipeline(e, ts, prod.send)
	defer func() { _ = pl.drain() }()
	interval := e.cfg.Processing.CommitInterval
	var (
		inTxn   bool
		began   time.Time
		sampler latencySampler
	)
	// abort ends the open transaction after a processing failure.
	abort := func(perr error) error {
		_, aerr := sess.End(context.Background(), kgo.TryAbort)
		inTxn, ts.inTxn = false, false
		ts.aborted()
		e.metrics.Transactions.WithLabelValues("abort").Inc()
		return errors.Join(perr, aerr)
	}
	// end ends the open transaction: the stores' changelog records go into
	// it first; after a commit the stores apply their writes with the
	// produced changelog offsets, after an abort they drop them.
	end := func() error {
		try := kgo.TryCommit
		if err := pl.drainForCommit(); err != nil {
			return abort(err)
		}
		// Every record's produce result is in before the check: a
		// record the broker refused with an error that keeps the
		// producer id (MESSAGE_TOO_LARGE, INVALID_RECORD, ...) does not
		// make franz-go abort, so End would commit over it.
		if err := sess.Client().Flush(context.Background()); err != nil {
			return abort(fmt.Errorf("flush: %w", err))
		}
		perr := prod.failed()
		if perr != nil {
			try = kgo.TryAbort
		}
		start := time.Now()
		committed, err := sess.End(context.Background(), try)
		e.metrics.CommitDuration.Observe(time.Since(start).Seconds())
		inTxn, ts.inTxn = false, false
		offsets := prod.takeOffsets()
		if err != nil || perr != nil || !committed {
			ts.aborted()
		}
		switch {
		case err != nil:
			e.metrics.Transactions.WithLabelValues("abort").Inc()
			e.addStats(func(s *Stats) { s.Aborted++ })
			return fmt.Errorf("end transaction: %w", err)
		case perr != nil:
			e.metrics.Transactions.WithLabelValues("abort").Inc()
			e.addStats(func(s *Stats) { s.Aborted++ })
			return fmt.Errorf("transaction aborted: %w", perr)
		case committed:
			if err := ts.committed(offsets); err != nil {
				return fmt.Errorf("apply committed state: %w", err)
			}
			e.metrics.Transactions.WithLabelValues("commit").Inc()
			e.addStats(func(s *Stats) { s.Committed++ })
			progressed = true
			sampler.observe(e.metrics, e.now())
			purge.afterCommit(sess.Client().CommittedOffsets)
		default:
			e.metrics.Transactions.WithLabelValues("abort").Inc()
			e.addStats(func(s *Stats) { s.Aborted++ })
			sampler.reset()
			e.log.Info("transaction aborted after a rebalance; its records will be processed again")
		}
		return nil
	}

	for ctx.Err() == nil {
		if !inTxn {
			if err := e.roomOnDisk(ctx); err != nil {
				break // stopping
			}
			e.applyReload()
			if err := ts.sync(ctx); err != nil {
				if ctx.Err() != nil {
					break // stopping: a restore cut short is redone by the next owner
				}
				return progressed, err
			}
			// The tasks assigned so far are restored: ready now, not
			// after the next poll (up to a commit interval later).
			e.markReady(sess.Client())
		}
		var openSince time.Time
		if inTxn {
			openSince = began
		}
		fetches, err := e.poll(ctx, pl, sess.PollRecords, openSince)
		if err != nil {
			return progressed, err
		}
		e.markReady(sess.Client())
		if !fetches.Empty() && fetches.NumRecords() > 0 {
			// A transaction begins with records and never ends empty:
			// franz-go's End of one that polled and produced nothing
			// blocks for 500 ms (with no TxnOffsetCommit it cannot tell
			// that the broker has KIP-447), which would hold up the
			// first records after every pause.
			if !inTxn {
				if err := sess.Begin(); err != nil {
					return progressed, fmt.Errorf("begin transaction: %w", err)
				}
				inTxn, ts.inTxn, began = true, true, time.Now()
			}
			sampler.add(fetches)
			if perr := pl.dispatch(ctx, fetches); perr != nil {
				_ = pl.drain() // its error is perr
				return progressed, abort(perr)
			}
		}
		if inTxn && time.Since(began) >= interval {
			if err := end(); err != nil {
				return progressed, err
			}
		}
	}
	e.ready.Store(false)
	if inTxn {
		if err := end(); err != nil {
			return progressed, fmt.Errorf("shutdown: %w", err)
		}
	}
	e.log.Info("stopped", "stats", e.Stats())
	return progressed, nil
}
