package devgen

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Run produces the customers table (unpaced), then events from Next at the
// configured rate, until ctx is done or the limit is reached. Records are
// produced asynchronously on cl, which the caller owns and closes; a full
// client buffer (kgo.MaxBufferedRecords) slows Run down rather than growing
// memory.
//
// Run returns nil when ctx is done (acknowledgements still in flight then
// land in Stats later, or fail if the caller closes the client), or when the
// limit is reached and every record has been acknowledged. It returns the
// first produce error otherwise, and stops producing when it sees it.
func (g *Generator) Run(ctx context.Context, cl *kgo.Client) error {
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)

	var failure atomic.Pointer[error]
	produce := func(ev Event) {
		i := g.topicIndex[ev.Topic]
		malformed := ev.Malformed
		cl.Produce(runCtx, &kgo.Record{Topic: ev.Topic, Key: ev.Key, Value: ev.Value}, func(r *kgo.Record, err error) {
			if err == nil {
				g.stats.produced[i].Add(1)
				if malformed {
					g.stats.malformed.Add(1)
				}
				return
			}
			g.stats.failed.Add(1)
			if ctx.Err() != nil {
				return // the caller stopped us; in-flight records fail with its context
			}
			err = fmt.Errorf("devgen: producing to topic %q: %w", r.Topic, err)
			if failure.CompareAndSwap(nil, &err) {
				stop(err)
			}
		})
	}

	for _, ev := range g.Customers() {
		if runCtx.Err() != nil {
			break
		}
		produce(ev)
	}
	p := newPacer(g.cfg.rate, g.cfg.clock)
	for n := int64(0); g.cfg.limit == 0 || n < g.cfg.limit; n++ {
		if p.wait(runCtx) != nil {
			break
		}
		produce(g.Next())
	}
	if ctx.Err() == nil && runCtx.Err() == nil {
		// Limit reached: wait for the acknowledgements. A failure cancels
		// runCtx, which ends the flush early.
		if err := cl.Flush(runCtx); err != nil && runCtx.Err() == nil {
			return fmt.Errorf("devgen: flushing: %w", err)
		}
	}
	if errp := failure.Load(); errp != nil {
		return *errp
	}
	return nil
}

// Stats is a snapshot of the generator's progress.
type Stats struct {
	Generated int64            // events returned by Next (the customers table is not counted)
	Produced  map[string]int64 // records acknowledged by the brokers, per topic
	Malformed int64            // malformed records acknowledged
	Failed    int64            // records the client failed to produce
}

// Total is the number of records acknowledged on all topics.
func (s Stats) Total() int64 {
	var n int64
	for _, v := range s.Produced {
		n += v
	}
	return n
}

// Stats returns a snapshot of the counters. It is safe to call while Run is
// producing, e.g. to print live progress.
func (g *Generator) Stats() Stats {
	s := Stats{
		Generated: g.stats.generated.Load(),
		Produced:  map[string]int64{},
		Malformed: g.stats.malformed.Load(),
		Failed:    g.stats.failed.Load(),
	}
	for t, i := range g.topicIndex {
		s.Produced[t] = g.stats.produced[i].Load()
	}
	return s
}

type counters struct {
	generated, malformed, failed atomic.Int64
	produced                     []atomic.Int64 // by topic index: orders, payments, inventory, customers
}

// burstWindow bounds catching up after a stall: at most this much time's
// worth of events goes out at once; older debt is forgiven.
const burstWindow = 20 * time.Millisecond

// minSleep keeps high rates from arming a timer per event: the pacer sleeps
// at least this long and then sends every event that has come due.
const minSleep = time.Millisecond

// pacer spaces events at a fixed rate. Event n is due at base + n/rate, so
// timer lateness never accumulates into drift; sleeping is by the clock's
// timer, never by spinning.
type pacer struct {
	clock Clock
	rate  float64 // events per second; 0: unpaced
	base  time.Time
	n     int64
}

func newPacer(rate float64, clk Clock) *pacer {
	return &pacer{clock: clk, rate: rate, base: clk.Now()}
}

// wait blocks until the next event is due or ctx is done.
func (p *pacer) wait(ctx context.Context) error {
	if p.rate == 0 {
		return ctx.Err()
	}
	for {
		now := p.clock.Now()
		due := p.base.Add(time.Duration(float64(p.n) * float64(time.Second) / p.rate))
		if behind := now.Sub(due); behind > burstWindow {
			// Far behind (a stall): catch up at most burstWindow's worth.
			// The new schedule is computed from this same reading of the
			// clock, so this cannot repeat forever.
			p.base, p.n = now.Add(-burstWindow), 0
			due = p.base
		}
		if !due.After(now) {
			p.n++
			return ctx.Err()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.clock.After(max(due.Sub(now), minSleep)):
		}
	}
}
