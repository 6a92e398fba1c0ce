package metrics_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/veltrix/veltrix/internal/metrics"
)

func TestMetricsFollowPrometheusNaming(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.RecordsConsumed.WithLabelValues("in").Inc()
	m.Transactions.WithLabelValues("commit").Inc()
	m.ProcessingLatency.WithLabelValues("r").Observe(0.001)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
}
