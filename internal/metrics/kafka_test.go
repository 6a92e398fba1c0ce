package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/metrics"
)

// Each client has hooks of its own, as each transactional session makes a
// new client: the connections of the last client, which may still report
// after it closed, must not race with the start of the next (make test runs
// this with -race; hooks shared by the clients did), and the
// veltrix_kafka_* series count the open client's requests.
func TestKafkaHooksServeOneClientEach(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	const name = "veltrix_kafka_produce_records_total"
	ctx := context.Background()
	for n := 1; n <= 20; n++ {
		cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DefaultProduceTopic("t"), kgo.WithHooks(m.KafkaHooks()))
		if err != nil {
			t.Fatal(err)
		}
		for range n {
			cl.Produce(ctx, &kgo.Record{Value: []byte("x")}, nil)
		}
		if err := cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		// The client reports written batches from a goroutine of their
		// own, after the records' results.
		deadline := time.Now().Add(10 * time.Second)
		for got, ok := counterSum(t, reg, name); !ok || got != float64(n); got, ok = counterSum(t, reg, name) {
			if time.Now().After(deadline) {
				t.Fatalf("client %d: %s = %v (served: %v), want %d", n, name, got, ok, n)
			}
			time.Sleep(time.Millisecond)
		}
		cl.Close()
	}
	if _, ok := counterSum(t, reg, name); ok {
		t.Errorf("%s is still served after the last client closed", name)
	}
}

// counterSum adds up a counter's series; ok is false if reg does not serve it.
func counterSum(t *testing.T, reg *prometheus.Registry, name string) (sum float64, ok bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			sum += s.GetCounter().GetValue()
		}
		return sum, true
	}
	return 0, false
}
