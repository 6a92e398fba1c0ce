package devgen

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/testbroker"
)

var allTopics = []string{"orders", "payments", "inventory", "customers"}

// newCluster gives the test a cluster (Apache Kafka with VELTRIX_TEST_KAFKA,
// else kfake) with the topics asked for, and returns its addresses.
func newCluster(t *testing.T, opts ...testbroker.Option) []string {
	t.Helper()
	return testbroker.New(t, opts...).Addrs()
}

func newClient(t *testing.T, addrs []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func TestRunProducesEverything(t *testing.T) {
	const limit, customers = 3000, 100
	addrs := newCluster(t, testbroker.WithTopics(6, allTopics...))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	opts := []Option{WithSeed(11), WithRate(0), WithLimit(limit), WithCustomers(customers)}
	g := mustNew(t, opts...)
	if err := g.Run(ctx, newClient(t, addrs)); err != nil {
		t.Fatalf("Run: %v", err)
	}

	// The same options give the same stream: count what should be there.
	twin := mustNew(t, opts...)
	want := map[string]int64{"customers": customers}
	var wantMalformed int64
	for range limit {
		ev := twin.Next()
		want[ev.Topic]++
		if ev.Malformed {
			wantMalformed++
		}
	}
	st := g.Stats()
	for _, topic := range allTopics {
		if st.Produced[topic] != want[topic] {
			t.Errorf("stats: %d produced to %s, want %d", st.Produced[topic], topic, want[topic])
		}
	}
	if st.Generated != limit || st.Malformed != wantMalformed || st.Failed != 0 || st.Total() != limit+customers {
		t.Errorf("stats %+v, want %d generated, %d malformed, %d in all", st, limit, wantMalformed, limit+customers)
	}

	// Read everything back.
	consumer := newClient(t, addrs, kgo.ConsumeTopics(allTopics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := map[string]int64{}
	partOf := map[string]map[string]int32{"orders": {}, "payments": {}}
	for n := int64(0); n < limit+customers; {
		fs := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records: %v", n, limit+customers, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			n++
			got[r.Topic]++
			if m := partOf[r.Topic]; m != nil {
				m[string(r.Key)] = r.Partition
			}
		})
	}
	for _, topic := range allTopics {
		if got[topic] != want[topic] {
			t.Errorf("read %d records from %s, want %d", got[topic], topic, want[topic])
		}
	}
	// Payments and orders of one order share a partition.
	shared := 0
	for key, p := range partOf["payments"] {
		if op, ok := partOf["orders"][key]; ok {
			shared++
			if op != p {
				t.Fatalf("order %s: orders partition %d, payments partition %d", key, op, p)
			}
		}
	}
	if shared < 100 {
		t.Errorf("only %d orders have payments", shared)
	}
}

func TestRunPacesByClock(t *testing.T) {
	addrs := newCluster(t, testbroker.WithTopics(1, allTopics...))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clk := newFakeClock()
	g := mustNew(t, WithRate(500), WithLimit(1000), WithCustomers(10), WithClock(clk))
	if err := g.Run(ctx, newClient(t, addrs)); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if elapsed, _ := clk.elapsed(); elapsed != 999*2*time.Millisecond {
		t.Errorf("1000 events at 500/s took %v of clock time, want 1.998s", elapsed)
	}
	if st := g.Stats(); st.Total() != 1010 {
		t.Errorf("%d records acknowledged, want 1010", st.Total())
	}
}

func TestRunStopsWithContext(t *testing.T) {
	addrs := newCluster(t, testbroker.WithTopics(3, allTopics...))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g := mustNew(t, WithRate(0), WithCustomers(10))
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, newClient(t, addrs)) }()

	deadline := time.Now().Add(20 * time.Second)
	for g.Stats().Produced["orders"] < 500 {
		if time.Now().After(deadline) {
			t.Fatalf("no progress: %+v", g.Stats())
		}
		time.Sleep(5 * time.Millisecond) // polling for progress, not waiting a fixed time
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestRunReturnsProduceError(t *testing.T) {
	addrs := newCluster(t, testbroker.WithTopics(1, "orders", "payments", "customers")) // no inventory
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g := mustNew(t, WithRate(0), WithLimit(1_000_000), WithCustomers(10))
	err := g.Run(ctx, newClient(t, addrs, kgo.UnknownTopicRetries(1), kgo.MetadataMinAge(10*time.Millisecond)))
	if !errors.Is(err, kerr.UnknownTopicOrPartition) || !strings.Contains(err.Error(), `"inventory"`) {
		t.Fatalf("Run = %v, want an unknown topic error naming inventory", err)
	}
	if st := g.Stats(); st.Failed == 0 || st.Generated == 1_000_000 {
		t.Errorf("stats after the failure: %+v", st)
	}
}
