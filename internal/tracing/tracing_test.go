package tracing_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/topology"
	"github.com/veltrix/veltrix/internal/tracing"
	"github.com/veltrix/veltrix/testdriver"
)

// rules: two rules with outputs (one of them rekeys, so its record goes
// through a repartition topic before its output), one that sends every
// order to the DLQ, and one that filters every order out.
const rules = `
app: {id: shop}
rules:
  - name: big
    from: orders
    steps:
      - filter: event.total >= 100.0
      - to: orders.big
  - name: per-customer
    from: orders
    steps:
      - rekey: event.customer_id
      - set: {seen: 'true'}
      - to: orders.per-customer
  - name: strict
    from: orders
    on_error: dlq
    steps:
      - filter: event.nope > 1
      - to: orders.never
  - name: none
    from: orders
    steps:
      - filter: event.total < 0.0
      - to: orders.negative
`

// topo loads and builds src, as veltrix run does.
func topo(t testing.TB, src string) *topology.Topology {
	t.Helper()
	path := filepath.Join(t.TempDir(), "veltrix.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, config.WithEnv(func(string) (string, bool) { return "", false }))
	if err != nil {
		t.Fatal(err)
	}
	top, err := topology.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return top
}

func noEnv(string) (string, bool) { return "", false }

// parent is an upstream span: the traceparent a producer wrote.
var parent = trace.NewSpanContext(trace.SpanContextConfig{
	TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
	SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
	TraceFlags: trace.FlagsSampled,
})

const parentHeader = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// traceparent returns the record's traceparent headers.
func traceparents(r testdriver.Record) []string {
	var out []string
	for _, h := range r.Headers {
		if h.Key == tracing.HeaderTraceparent {
			out = append(out, string(h.Value))
		}
	}
	return out
}

func TestRecordTraceReachesOutputsAndDLQ(t *testing.T) {
	tests := []struct {
		name    string
		ratio   float64
		random  float64 // what the sampling draw returns
		headers []kgo.RecordHeader
		traced  bool   // spans are exported
		trace   string // the outputs' trace id; "" for a new one (traced) or none
		flags   string // the outputs' trace flags, when they have a traceparent
	}{
		{name: "continues a sampled traceparent", ratio: 0.01, random: 0.99,
			headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte(parentHeader)}, {Key: "tracestate", Value: []byte("vendor=x")}},
			traced:  true, trace: parent.TraceID().String(), flags: "01"},
		{name: "starts a trace for a sampled record", ratio: 0.5, random: 0.1, traced: true, flags: "01"},
		{name: "ratio 1 traces every record", ratio: 1, random: 0.999, traced: true, flags: "01"},
		{name: "leaves an unsampled record alone", ratio: 0.5, random: 0.7},
		{name: "propagates an unsampled traceparent without recording",
			ratio: 1, headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")}},
			trace: parent.TraceID().String(), flags: "00"},
		{name: "a malformed traceparent is a record without one, passed through", ratio: 0.5, random: 0.7,
			headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-zz-00f067aa0ba902b7-01")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			tr, err := tracing.New(t.Context(), config.Tracing{SampleRatio: tt.ratio},
				tracing.WithExporter(exp), tracing.WithEnv(noEnv), tracing.WithRandom(func() float64 { return tt.random }))
			if err != nil || tr == nil {
				t.Fatalf("New = %v, %v", tr, err)
			}
			d := testdriver.New(tr.Apply(topo(t, rules)))
			in := testdriver.Record{Topic: "orders", Key: []byte("o-1"),
				Value: []byte(`{"id":"o-1","customer_id":"c-1","total":250}`), Headers: tt.headers}
			if err := d.Pipe(in); err != nil {
				t.Fatal(err)
			}
			outs := d.Outputs()
			topics := []string{}
			for _, o := range outs {
				topics = append(topics, o.Topic)
			}
			slices.Sort(topics)
			if want := []string{"orders.big", "orders.per-customer", "shop.dlq"}; !slices.Equal(topics, want) {
				t.Fatalf("outputs to %v, want %v", topics, want)
			}

			wantTrace := tt.trace
			spans := exp.GetSpans()
			if tt.traced && wantTrace == "" && len(spans) > 0 {
				wantTrace = spans[0].SpanContext.TraceID().String()
			}
			for _, o := range outs {
				tps := traceparents(o)
				if wantTrace == "" { // untraced: headers pass through as they came
					if passed := traceparents(in); !slices.Equal(tps, passed) {
						t.Errorf("%s: traceparent %q on the output of an untraced record, want the input's %q", o.Topic, tps, passed)
					}
					continue
				}
				if len(tps) != 1 {
					t.Errorf("%s: traceparent headers %q, want one", o.Topic, tps)
					continue
				}
				parts := strings.Split(tps[0], "-")
				if len(parts) != 4 || parts[1] != wantTrace || parts[3] != tt.flags {
					t.Errorf("%s: traceparent %s, want trace %s flags %s", o.Topic, tps[0], wantTrace, tt.flags)
				}
				if tt.traced && !slices.ContainsFunc(spans, func(s tracetest.SpanStub) bool { return s.SpanContext.SpanID().String() == parts[2] }) {
					t.Errorf("%s: traceparent %s names no exported span", o.Topic, tps[0])
				}
				if o.Topic == "shop.dlq" {
					if code, _ := o.Header(topology.HeaderErrorCode); code == "" {
						t.Errorf("the DLQ record lost its error headers: %v", o.Headers)
					}
				}
			}
			if !tt.traced {
				if len(spans) != 0 {
					t.Errorf("%d spans exported for an unsampled record", len(spans))
				}
				return
			}
			checkSpans(t, spans, wantTrace, len(tt.headers) > 0)
		})
	}
}

