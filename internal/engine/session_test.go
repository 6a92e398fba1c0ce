package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/engine"
	"github.com/veltrix/veltrix/internal/metrics"
)

// fence takes over the engine's transactional id, as a zombie's successor
// does: the broker bumps the producer epoch, and the engine's next
// transaction fails with a fencing error.
func fence(t *testing.T, brokers, txnID string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.TransactionalID(txnID), kgo.DefaultProduceTopic("fence"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("fencing producer: %v", err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatalf("fencing producer: %v", err)
	}
}

// A fenced producer ends the transactional session, not the instance: the
// open transaction is aborted, the tasks are restored, a new session goes
// on, and the outputs stay exactly once.
func TestFencedProducerStartsANewSession(t *testing.T) {
	addr := newCluster(t, "orders", "fence")
	recs, created := orders(6_000)
	produce(t, addr, recs[:3_000])
	cfg, topo := loadTopology(t, addr, "exactly_once", routeRules)
	m := metrics.New(prometheus.NewRegistry())
	r := start(engine.New(cfg, topo, engine.WithMetrics(m)))
	readCommitted(t, r, addr, 100, time.Minute, "orders.high", "orders.normal")

	fence(t, addr, engine.TransactionalID(cfg))
	produce(t, addr, recs[3_000:])
	got := readCommitted(t, r, addr, len(created), 2*time.Minute, "orders.high", "orders.normal")
	if err := r.stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	checkRouted(t, got, created)
	if n := testutil.ToFloat64(m.SessionRestarts); n < 1 {
		t.Errorf("veltrix_session_restarts_total = %v after the producer was fenced, want >= 1", n)
	}
}

// The records of a repartition topic that a commit consumed are deleted
// (DeleteRecords), as Kafka Streams purges its repartition topics.
func TestConsumedRepartitionRecordsAreDeleted(t *testing.T) {
	addr := newCluster(t, "orders")
	recs, created := orders(2_000)
	produce(t, addr, recs)
	cfg, topo := loadTopology(t, addr, "exactly_once", `rules:
  - name: by-customer
    from: orders
    steps:
      - filter: event.type == "order.created"
      - rekey: event.customer_id
      - to: orders.by-customer
`)
	r := start(engine.New(cfg, topo, engine.WithPurgeInterval(0)))
	got := readCommitted(t, r, addr, len(created), time.Minute, "orders.by-customer")
	if len(got) != len(created) {
		t.Fatalf("%d outputs, want %d", len(got), len(created))
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	repartition := cfg.App.ID + ".by-customer.repartition"
	deadline := time.Now().Add(30 * time.Second)
	for {
		starts, err := adm.ListStartOffsets(context.Background(), repartition)
		ends, err2 := adm.ListEndOffsets(context.Background(), repartition)
		if err == nil && err2 == nil {
			var start, end int64
			starts.Each(func(o kadm.ListedOffset) { start += o.Offset })
			ends.Each(func(o kadm.ListedOffset) { end += o.Offset })
			// Every record went through the repartition topic; each
			// partition keeps at most its commit markers and the records
			// of the last commit.
			if end >= int64(len(created)) && start >= int64(len(created))/2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("repartition topic %s: start offsets sum to %d of %d: consumed records were not deleted", repartition, start, end)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := r.stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
}
