package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/broker"
)

// commitInterval is how often the raw loops commit (as Veltrix's default).
const commitInterval = 100 * time.Millisecond

// childArgs are the hidden flags of a re-executed scenario process.
type childArgs struct {
	brokers, in, out, group, dir string
	partitions                   int
}

// runChild is the body of a re-executed scenario process; it runs until ctx
// is cancelled (SIGTERM from the harness).
func runChild(ctx context.Context, name string, a childArgs) error {
	switch name {
	case "raw-eos":
		return rawEOS(ctx, a)
	case "raw-alo":
		return rawALO(ctx, a)
	case "raw-aggregate-eos":
		return rawAggregateEOS(ctx, a)
	case "goka-count":
		return gokaCount(ctx, a)
	case "broker":
		return runBroker(ctx, a)
	}
	return fmt.Errorf("unknown child %q", name)
}

// runBroker is the fallback broker (the same broker as `veltrix broker`)
// used when cmd/veltrix does not build.
func runBroker(ctx context.Context, a childArgs) error {
	b, err := broker.Start(broker.WithListen("127.0.0.1:0"), broker.WithPartitions(a.partitions))
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintf(os.Stderr, "bench broker: listening on %s\n", b.Addr())
	<-ctx.Done()
	return nil
}

// startSelf returns a starter that re-executes this program as child name.
func (h *harness) startSelf(name string) starter {
	return func(in, out, group string) (*child, error) {
		return startChild(h.self, "-child", name, "-brokers", h.addr, "-in", in, "-out", out,
			"-group", group, "-dir", h.tmp)
	}
}

// rawScenario copies the input to the output with a minimal franz-go loop.
func rawScenario(name string) func(context.Context, *harness) result {
	return func(ctx context.Context, h *harness) result {
		return h.runThroughput(ctx, name, h.startSelf(name), newCopyChecker(h.cfg.records, ""))
	}
}

// rawEOS copies every record in a GroupTransactSession, one transaction per
// commitInterval: the exactly-once limit of franz-go and the broker.
func rawEOS(ctx context.Context, a childArgs) error {
	s, err := newRawSession(a, a.in)
	if err != nil {
		return err
	}
	defer s.Close()
	var errs produceErrors
	return transact(ctx, s, &errs, txnLoop{
		each: func(r *kgo.Record) error {
			s.Produce(ctx, &kgo.Record{Topic: a.out, Key: r.Key, Value: r.Value}, errs.promise)
			return nil
		},
	})
}

// newRawSession is the raw loops' transactional session reading topics
// from the start with read_committed.
func newRawSession(a childArgs, topics ...string) (*kgo.GroupTransactSession, error) {
	s, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(a.brokers),
		kgo.TransactionalID(a.group),
		kgo.ConsumerGroup(a.group),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	return s, nil
}

// txnLoop is what a raw transactional loop does with its records.
type txnLoop struct {
	each   func(*kgo.Record) error    // each polled record; an error ends the loop
	before func()                     // before each transaction ends (optional)
	ended  func(committed bool) error // after each (optional); an error ends the loop
}

// transact runs transactions until ctx ends: each begins with the first
// records polled and lasts commitInterval, handing the records to l.each,
// then ends, committing unless a produce failed (errs) or ctx ended.
//
// A transaction that polled nothing is not ended (as Veltrix does not
// begin one): franz-go's GroupTransactSession.End of an empty transaction
// blocks for 500 ms, since without a TxnOffsetCommit it cannot tell that
// the broker has KIP-447 and waits as for an older one. Ending one every
// interval while idle kept the loop in those waits, and the first records
// after a pause waited with it.
func transact(ctx context.Context, s *kgo.GroupTransactSession, errs *produceErrors, l txnLoop) error {
	for ctx.Err() == nil {
		if err := s.Begin(); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		var failed error
		var end time.Time // commitInterval after the first records polled
		for (end.IsZero() || time.Now().Before(end)) && ctx.Err() == nil && failed == nil {
			pctx, cancel := ctx, func() {}
			if !end.IsZero() {
				pctx, cancel = context.WithDeadline(ctx, end)
			}
			fs := s.PollFetches(pctx)
			cancel()
			if end.IsZero() && fs.NumRecords() > 0 {
				end = time.Now().Add(commitInterval)
			}
			fs.EachRecord(func(r *kgo.Record) {
				if failed == nil {
					failed = l.each(r)
				}
			})
		}
		if failed != nil {
			return failed
		}
		if end.IsZero() {
			return nil // ctx ended with nothing polled
		}
		if l.before != nil {
			l.before()
		}
		try := kgo.TryCommit
		if perr := errs.take(); perr != nil {
			fmt.Fprintf(os.Stderr, "produce failed, aborting: %v\n", perr)
			try = kgo.TryAbort
		}
		if ctx.Err() != nil {
			try = kgo.TryAbort
		}
		ectx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		committed, err := s.End(ectx, try)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("end transaction: %w", err)
		}
		if l.ended != nil {
			if err := l.ended(committed); err != nil {
				return err
			}
		}
	}
	return nil
}

// rawALO copies every record with the idempotent producer and commits the
// consumed offsets every commitInterval, after the outputs are acked.
func rawALO(ctx context.Context, a childArgs) error {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(a.brokers),
		kgo.ConsumerGroup(a.group),
		kgo.ConsumeTopics(a.in),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.DefaultProduceTopic(a.out),
	)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	defer cl.CloseAllowingRebalance()
	var errs produceErrors
	promise := errs.promise
	for ctx.Err() == nil {
		end := time.Now().Add(commitInterval)
		for time.Now().Before(end) && ctx.Err() == nil {
			pctx, cancel := context.WithDeadline(ctx, end)
			fs := cl.PollFetches(pctx)
			cancel()
			fs.EachRecord(func(r *kgo.Record) {
				cl.Produce(ctx, &kgo.Record{Key: r.Key, Value: r.Value}, promise)
			})
		}
		if err := cl.Flush(ctx); err != nil {
			break
		}
		if perr := errs.take(); perr != nil {
			return fmt.Errorf("produce: %w", perr) // offsets not committed: the input is re-read
		}
		if err := cl.CommitUncommittedOffsets(ctx); err != nil && ctx.Err() == nil {
			return fmt.Errorf("commit: %w", err)
		}
		cl.AllowRebalance()
	}
	return nil
}

// produceErrors collects the errors of produce promises.
type produceErrors struct {
	mu  sync.Mutex
	err error
}

func (p *produceErrors) promise(_ *kgo.Record, err error) {
	if err != nil {
		p.mu.Lock()
		p.err = errors.Join(p.err, err)
		p.mu.Unlock()
	}
}

// take returns the errors collected so far and forgets them.
func (p *produceErrors) take() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	err := p.err
	p.err = nil
	return err
}