// checkSpans checks the spans of the record piped through rules: a process
// span for the record (a child of the upstream span when continued) with a
// span per rule under it, and, for the rekeyed rule, a process span of the
// repartition record under that rule's span with the rest of the rule under
// it. All in one trace.
func checkSpans(t *testing.T, spans tracetest.SpanStubs, traceID string, continued bool) {
	t.Helper()
	byName := map[string][]tracetest.SpanStub{}
	for _, s := range spans {
		if s.SpanContext.TraceID().String() != traceID {
			t.Errorf("span %q is in trace %s, want %s", s.Name, s.SpanContext.TraceID(), traceID)
		}
		byName[s.Name] = append(byName[s.Name], s)
	}
	counts := map[string]int{}
	for name, ss := range byName {
		counts[name] = len(ss)
	}
	want := map[string]int{"process orders": 1, "process shop.per-customer.repartition": 1,
		"rule big": 1, "rule per-customer": 2, "rule strict": 1, "rule none": 1}
	if len(counts) != len(want) {
		t.Fatalf("spans %v, want %v", counts, want)
	}
	for name, n := range want {
		if counts[name] != n {
			t.Fatalf("spans %v, want %v", counts, want)
		}
	}
	rec := byName["process orders"][0]
	if continued && (rec.Parent.SpanID() != parent.SpanID() || !rec.Parent.IsRemote()) {
		t.Errorf("the record's span has parent %v, want the upstream span %v", rec.Parent.SpanID(), parent.SpanID())
	}
	if !continued && rec.Parent.IsValid() {
		t.Errorf("a new trace's record span has a parent %v", rec.Parent.SpanID())
	}
	if rec.SpanKind != trace.SpanKindConsumer {
		t.Errorf("record span kind %v, want consumer", rec.SpanKind)
	}
	attrs := func(s tracetest.SpanStub) map[string]string {
		m := map[string]string{}
		for _, kv := range s.Attributes {
			m[string(kv.Key)] = kv.Value.String()
		}
		return m
	}
	outcomes := map[string]string{"big": "matched", "strict": "dlq", "none": "filtered"}
	for rule, outcome := range outcomes {
		s := byName["rule "+rule][0]
		a := attrs(s)
		if s.Parent.SpanID() != rec.SpanContext.SpanID() {
			t.Errorf("rule %s: parent %v, want the record's span", rule, s.Parent.SpanID())
		}
		want := map[string]string{"veltrix.rule": rule, "veltrix.outcome": outcome, "messaging.destination.name": "orders",
			"messaging.destination.partition.id": "0", "messaging.kafka.offset": "0", "messaging.system": "kafka"}
		for k, v := range want {
			if a[k] != v {
				t.Errorf("rule %s: attribute %s=%q, want %q (all: %v)", rule, k, a[k], v, a)
			}
		}
	}
	if a := attrs(byName["rule strict"][0]); a["veltrix.error.code"] != "VX5003" || byName["rule strict"][0].Status.Description != "VX5003" {
		t.Errorf("the DLQ rule's span has code %q, status %+v", a["veltrix.error.code"], byName["rule strict"][0].Status)
	}
	// The rekeyed rule: its first stage writes the repartition record,
	// whose processing continues from that stage's span.
	var first, second tracetest.SpanStub
	for _, s := range byName["rule per-customer"] {
		if attrs(s)["messaging.destination.name"] == "orders" {
			first = s
		} else {
			second = s
		}
	}
	rp := byName["process shop.per-customer.repartition"][0]
	if rp.Parent.SpanID() != first.SpanContext.SpanID() || second.Parent.SpanID() != rp.SpanContext.SpanID() {
		t.Errorf("the repartition record's span is not under the rule's first stage, or the second stage not under it")
	}
}

