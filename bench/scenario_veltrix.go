package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Processing guarantees as written in veltrix.yaml.
const (
	guaranteeEOS = "exactly_once"
	guaranteeALO = "at_least_once"
)

// benchMarker is what the rule's set step adds to every value.
const benchMarker = `"bench":"yes"`

// statelessSteps is the rule of the stateless scenarios: every generated
// record passes the filter, gets one field set and is written out.
func statelessSteps(out string) string {
	return fmt.Sprintf(`      - filter: event.type == "order.created"
      - set: {bench: '"yes"'}
      - to: %s
`, out)
}

// aggregateSteps counts and sums orders per customer. The input is keyed by
// order id, so the rule rekeys by customer first (through its repartition
// topic), as any per-customer aggregate must; with emit: on_update every
// event continues as its customer's updated result, one output per input.
func aggregateSteps(out string) string {
	return fmt.Sprintf(`      - rekey: event.customer_id
      - aggregate: {store: counts, count: true, sum: event.total, emit: on_update}
      - to: %s
`, out)
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// writeVeltrixConfig writes dir/veltrix.yaml: one rule named bench reading
// in, app id app, the given state dir, guarantee and HTTP address, and a
// commit interval of 100 ms. It returns the file's path.
func (h *harness) writeVeltrixConfig(dir, app, stateDir, guarantee, httpAddr, in, steps string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("config dir: %w", err)
	}
	yaml := fmt.Sprintf(`app:
  id: %s
  state_dir: %s
kafka:
  brokers: [%s]
processing:
  guarantee: %s
  commit_interval: 100ms
http:
  listen: %s
rules:
  - name: bench
    from: %s
    steps:
%s`, app, stateDir, h.addr, guarantee, httpAddr, in, steps)
	path := filepath.Join(dir, "veltrix.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		return "", fmt.Errorf("write config: %w", err)
	}
	return path, nil
}

// startVeltrix returns a starter that writes a veltrix.yaml with one rule and
// runs `veltrix run -c` on it. The app id is the group name.
func (h *harness) startVeltrix(guarantee string, steps func(out string) string) starter {
	return func(in, out, group string) (*child, error) {
		if h.veltrix == "" {
			return nil, fmt.Errorf("veltrix binary not available: %w", h.buildErr)
		}
		httpAddr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(h.tmp, group)
		path, err := h.writeVeltrixConfig(dir, group, filepath.Join(dir, "state"), guarantee, httpAddr, in, steps(out))
		if err != nil {
			return nil, err
		}
		return h.runVeltrix(nil, path)
	}
}

// veltrixStateless runs the filter + set + to rule with a guarantee.
func veltrixStateless(guarantee string) func(context.Context, *harness) result {
	name := "veltrix-stateless-eos"
	if guarantee == guaranteeALO {
		name = "veltrix-stateless-alo"
	}
	return func(ctx context.Context, h *harness) result {
		return h.runThroughput(ctx, name, h.startVeltrix(guarantee, statelessSteps),
			newCopyChecker(h.cfg.records, benchMarker))
	}
}

// veltrixAggregate counts and sums per customer, exactly once. The aggregate
// emits one result per event, so the output must hold exactly one record per
// input record, and per customer the last one must carry the final count and
// sum.
func veltrixAggregate(ctx context.Context, h *harness) result {
	r := h.runThroughput(ctx, "veltrix-aggregate-eos", h.startVeltrix(guaranteeEOS, aggregateSteps),
		newCountChecker(h.custCount, h.custSum, h.cfg.records, true))
	if r.Status == statusOK {
		r.Note = "rekey by customer (repartition topic) + aggregate count/sum, on_update"
	}
	return r
}

// rekeySteps repartitions by customer and writes each event out unchanged,
// keyed by its order id again: the Kafka work of veltrix-aggregate-eos
// without its state.
func rekeySteps(out string) string {
	return fmt.Sprintf(`      - rekey: event.customer_id
      - to: {topic: %s, key: event.order_id}
`, out)
}

// veltrixRekey is a diagnostic (run only when named): it separates the cost
// of the repartition round trip from that of the aggregate's state.
func veltrixRekey(ctx context.Context, h *harness) result {
	return h.runThroughput(ctx, "veltrix-rekey-eos", h.startVeltrix(guaranteeEOS, rekeySteps),
		newCopyChecker(h.cfg.records, `"customer_id":"c-`))
}

// latencyVeltrix measures end-to-end latency through veltrix-stateless-eos.
func latencyVeltrix(ctx context.Context, h *harness) result {
	return h.runLatency(ctx, "latency", h.startVeltrix(guaranteeEOS, statelessSteps), benchMarker)
}

// latencyRaw measures the same through the raw-eos loop: the floor that the
// broker, the 100 ms transactions and read_committed set.
func latencyRaw(ctx context.Context, h *harness) result {
	return h.runLatency(ctx, "latency-raw-eos", h.startSelf("raw-eos"), "")
}

