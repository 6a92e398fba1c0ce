package main

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/topicwait"
)

const (
	numPartitions = 12
	numKeys       = 10000
	// windowSize is the tumbling window of the windows rule; event time
	// advances one millisecond per record.
	windowSize = time.Minute
	// windowGrace keeps a window open after its end. A task's stream time is
	// shared by its input partition and the repartition partition of the
	// same number; after a fault one may run ahead of the other by a few
	// seconds of event time, and without grace the records left behind
	// would be late (VX5005) instead of counted.
	windowGrace = 2 * time.Minute
)

// topics are one scenario's topic names; every scenario has its own app id
// and topics, so that scenarios sharing a broker do not see each other.
type topics struct {
	app, in, echo, sums, windows string
}

func topicsFor(scenario string) topics {
	p := "chaos-" + strings.ToLower(scenario)
	return topics{app: p, in: p + ".in", echo: p + ".echo", sums: p + ".sums", windows: p + ".windows"}
}

// changelogs are the internal topics the verifier checks for open
// transactions at the end (LSO == high watermark).
func (t topics) internal() []string {
	return []string{t.app + ".sums.changelog", t.app + ".win.changelog", t.app + ".sums.repartition"}
}

func (t topics) outputs() []string { return []string{t.echo, t.sums, t.windows} }

// writeConfig writes the rules: echo (stateless), a running count and sum per
// key after a rekey, and a one-minute tumbling window per key emitted on
// close. The brokers, state dir and HTTP address come from the environment
// of each instance.
func writeConfig(dir string, t topics, sessionTimeout time.Duration) (string, error) {
	cfg := fmt.Sprintf(`# Written by the chaos suite.
app:
  id: %[1]s
kafka:
  session_timeout: %[6]s
  startup_timeout: 120s
processing:
  guarantee: exactly_once
  commit_interval: 100ms
  transaction_timeout: 10s
  shutdown_timeout: 20s
rules:
  - name: echo
    from: %[2]s
    steps:
      - to: %[3]s
  - name: sums
    from: %[2]s
    steps:
      - rekey: event.k
      - aggregate: {store: sums, count: true, sum: event.v}
      - to: %[4]s
  - name: windows
    from: %[2]s
    steps:
      - aggregate:
          store: win
          count: true
          window: {tumbling: %[7]s, grace: %[8]s}
          emit: on_close
      - to: %[5]s
`, t.app, t.in, t.echo, t.sums, t.windows, sessionTimeout, windowSize, windowGrace)
	path := filepath.Join(dir, "veltrix.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return "", fmt.Errorf("write config: %w", err)
	}
	return path, nil
}

// createTopics creates the input and output topics with numPartitions
// partitions and waits until every partition has a leader.
func createTopics(ctx context.Context, adm *kadm.Client, t topics) error {
	names := append([]string{t.in}, t.outputs()...)
	resp, err := adm.CreateTopics(ctx, numPartitions, -1, nil, names...)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil && !strings.Contains(r.Err.Error(), "TOPIC_ALREADY_EXISTS") {
			return fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
		}
	}
	_, err = topicwait.Led(ctx, adm, 60*time.Second, names...)
	return err
}

// event is the value of an input record; seq is unique across the run.
type event struct {
	Seq int64  `json:"seq"`
	K   string `json:"k"`
	V   int64  `json:"v"`
}

// producer writes the workload: records with unique sequence numbers over
// numKeys keys, each key always in one partition (so its records have one
// order), event time (the record timestamp) one millisecond per record.
type producer struct {
	cl          *kgo.Client
	topic       string
	rng         *rand.Rand
	keys        []string
	keyPart     []int32
	base        time.Time
	seq         atomic.Int64
	acked       atomic.Int64
	failed      atomic.Int64
	firstErr    atomic.Value
	wg          sync.WaitGroup
	activeParts int32
}

// newProducer maps keys onto the first activeParts partitions (fewer than
// numPartitions leaves the rest idle).
func newProducer(brokers, topic string, seed int64, activeParts int32) (*producer, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(brokers, ",")...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(20000),
		kgo.RecordRetries(1<<30),
		kgo.RequestRetries(1<<30),
		kgo.ProduceRequestTimeout(10*time.Second),
	)
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	p := &producer{
		cl: cl, topic: topic, rng: rand.New(rand.NewSource(seed)),
		// Event time starts two hours back: far enough that the whole run
		// stays behind the wall clock (max_event_time_skew).
		base:        time.Now().Add(-2 * time.Hour).Truncate(windowSize),
		activeParts: activeParts,
	}
	for i := 0; i < numKeys; i++ {
		k := fmt.Sprintf("k-%04d", i)
		h := fnv.New32a()
		h.Write([]byte(k))
		p.keys = append(p.keys, k)
		p.keyPart = append(p.keyPart, int32(h.Sum32()%uint32(activeParts)))
	}
	return p, nil
}

func (p *producer) send(ctx context.Context, key string, part int32) {
	seq := p.seq.Add(1)
	v := int64(p.rng.Intn(100) + 1)
	val, _ := json.Marshal(event{Seq: seq, K: key, V: v})
	r := &kgo.Record{Topic: p.topic, Partition: part, Key: []byte(key), Value: val,
		Timestamp: p.base.Add(time.Duration(seq) * time.Millisecond)}
	p.wg.Add(1)
	p.cl.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
		defer p.wg.Done()
		if err != nil {
			p.failed.Add(1)
			p.firstErr.CompareAndSwap(nil, err.Error())
			return
		}
		p.acked.Add(1)
	})
}

// run produces rate records per second until ctx ends.
func (p *producer) run(ctx context.Context, rate int) {
	const tick = 20 * time.Millisecond
	perTick := max(1, rate*int(tick)/int(time.Second))
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for i := 0; i < perTick; i++ {
			k := p.rng.Intn(numKeys)
			p.send(ctx, p.keys[k], p.keyPart[k])
		}
	}
}

// closeWindows writes one record per partition (idle ones too) far enough
// ahead in event time to close every window of the records before it, and
// waits for them (up to timeout).
func (p *producer) closeWindows(ctx context.Context, timeout time.Duration) error {
	for part := int32(0); part < numPartitions; part++ {
		p.seq.Add(int64((2*windowSize + windowGrace) / time.Millisecond))
		p.send(ctx, fmt.Sprintf("close-%02d", part), part)
	}
	return p.flush(ctx, timeout)
}

// flush waits for every record's acknowledgement (up to timeout).
func (p *producer) flush(ctx context.Context, timeout time.Duration) error {
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		return fmt.Errorf("producer: %d records unacknowledged after %v", p.seq.Load()-p.acked.Load()-p.failed.Load(), timeout)
	}
	if n := p.failed.Load(); n > 0 {
		// The verifier reads the input topic as it is, so a failed produce
		// is not a wrong result; it is reported.
		return fmt.Errorf("producer: %d records failed (first: %v)", n, p.firstErr.Load())
	}
	return nil
}

func (p *producer) close() { p.cl.Close() }
