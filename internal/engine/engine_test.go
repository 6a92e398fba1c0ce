package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/engine"
	"github.com/veltrix/veltrix/internal/metrics"
	"github.com/veltrix/veltrix/internal/state"
	"github.com/veltrix/veltrix/internal/testbroker"
	"github.com/veltrix/veltrix/internal/topology"
	"github.com/veltrix/veltrix/processors"
)

// newCluster gives the test its broker (Apache Kafka with VELTRIX_TEST_KAFKA,
// else kfake) with the input topics, six partitions each, and returns its
// bootstrap address. Topics are not auto-created: the engine creates its
// output, changelog and DLQ topics itself (with the cluster's default of six
// partitions, which the fake is given too). Sessions may be as short as the
// 1 s the tests use on both.
func newCluster(t *testing.T, topics ...string) string {
	t.Helper()
	b := testbroker.New(t,
		testbroker.WithTopics(6, topics...),
		testbroker.WithFake(
			kfake.DefaultNumPartitions(6),
			kfake.GroupMinSessionTimeout(100*time.Millisecond),
		),
	)
	return b.Addr()
}

// loadTopology writes a config (the settings plus rules) and loads it the way
// veltrix run does.
func loadTopology(t *testing.T, brokers, guarantee, rules string) (*config.Config, *topology.Topology) {
	t.Helper()
	dir := t.TempDir()
	yaml := fmt.Sprintf(`app:
  id: test-app
  state_dir: %s
kafka:
  brokers: [%s]
  session_timeout: 1s
  rebalance_timeout: 2s
processing:
  guarantee: %s
  commit_interval: 50ms
http:
  listen: ""
%s`, filepath.Join(dir, "state"), brokers, guarantee, rules)
	path := filepath.Join(dir, "veltrix.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, config.WithEnv(func(string) (string, bool) { return "", false }))
	if err != nil {
		t.Fatalf("load config: %v", err)
	}
	topo, err := topology.Build(cfg)
	if err != nil {
		t.Fatalf("build topology: %v", err)
	}
	return cfg, topo
}

func produce(t *testing.T, brokers string, recs []*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// readCommitted reads topics with isolation.level=read_committed until want
// records arrived (or the deadline passes), then a little longer to catch
// any duplicate beyond want.
func readCommitted(t *testing.T, r *running, brokers string, want int, timeout time.Duration, topics ...string) []*kgo.Record {
	t.Helper()
	out, _ := readCommittedAt(t, r, brokers, want, timeout, topics...)
	return out
}

// readCommittedAt is readCommitted that also returns when want records had
// arrived.
func readCommittedAt(t *testing.T, r *running, brokers string, want int, timeout time.Duration, topics ...string) ([]*kgo.Record, time.Time) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.ConsumeTopics(topics...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	deadline := time.Now().Add(timeout)
	settle := time.Time{}
	for {
		now := time.Now()
		if now.After(deadline) || (!settle.IsZero() && now.After(settle)) {
			return out, settle.Add(-time.Second)
		}
		if r != nil {
			if err := r.failed(); err != nil {
				t.Fatalf("engine stopped while %d of %d records were read: %v", len(out), want, err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
		if len(out) >= want && settle.IsZero() {
			settle = time.Now().Add(time.Second)
		}
	}
}

// running is an engine running in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func start(eng *engine.Engine) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- eng.Run(ctx) }()
	return r
}

// stop stops the engine and returns what Run returned.
func (r *running) stop() error {
	r.cancel()
	err := <-r.done
	r.done <- err
	return err
}

// failed reports an early end of Run (nil while it runs).
func (r *running) failed() error {
	select {
	case err := <-r.done:
		r.done <- err
		if err == nil {
			err = fmt.Errorf("engine stopped early")
		}
		return err
	default:
		return nil
	}
}

type order struct {
	Type       string  `json:"type"`
	OrderID    string  `json:"order_id"`
	CustomerID string  `json:"customer_id"`
	Total      float64 `json:"total"`
}

func orders(n int) ([]*kgo.Record, map[string]order) {
	recs := make([]*kgo.Record, n)
	created := map[string]order{}
	for i := range n {
		o := order{Type: "order.created", OrderID: fmt.Sprintf("o-%06d", i), CustomerID: fmt.Sprintf("c-%d", i%997), Total: float64(i%2500) + 0.5}
		if i%5 == 0 {
			o.Type = "order.cancelled"
		} else {
			created[o.OrderID] = o
		}
		v, _ := json.Marshal(o)
		recs[i] = &kgo.Record{Topic: "orders", Key: []byte(o.OrderID), Value: v}
	}
	return recs, created
}

const routeRules = `rules:
  - name: route-orders
    from: orders
    steps:
      - filter: event.type == "order.created"
      - set: {flag: '"checked"', big: event.total >= 1000}
      - route:
          - when: event.total >= 1000
            steps:
              - to: orders.high
          - default:
              - to: orders.normal
`

// checkRouted asserts every created order arrived exactly once, on the right
// topic, with the fields set by the rule.
func checkRouted(t *testing.T, got []*kgo.Record, created map[string]order) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range got {
		seen[string(r.Key)]++
		var v map[string]any
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("output %s is not JSON: %v", r.Value, err)
		}
		o, ok := created[string(r.Key)]
		if !ok {
			t.Fatalf("unexpected output key %s (filtered orders must not pass)", r.Key)
		}
		wantTopic := "orders.normal"
		if o.Total >= 1000 {
			wantTopic = "orders.high"
		}
		if r.Topic != wantTopic || v["flag"] != "checked" || v["big"] != (o.Total >= 1000) || v["total"] != o.Total || v["customer_id"] != o.CustomerID {
			t.Fatalf("output %s on %s: %s; want topic %s and the order with flag and big set", r.Key, r.Topic, r.Value, wantTopic)
		}
	}
	var dups, missing []string
	for k, n := range seen {
		if n > 1 {
			dups = append(dups, fmt.Sprintf("%s×%d", k, n))
		}
	}
	for k := range created {
		if seen[k] == 0 {
			missing = append(missing, k)
		}
	}
	if len(dups) > 0 || len(missing) > 0 {
		t.Fatalf("%d outputs for %d created orders: %d duplicated (e.g. %v), %d missing (e.g. %v)",
			len(got), len(created), len(dups), head(dups), len(missing), head(missing))
	}
}

func head(s []string) []string { return s[:min(len(s), 5)] }

func TestExactlyOnceFilterSetRoute(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	addr := newCluster(t, "orders")
	recs, created := orders(n)
	produce(t, addr, recs)

	cfg, topo := loadTopology(t, addr, "exactly_once", routeRules)
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	eng := engine.New(cfg, topo, engine.WithMetrics(m))
	began := time.Now()
	run := start(eng)
	got, reached := readCommittedAt(t, run, addr, len(created), 3*time.Minute, "orders.high", "orders.normal")
	elapsed := reached.Sub(began)
	if err := run.stop(); err != nil {
		t.Fatalf("engine stopped with %v", err)
	}
	checkRouted(t, got, created)
	t.Logf("%d records through filter+set+route in %v (%.0f records/s, race=%v; noisy machine)", n, elapsed, float64(n)/elapsed.Seconds(), raceEnabled)

	if v := testutil.ToFloat64(m.RecordsConsumed.WithLabelValues("orders")); v < float64(n) {
		t.Errorf("records_consumed_total = %v, want ≥ %d", v, n)
	}
	if v := testutil.ToFloat64(m.RuleRecords.WithLabelValues("route-orders", "filtered")); v < float64(n-len(created)) {
		t.Errorf("filtered = %v, want ≥ %d", v, n-len(created))
	}
	if v := testutil.ToFloat64(m.Transactions.WithLabelValues("commit")); v < 1 {
		t.Errorf("no committed transaction counted")
	}
	if st := eng.Stats(); st.Consumed < int64(n) || st.Produced < int64(len(created)) {
		t.Errorf("stats %+v, want ≥ %d consumed and ≥ %d produced", st, n, len(created))
	}
}

// TestIdleEngineEndsNoTransaction: an instance with nothing to read ends no
// transaction, and the first records after the pause open one. franz-go's
// End of a transaction that polled and produced nothing blocks for 500 ms
// (with no TxnOffsetCommit it cannot tell that the broker has KIP-447), so
// ending one every commit interval while idle would hold up the first
// records after every pause.
func TestIdleEngineEndsNoTransaction(t *testing.T) {
	addr := newCluster(t, "orders")
	cfg, topo := loadTopology(t, addr, "exactly_once", routeRules)
	m := metrics.New(prometheus.NewRegistry())
	eng := engine.New(cfg, topo, engine.WithMetrics(m))
	run := start(eng)
	defer run.stop()
	waitFor(t, run, "readiness", eng.Ready)
	ended := func() float64 {
		return testutil.ToFloat64(m.Transactions.WithLabelValues("commit")) + testutil.ToFloat64(m.Transactions.WithLabelValues("abort"))
	}
	time.Sleep(20 * cfg.Processing.CommitInterval) // idle: twenty commit intervals (1 s)
	if n := ended(); n != 0 {
		t.Fatalf("%v transactions ended in 1 s with nothing to read", n)
	}
	recs, created := orders(50)
	produce(t, addr, recs)
	got := readCommitted(t, run, addr, len(created), time.Minute, "orders.high", "orders.normal")
	checkRouted(t, got, created)
	if n := testutil.ToFloat64(m.Transactions.WithLabelValues("commit")); n < 1 {
		t.Errorf("commits = %v after the records came, want at least 1", n)
	}
}

func TestAtLeastOnceDeliversEverything(t *testing.T) {
	addr := newCluster(t, "orders")
	recs, created := orders(5_000)
	produce(t, addr, recs)
	cfg, topo := loadTopology(t, addr, "at_least_once", routeRules)
	run := start(engine.New(cfg, topo))
	got := readCommitted(t, run, addr, len(created), time.Minute, "orders.high", "orders.normal")
	if err := run.stop(); err != nil {
		t.Fatalf("engine stopped with %v", err)
	}
	// A clean run has no reason to replay: exactly the expected records.
	checkRouted(t, got, created)
}

func TestDLQKeepsBadEventsAndContinues(t *testing.T) {
	addr := newCluster(t, "orders")
	good := []string{`{"type":"order.created","total":10}`, `{"type":"order.created","total":20}`}
	recs := []*kgo.Record{
		{Topic: "orders", Key: []byte("k0"), Value: []byte(good[0]), Partition: 0},
		{Topic: "orders", Key: []byte("bad-json"), Value: []byte(`{"type":`), Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("abc")}}},
		{Topic: "orders", Key: []byte("bad-type"), Value: []byte(`{"type":"order.created","total":"lots"}`)},
		{Topic: "orders", Key: []byte("k1"), Value: []byte(good[1])},
	}
	produce(t, addr, recs)
	rules := `rules:
  - name: totals
    from: orders
    on_error: dlq
    steps:
      - filter: event.total > 5
      - set: {double: event.total * 2.0}
      - to: orders.out
`
	cfg, topo := loadTopology(t, addr, "exactly_once", rules)
	run := start(engine.New(cfg, topo))
	out := readCommitted(t, run, addr, 2, time.Minute, "orders.out")
	dlq := readCommitted(t, run, addr, 2, time.Minute, "test-app.dlq")
	if err := run.stop(); err != nil {
		t.Fatalf("engine stopped with %v", err)
	}
	if len(out) != 2 {
		t.Fatalf("got %d outputs, want the 2 good events", len(out))
	}
	if len(dlq) != 2 {
		t.Fatalf("got %d DLQ records, want 2", len(dlq))
	}
	byKey := map[string]*kgo.Record{}
	for _, r := range dlq {
		byKey[string(r.Key)] = r
	}
	for key, code := range map[string]string{"bad-json": "VX5001", "bad-type": "VX5002"} {
		r := byKey[key]
		if r == nil {
			t.Fatalf("no DLQ record for %s", key)
		}
		h := map[string]string{}
		for _, kv := range r.Headers {
			h[kv.Key] = string(kv.Value)
		}
		for _, name := range []string{"veltrix.error.code", "veltrix.error.message", "veltrix.rule", "veltrix.source.topic", "veltrix.source.partition", "veltrix.source.offset"} {
			if h[name] == "" {
				t.Errorf("%s: DLQ header %s missing (headers %v)", key, name, h)
			}
		}
		if h["veltrix.error.code"] != code || h["veltrix.rule"] != "totals" || h["veltrix.source.topic"] != "orders" {
			t.Errorf("%s: headers %v, want code %s, rule totals, topic orders", key, h, code)
		}
		if key == "bad-json" && (h["trace"] != "abc" || string(r.Value) != `{"type":`) {
			t.Errorf("bad-json: original value %q and header trace=%q not kept", r.Value, h["trace"])
		}
	}
}

