package engine

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// runAtLeastOnce produces with the idempotent producer and commits consumed
// offsets only after every output of the records before them is acknowledged.
// A crash replays the records since the last commit: outputs may repeat,
// nothing is lost.
func (e *Engine) runAtLeastOnce(ctx context.Context, opts []kgo.Opt, ts *tasks) error {
	var cl *kgo.Client
	var prod *producer
	var pl *pipeline
	// failed stops the revoke callback (run again when Close leaves the
	// group) from committing the offset of a record that failed.
	var failed atomic.Bool
	// lost is set when the group moved on without this member (its
	// session expired): what it processed since its last commit is not
	// committed (the partitions' next owners replay it), and the state
	// written since is dropped.
	var lost atomic.Bool
	// commit flushes the producer, then commits what was polled. It is
	// called from the loop and from the revoke callback (while the loop is
	// blocked in a poll, so never concurrently with processing).
	commit := func(ctx context.Context) error {
		start := time.Now()
		if err := pl.drainForCommit(); err != nil {
			return err
		}
		if err := cl.Flush(ctx); err != nil {
			return fmt.Errorf("flush: %w", err)
		}
		if err := prod.failed(); err != nil {
			ts.aborted()
			e.metrics.Transactions.WithLabelValues("abort").Inc()
			return err // offsets stay where they are: the records are replayed
		}
		if err := ts.committed(prod.takeOffsets()); err != nil {
			return fmt.Errorf("apply committed state: %w", err)
		}
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			e.metrics.Transactions.WithLabelValues("abort").Inc()
			if groupMoved(err) {
				e.log.Warn("offset commit refused: the group moved on without this member; its records since the last commit are processed again", "err", err)
				return nil
			}
			return fmt.Errorf("commit offsets: %w", err)
		}
		e.metrics.CommitDuration.Observe(time.Since(start).Seconds())
		e.metrics.Transactions.WithLabelValues("commit").Inc()
		e.addStats(func(s *Stats) { s.Committed++ })
		return nil
	}
	opts = append(opts,
		kgo.WithHooks(e.metrics.KafkaHooks()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(func(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
			e.metrics.Rebalances.Inc()
			if !failed.Load() {
				if err := commit(ctx); err != nil {
					e.log.Warn("commit on revoke failed; records will be replayed", "err", err)
				}
			}
			ts.onRevoked(m)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			e.metrics.Rebalances.Inc()
			lost.Store(true)
			ts.onRevoked(m)
		}),
	)
	opts = append(opts, e.extra...)
	var err error
	cl, err = kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("run: kafka client: %w", err)
	}
	defer ts.detach() // after the client is closed
	defer cl.CloseAllowingRebalance()
	ts.attach(cl)
	purge := newPurger(e, cl)
	defer purge.wait()
	prod = newProducer(e, cl.Produce)
	pl = newPipeline(e, ts, prod.send)
	defer func() { _ = pl.drain() }()
	interval := e.cfg.Processing.CommitInterval
	var (
		pending    bool
		lastCommit = time.Now()
		sampler    latencySampler
	)
	for ctx.Err() == nil {
		var openSince time.Time
		if pending {
			openSince = lastCommit
		}
		fetches, err := e.poll(ctx, pl, cl.PollRecords, openSince)
		if err != nil {
			return err
		}
		// Rebalances are allowed only while the pipeline is empty (see
		// below), and no callback runs from a poll to AllowRebalance, so
		// the tasks are the loop's here: apply what the last rebalance
		// changed (revoked tasks were committed by the revoke callback).
		if !pending {
			e.applyReload()
			if err := ts.sync(ctx); err != nil {
				cl.AllowRebalance()
				if ctx.Err() != nil {
					break // stopping: a restore cut short is redone by the next owner
				}
				failed.Store(true)
				return err
			}
		}
		e.markReady(cl)
		if fetches.NumRecords() > 0 {
			pending = true
			sampler.add(fetches)
			if perr := pl.dispatch(ctx, fetches); perr != nil {
				// Nothing since the last commit is committed: those
				// records, the failing one first, are replayed on restart.
				failed.Store(true)
				_ = pl.drain() // its error is perr
				cl.AllowRebalance()
				return perr
			}
		}
		if lost.Swap(false) {
			// Every partition was lost: nothing polled since the last
			// commit may be committed now.
			if err := pl.drain(); err != nil {
				failed.Store(true)
				cl.AllowRebalance()
				return err
			}
			ts.aborted()
			prod.takeOffsets()
			pending, lastCommit = false, time.Now()
			e.log.Warn("partitions lost (the group moved on without this member); records since the last commit are processed again by their next owner")
		}
		if pending && time.Since(lastCommit) >= interval {
			if err := commit(context.Background()); err != nil {
				failed.Store(true)
				cl.AllowRebalance()
				return err
			}
			sampler.observe(e.metrics, e.now())
			purge.afterCommit(cl.CommittedOffsets)
			pending, lastCommit = false, time.Now()
		}
		// Polled records still in the pipeline keep the rebalance waiting
		// (at most a commit interval): a revoke callback commits what was
		// polled, so it may only run once that has been processed.
		if !pending {
			cl.AllowRebalance()
			if err := e.roomOnDisk(ctx); err != nil {
				break // stopping
			}
		}
	}
	e.ready.Store(false)
	if pending {
		if err := commit(context.Background()); err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("shutdown: %w", err)
		}
	}
	e.log.Info("stopped", "stats", e.Stats())
	return nil
}

// groupMoved reports whether an offset commit was refused because the group
// went on without this member (a rebalance it missed, or its session
// expired): the records are processed again by the partitions' owners.
func groupMoved(err error) bool {
	return errors.Is(err, kerr.IllegalGeneration) || errors.Is(err, kerr.UnknownMemberID) ||
		errors.Is(err, kerr.RebalanceInProgress) || errors.Is(err, kerr.FencedInstanceID) ||
		errors.Is(err, kerr.StaleMemberEpoch)
}
