package engine

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// defaultPurgeInterval is how often consumed repartition records are deleted
// (Kafka Streams' repartition.purge.interval.ms).
const defaultPurgeInterval = 30 * time.Second

// WithPurgeInterval sets how often the records of repartition topics that a
// commit consumed are deleted (default 30 s, as Kafka Streams'
// repartition.purge.interval.ms; 0 purges after every commit).
func WithPurgeInterval(d time.Duration) Option { return func(e *Engine) { e.purgeEvery = d } }

// purger deletes the records of repartition topics below the group's
// committed offsets, as Kafka Streams does. The topics are Veltrix's own,
// created with unlimited retention (a record must stay until it has been
// processed, however long the application is down); a record is needed only
// until its offset is committed, so a DeleteRecords after commits keeps the
// topics small. It runs off the processing loop, one request at a time.
type purger struct {
	e       *Engine
	topics  []string
	adm     *kadm.Client
	last    time.Time
	running atomic.Bool
	wg      sync.WaitGroup
}

// wait waits for a running purge; call it before the client closes.
func (p *purger) wait() { p.wg.Wait() }

func newPurger(e *Engine, cl *kgo.Client) *purger {
	return &purger{e: e, topics: e.topo.Repartitions(), adm: kadm.NewClient(cl)}
}

// afterCommit starts a purge up to committed (the client's committed
// offsets) when the interval has passed and no purge is running.
func (p *purger) afterCommit(committed func() map[string]map[int32]kgo.EpochOffset) {
	if len(p.topics) == 0 || time.Since(p.last) < p.e.purgeEvery || !p.running.CompareAndSwap(false, true) {
		return
	}
	p.last = time.Now()
	offs := kadm.Offsets{}
	all := committed()
	for _, t := range p.topics {
		for part, eo := range all[t] {
			if eo.Offset > 0 {
				offs.Add(kadm.Offset{Topic: t, Partition: part, At: eo.Offset, LeaderEpoch: -1})
			}
		}
	}
	if len(offs) == 0 {
		p.running.Store(false)
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer p.running.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		resp, err := p.adm.DeleteRecords(ctx, offs)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			// Harmless: the records stay until the next purge.
			p.e.log.Warn("purge consumed repartition records", "err", err)
		}
	}()
}