func TestOnErrorFailStopsWithTheError(t *testing.T) {
	addr := newCluster(t, "orders")
	produce(t, addr, []*kgo.Record{{Topic: "orders", Key: []byte("x"), Value: []byte("not json")}})
	rules := `rules:
  - name: strict
    from: orders
    on_error: fail
    steps:
      - to: orders.out
`
	cfg, topo := loadTopology(t, addr, "exactly_once", rules)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := engine.New(cfg, topo).Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "VX5001") || !strings.Contains(err.Error(), "strict") {
		t.Fatalf("Run returned %v, want a VX5001 failure naming the rule", err)
	}
	if got := readCommitted(t, nil, addr, 1, 2*time.Second, "orders.out"); len(got) != 0 {
		t.Fatalf("%d outputs visible after a failed transaction", len(got))
	}
}

// Windows close on stream time in the running engine: the result of a
// tumbling window is emitted once a later event moves the task past its end.
func TestWindowClosesOnStreamTime(t *testing.T) {
	addr := newCluster(t, "clicks")
	base := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	for i := range 5 {
		recs = append(recs, &kgo.Record{Topic: "clicks", Key: []byte("u-1"), Value: []byte(`{"n":1}`), Timestamp: base.Add(time.Duration(i) * time.Second)})
	}
	// Two minutes later: the 10:00 window (1m, no grace) has closed.
	recs = append(recs, &kgo.Record{Topic: "clicks", Key: []byte("u-1"), Value: []byte(`{"n":1}`), Timestamp: base.Add(2 * time.Minute)})
	produce(t, addr, recs)
	rules := `rules:
  - name: per-minute
    from: clicks
    steps:
      - aggregate: {store: clicks-per-minute, count: true, window: {tumbling: 1m}, emit: on_close}
      - to: clicks.per-minute
`
	cfg, topo := loadTopology(t, addr, "exactly_once", rules)
	run := start(engine.New(cfg, topo))
	got := readCommitted(t, run, addr, 1, time.Minute, "clicks.per-minute")
	if err := run.stop(); err != nil {
		t.Fatalf("engine stopped with %v", err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d window results, want exactly the closed 10:00 window", len(got))
	}
	var v struct {
		Key         string `json:"key"`
		Count       int    `json:"count"`
		WindowStart string `json:"window_start"`
	}
	if err := json.Unmarshal(got[0].Value, &v); err != nil || v.Key != "u-1" || v.Count != 5 || !strings.HasPrefix(v.WindowStart, "2026-01-01T10:00:00") {
		t.Fatalf("window result %s (%v), want u-1 with count 5 from 10:00", got[0].Value, err)
	}
}

// TestAggregateStateMatchesItsOutput runs a per-key count and sum with each
// guarantee and checks, once the engine has stopped, that the store's
// changelog (read_committed) and its local Pebble state both end with the
// final result of every key: the changelog records produced as the
// pipeline drains and the batches applied in the background hold exactly
// what the outputs say.
func TestAggregateStateMatchesItsOutput(t *testing.T) {
	for _, guarantee := range []string{"exactly_once", "at_least_once"} {
		t.Run(guarantee, func(t *testing.T) {
			addr := newCluster(t, "sales")
			const n, keys = 6000, 300
			recs, want := sales(n, keys)
			produce(t, addr, recs)
			cfg, topo := loadTopology(t, addr, guarantee, totalsRules)
			run := start(engine.New(cfg, topo))
			got := readCommitted(t, run, addr, n, time.Minute, "sales.totals")
			if err := run.stop(); err != nil {
				t.Fatalf("engine stopped with %v", err)
			}
			if len(got) < n {
				t.Fatalf("%d outputs, want %d", len(got), n)
			}
			checkTotals(t, "output", lastValues(got), want)
			changelog := readCommitted(t, nil, addr, keys, 10*time.Second, state.ChangelogTopic(cfg.App.ID, "totals"))
			checkTotals(t, "changelog", lastValues(changelog), want)

			db, err := state.Open(state.Options{Dir: filepath.Join(cfg.App.StateDir, "stores"), AppID: cfg.App.ID})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			local := map[string][]byte{}
			for p := range int32(6) {
				kvs, err := db.Scan("totals", p, nil, 0)
				if err != nil {
					t.Fatal(err)
				}
				for _, kv := range kvs {
					if !processors.IsInternalKey(kv.Key) {
						local[string(kv.Key)] = kv.Value
					}
				}
			}
			checkTotals(t, "local state", local, want)
		})
	}
}
