package tracing_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/tracing"
	"github.com/veltrix/veltrix/processors"
)

// sink is a task that drops outputs.
type sink struct{ n int }

func (s *sink) Emit(processors.Output)        { s.n++ }
func (s *sink) Now() time.Time                { return time.Time{} }
func (s *sink) Store(string) processors.Store { return nil }
func (s *sink) StreamTime() time.Time         { return time.Time{} }

// BenchmarkProcess runs an order through the four rules of rules (five
// spans when traced) with tracing off, on but not sampled, and on for every
// record (spans to a no-op exporter).
func BenchmarkProcess(b *testing.B) {
	for _, bc := range []struct {
		name   string
		ratio  float64
		random float64
	}{{"off", 0, 0}, {"unsampled", 0.01, 0.5}, {"sampled", 1, 0}} {
		b.Run(bc.name, func(b *testing.B) {
			tr, err := tracing.New(b.Context(), config.Tracing{SampleRatio: bc.ratio}, tracing.WithEnv(noEnv),
				tracing.WithExporter(tracetest.NewNoopExporter()), tracing.WithRandom(func() float64 { return bc.random }))
			if err != nil {
				b.Fatal(err)
			}
			top := tr.Apply(topo(b, rules))
			tk := &sink{}
			rec := &kgo.Record{Topic: "orders", Key: []byte("o-1"), Value: []byte(`{"id":"o-1","customer_id":"c-1","total":250}`)}
			b.ReportAllocs()
			for b.Loop() {
				if err := top.Process(tk, rec, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if err := tr.Shutdown(b.Context()); err != nil {
				b.Fatal(err)
			}
		})
	}
}