// A record that is not sampled costs the tracer no allocation.
func TestUnsampledRecordAllocatesNothing(t *testing.T) {
	tr, err := tracing.New(t.Context(), config.Tracing{SampleRatio: 0.001},
		tracing.WithExporter(tracetest.NewInMemoryExporter()), tracing.WithEnv(noEnv), tracing.WithRandom(func() float64 { return 0.5 }))
	if err != nil {
		t.Fatal(err)
	}
	rec := &kgo.Record{Topic: "orders", Value: []byte(`{}`), Headers: []kgo.RecordHeader{{Key: "source", Value: []byte("web")}}}
	n := testing.AllocsPerRun(200, func() {
		if tr.Record(rec) != nil {
			t.Fatal("an unsampled record is traced")
		}
	})
	if n != 0 {
		t.Errorf("an unsampled record allocates %v times, want 0", n)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name  string
		ratio float64
		env   map[string]string
		off   bool
		err   error
	}{
		{name: "ratio 0 is off", ratio: 0, off: true},
		{name: "OTEL_SDK_DISABLED", ratio: 1, env: map[string]string{"OTEL_SDK_DISABLED": "true"}, off: true},
		{name: "OTLP over HTTP", ratio: 1, env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}},
		{name: "no exporter", ratio: 1, env: map[string]string{"OTEL_TRACES_EXPORTER": "none"}},
		{name: "gRPC", ratio: 1, env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, err: tracing.ErrUnsupported},
		{name: "traces protocol wins", ratio: 1, env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, err: tracing.ErrUnsupported},
		{name: "zipkin", ratio: 1, env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, err: tracing.ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			tr, err := tracing.New(t.Context(), config.Tracing{SampleRatio: tt.ratio}, tracing.WithEnv(env))
			defer func() {
				if err := tr.Shutdown(context.Background()); err != nil {
					t.Error(err)
				}
			}()
			switch {
			case tt.err != nil:
				if !errors.Is(err, tt.err) {
					t.Fatalf("New = %v, want %v", err, tt.err)
				}
			case err != nil:
				t.Fatal(err)
			case (tr == nil) != tt.off:
				t.Fatalf("New = %v, want off %v", tr, tt.off)
			}
			top := topo(t, rules)
			if got := tr.Apply(top); (got.Tracer() == nil) != (tr == nil) {
				t.Errorf("Apply: tracer %v", got.Tracer())
			}
		})
	}
}

var _ sdktrace.SpanExporter = (*tracetest.InMemoryExporter)(nil)
