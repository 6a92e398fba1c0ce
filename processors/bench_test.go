package processors_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/pkg/expr"
	"github.com/veltrix/veltrix/processors"
)

// benchOrder is a typical ~230-byte order event, as the benchmark program
// generates them.
const benchOrder = `{"id":"o-123456","type":"order.created","customer_id":"c-4242","total":129.5,"currency":"EUR","items":[{"sku":"sku-1","qty":2,"price":40.25},{"sku":"sku-9","qty":1,"price":49}],"created_at":"2026-01-02T03:04:05Z"}`

// BenchmarkDecodeFilter decodes one record and evaluates a filter over two
// of its fields: the per-record cost of the most common rule's first step.
func BenchmarkDecodeFilter(b *testing.B) {
	prg, rec := benchFilter(b)
	for b.Loop() {
		ev, err := processors.Decode(rec)
		if err != nil {
			b.Fatal(err)
		}
		ok, err := prg.Bool(ev)
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkDecodeFilterReuse is BenchmarkDecodeFilter with one Event reused
// (DecodeInto), as Topology.Process does.
func BenchmarkDecodeFilterReuse(b *testing.B) {
	prg, rec := benchFilter(b)
	var ev processors.Event
	for b.Loop() {
		if err := processors.DecodeInto(&ev, rec); err != nil {
			b.Fatal(err)
		}
		ok, err := prg.Bool(&ev)
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

// benchFilter compiles the benchmarks' filter and makes their record; it
// starts the timed part.
func benchFilter(b *testing.B) (*expr.Program, *kgo.Record) {
	env, err := expr.NewEnv()
	if err != nil {
		b.Fatal(err)
	}
	prg, derr := env.Compile(`event.type == "order.created" && event.total >= 10.0`, diag.Pos{})
	if derr != nil {
		b.Fatal(derr)
	}
	rec := &kgo.Record{Topic: "orders", Key: []byte("o-123456"), Value: []byte(benchOrder)}
	b.ReportAllocs()
	b.SetBytes(int64(len(rec.Value)))
	return prg, rec
}
