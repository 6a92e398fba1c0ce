package quickstart

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/engine"
	"github.com/veltrix/veltrix/internal/topology"
)

// watcher reads the output and DLQ topics as a downstream consumer would
// (read_committed) and measures end-to-end latency: receive time minus the
// output's timestamp, which is the timestamp of the input event.
type watcher struct {
	brokers string
	dlq     map[string]bool
	topics  []string

	mu        sync.Mutex
	out, dlqN int64
	latencies []time.Duration // since the last snapshot
}

func newWatcher(brokers string, topo *topology.Topology) *watcher {
	// Repartition topics are internal: records pass through them on their
	// way to a rule's real outputs, which are what is counted.
	topics := slices.DeleteFunc(topo.OutputTopics(), func(t string) bool { return slices.Contains(topo.Repartitions(), t) })
	w := &watcher{brokers: brokers, dlq: map[string]bool{}, topics: topics}
	for _, r := range topo.Rules {
		if r.DLQ != "" {
			w.dlq[r.DLQ] = true
		}
	}
	return w
}

func (w *watcher) run(ctx context.Context) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(w.brokers), kgo.ConsumeTopics(w.topics...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AllowAutoTopicCreation(), kgo.MetadataMinAge(time.Second))
	if err != nil {
		return
	}
	defer cl.Close()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		now := time.Now()
		w.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			if w.dlq[r.Topic] {
				w.dlqN++
				return
			}
			w.out++
			w.latencies = append(w.latencies, now.Sub(r.Timestamp))
		})
		w.mu.Unlock()
	}
}

type progress struct {
	in, consumed, out, dlq, commits int64
	p50, p99                        time.Duration
}

func (w *watcher) snapshot(generated int64, st engine.Stats) progress {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := progress{in: generated, consumed: st.Consumed, out: w.out, dlq: w.dlqN, commits: st.Committed}
	if len(w.latencies) > 0 {
		slices.Sort(w.latencies)
		p.p50 = w.latencies[len(w.latencies)/2]
		p.p99 = w.latencies[len(w.latencies)*99/100]
		w.latencies = w.latencies[:0]
	}
	return p
}

func (p progress) line(last progress, every time.Duration) string {
	s := fmt.Sprintf("events in %d  processed %d  out %d  dlq %d  commits %d", p.in, p.consumed, p.out, p.dlq, p.commits)
	if every > 0 {
		s += fmt.Sprintf("  rate %.0f/s", float64(p.consumed-last.consumed)/every.Seconds())
		if p.p50 > 0 {
			s += fmt.Sprintf("  latency p50 %s p99 %s", p.p50.Round(time.Millisecond), p.p99.Round(time.Millisecond))
		}
	}
	return s
}