// sentNs reads the "sent_ns" field the latency producer writes.
func sentNs(v []byte) (int64, bool) {
	const field = `"sent_ns":`
	i := bytes.Index(v, []byte(field))
	if i < 0 {
		return 0, false
	}
	v = v[i+len(field):]
	j := 0
	for j < len(v) && v[j] >= '0' && v[j] <= '9' {
		j++
	}
	n, err := strconv.ParseInt(string(v[:j]), 10, 64)
	return n, err == nil
}

// runLatency produces at a fixed rate through a processor on a fresh input
// topic and measures, per record, read_committed receive time minus the time
// the producer stamped into it. A warm-up (one record every 200 ms until
// output appears) keeps start-up and group join out of the figures.
func (h *harness) runLatency(ctx context.Context, name string, start starter, marker string) result {
	id := h.scenarioID(name)
	in, out, group := "bench-in-"+id, "bench-out-"+id, "bench-"+id
	defer h.deleteTopics(id)
	for _, t := range []string{in, out} {
		if err := h.createTopic(ctx, t); err != nil {
			return failed(name, err.Error())
		}
	}
	total := h.cfg.latencyRate * h.cfg.latencySeconds
	prod, err := kgo.NewClient(kgo.SeedBrokers(h.addr), kgo.DefaultProduceTopic(in), kgo.ProducerLinger(0))
	if err != nil {
		return failed(name, fmt.Sprintf("producer: %v", err))
	}
	defer prod.Close()
	cons, err := kgo.NewClient(kgo.SeedBrokers(h.addr), kgo.ConsumeTopics(out),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return failed(name, fmt.Sprintf("consumer: %v", err))
	}
	defer cons.Close()

	c, err := start(in, out, group)
	if err != nil {
		return failed(name, err.Error())
	}
	defer c.stop()

	// The reader owns chk and lat until it returns.
	chk := newCopyChecker(total, marker)
	lat := make([]time.Duration, 0, total)
	var warm, got atomic.Int64
	rctx, rcancel := context.WithCancel(ctx)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for rctx.Err() == nil {
			fs := cons.PollFetches(rctx)
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				if bytes.HasPrefix(r.Key, []byte("warm-")) {
					warm.Add(1)
					return
				}
				chk.add(r)
				if ns, ok := sentNs(r.Value); ok {
					lat = append(lat, now.Sub(time.Unix(0, ns)))
				}
				got.Add(1)
			})
		}
	}()
	stopReader := func() { rcancel(); <-readerDone }

	produce := func(key []byte, i int) {
		now := time.Now()
		prod.Produce(ctx, &kgo.Record{Key: key, Value: orderEvent(nil, i, now.UnixNano()), Timestamp: now}, nil)
	}
	warmDeadline := time.Now().Add(h.cfg.timeout)
	for k := 0; warm.Load() == 0; k++ {
		if c.hasExited() {
			stopReader()
			return failed(name, c.exitNote())
		}
		if time.Now().After(warmDeadline) || ctx.Err() != nil {
			stopReader()
			return failed(name, "no output during warm-up")
		}
		produce(fmt.Appendf(nil, "warm-%d", k), k)
		time.Sleep(200 * time.Millisecond)
	}

	logf("%s: producing %d records at %d/s", name, total, h.cfg.latencyRate)
	t0 := time.Now()
	tick := time.NewTicker(time.Millisecond)
	for i := 0; i < total && ctx.Err() == nil; {
		<-tick.C
		due := min(total, int(time.Since(t0).Seconds()*float64(h.cfg.latencyRate)))
		for ; i < due; i++ {
			produce(orderKey(i), i)
		}
	}
	tick.Stop()
	sent := time.Since(t0)
	deadline := time.Now().Add(30 * time.Second)
	for got.Load() < int64(total) && time.Now().Before(deadline) && !c.hasExited() && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	if got.Load() >= int64(total) {
		time.Sleep(500 * time.Millisecond) // late extras are duplicates
	}
	stopReader()
	exitedEarly := c.hasExited()
	cpu, rss := c.stop()
	if !chk.complete() {
		if exitedEarly {
			return failed(name, c.exitNote())
		}
		return failed(name, fmt.Sprintf("timed out: %d of %d records within 30s of the last send", chk.received(), total))
	}
	if err := chk.verdict(); err != nil {
		return failed(name, "wrong output: "+err.Error())
	}
	p50, p99, mx := latencyStats(lat)
	return result{Status: statusOK, Records: total, RecordsPerSec: float64(total) / sent.Seconds(),
		MBPerSec: float64(total) / sent.Seconds() * h.avgBytes / 1e6, CPUSeconds: cpu, PeakRSSBytes: rss,
		P50Ms: &p50, P99Ms: &p99, MaxMs: &mx,
		Note: fmt.Sprintf("%d/s for %.0fs; max %.1f ms", h.cfg.latencyRate, sent.Seconds(), mx)}
}
