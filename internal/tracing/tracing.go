// Package tracing follows records through the rules with OpenTelemetry: it
// implements topology.Tracer.
//
// A record whose headers hold a W3C traceparent continues that trace; any
// other record starts a trace with probability tracing.sample_ratio. A
// traced record gets a consumer span "process <topic>" with one child span
// "rule <name>" per rule that reads it (topic, partition, offset, rule,
// outcome and error code as attributes), and each record a rule writes
// (outputs, repartition records, DLQ records) carries the rule span's
// traceparent, so that downstream consumers, and the rest of a rekeyed
// rule, continue the trace.
//
// Spans go to an OTLP/HTTP endpoint configured by the standard OTEL_*
// environment variables (OTEL_EXPORTER_OTLP_ENDPOINT,
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS,
// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_*, ...), batched
// off the processing path: a slow or absent collector drops spans, it never
// slows records down.
//
// Off (sample_ratio 0, the default, or OTEL_SDK_DISABLED=true), New returns
// a nil *Tracer, whose Apply leaves the topology without a tracer: records
// then cost nothing more than a nil check.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/topology"
	"github.com/veltrix/veltrix/pkg/diag"
)

// ScopeName is the instrumentation scope of Veltrix's spans.
const ScopeName = "github.com/veltrix/veltrix"

// Span attribute keys. The messaging.* keys follow OpenTelemetry's
// messaging semantic conventions for Kafka.
const (
	AttrSystem    = attribute.Key("messaging.system")
	AttrTopic     = attribute.Key("messaging.destination.name")
	AttrPartition = attribute.Key("messaging.destination.partition.id")
	AttrOffset    = attribute.Key("messaging.kafka.offset")
	AttrRule      = attribute.Key("veltrix.rule")
	AttrOutcome   = attribute.Key("veltrix.outcome")
	AttrErrorCode = attribute.Key("veltrix.error.code")
	AttrAppID     = attribute.Key("veltrix.app.id")
)

// Header names of the W3C trace context.
const (
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
)

// ErrUnsupported marks an OTEL_* setting this package does not implement.
var ErrUnsupported = errors.New("tracing: unsupported setting")

// Tracer traces records through the rules; it implements topology.Tracer.
// A nil *Tracer is tracing turned off. It is safe for concurrent use.
type Tracer struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
	ratio    float64
	sample   func() float64
	prop     propagation.TraceContext
}

// Option configures New.
type Option func(*options)

type options struct {
	exporter sdktrace.SpanExporter
	env      func(string) (string, bool)
	appID    string
	sample   func() float64
}

// WithExporter sends spans to exp, each as it ends, instead of the OTLP
// exporter the environment configures (tests use the SDK's in-memory
// exporter).
func WithExporter(exp sdktrace.SpanExporter) Option { return func(o *options) { o.exporter = exp } }

// WithEnv sets how OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER and
// OTEL_EXPORTER_OTLP_*PROTOCOL are looked up (default os.LookupEnv); the
// OTLP exporter and the resource read the rest of the OTEL_* variables from
// the process environment.
func WithEnv(lookup func(string) (string, bool)) Option { return func(o *options) { o.env = lookup } }

// WithAppID adds the application id (app.id) to the resource of every
// span, as veltrix.app.id.
func WithAppID(id string) Option { return func(o *options) { o.appID = id } }

// WithRandom sets the source of the sampling decision for records with no
// traceparent: a record is traced when it returns less than the sample
// ratio (default math/rand/v2's Float64).
func WithRandom(f func() float64) Option { return func(o *options) { o.sample = f } }

// New returns the tracer cfg asks for, or nil when tracing is off
// (sample_ratio 0, or OTEL_SDK_DISABLED=true). OTEL_TRACES_EXPORTER may be
// otlp (the default) or none (trace context is still propagated, no span is
// exported); the OTLP protocol must be http/protobuf (the default): other
// values are errors marked ErrUnsupported. Call Shutdown to flush the spans
// still queued.
func New(ctx context.Context, cfg config.Tracing, opts ...Option) (*Tracer, error) {
	o := options{env: os.LookupEnv, sample: rand.Float64}
	for _, opt := range opts {
		opt(&o)
	}
	if cfg.SampleRatio <= 0 {
		return nil, nil
	}
	if v, _ := o.env("OTEL_SDK_DISABLED"); strings.EqualFold(strings.TrimSpace(v), "true") {
		return nil, nil
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", "veltrix")}
	if o.appID != "" {
		attrs = append(attrs, AttrAppID.String(o.appID))
	}
	// Later detectors win: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
	// override the defaults above.
	res, err := resource.New(ctx, resource.WithAttributes(attrs...), resource.WithTelemetrySDK(), resource.WithHost(), resource.WithFromEnv())
	if err != nil && res == nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	popts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		// Roots are sampled by Record (cheaply, before any span exists);
		// a remote parent's sampled flag decides for the records that
		// continue a trace.
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
	}
	if o.exporter != nil {
		popts = append(popts, sdktrace.WithSyncer(o.exporter))
	} else {
		exp, err := otlpExporter(ctx, o.env)
		if err != nil {
			return nil, err
		}
		if exp != nil {
			popts = append(popts, sdktrace.WithBatcher(exp))
		}
	}
	tp := sdktrace.NewTracerProvider(popts...)
	return &Tracer{provider: tp, tracer: tp.Tracer(ScopeName), ratio: cfg.SampleRatio, sample: o.sample}, nil
}

// otlpExporter returns the exporter OTEL_TRACES_EXPORTER names: OTLP over
// HTTP, configured by the OTEL_EXPORTER_OTLP_* variables, or nil for none.
func otlpExporter(ctx context.Context, env func(string) (string, bool)) (sdktrace.SpanExporter, error) {
	switch v, _ := env("OTEL_TRACES_EXPORTER"); strings.TrimSpace(v) {
	case "", "otlp":
	case "none":
		return nil, nil
	default:
		return nil, fmt.Errorf("%w: OTEL_TRACES_EXPORTER=%s (Veltrix exports otlp or none)", ErrUnsupported, v)
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		v, ok := env(name)
		if !ok || v == "" {
			continue
		}
		if v != "http/protobuf" {
			return nil, fmt.Errorf("%w: %s=%s (Veltrix sends OTLP as http/protobuf, to port 4318 by default)", ErrUnsupported, name, v)
		}
		break
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	return exp, nil
}

// Apply returns topo tracing with t, or topo itself when t is nil.
func (t *Tracer) Apply(topo *topology.Topology) *topology.Topology {
	if t == nil {
		return topo
	}
	return topo.WithTracer(t)
}

// Shutdown exports the spans still queued and stops the exporter, within
// ctx. It does nothing on a nil Tracer.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	if err := t.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}

// Record starts the trace of one record: the record's own trace when its
// headers hold a valid traceparent, else a new one for a sampled share of
// records. It returns nil for a record that is not traced.
func (t *Tracer) Record(rec *kgo.Record) topology.RecordSpan {
	ctx := context.Background()
	if hasTraceparent(rec.Headers) {
		ctx = t.prop.Extract(ctx, headers{h: &rec.Headers})
	}
	if !trace.SpanContextFromContext(ctx).IsValid() && (t.ratio < 1 && t.sample() >= t.ratio) {
		return nil
	}
	attrs := recordAttrs(rec)
	ctx, span := t.tracer.Start(ctx, "process "+rec.Topic, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attrs[:]...))
	return &recordSpan{t: t, ctx: ctx, span: span, attrs: attrs}
}

func recordAttrs(rec *kgo.Record) [4]attribute.KeyValue {
	return [4]attribute.KeyValue{
		AttrSystem.String("kafka"),
		AttrTopic.String(rec.Topic),
		AttrPartition.String(strconv.Itoa(int(rec.Partition))),
		AttrOffset.Int64(rec.Offset),
	}
}

// hasTraceparent reports whether hs holds a traceparent header, so that a
// record without one costs no extraction.
func hasTraceparent(hs []kgo.RecordHeader) bool {
	for _, h := range hs {
		if isTraceHeader(h.Key) {
			return true
		}
	}
	return false
}

func isTraceHeader(key string) bool {
	return strings.EqualFold(key, HeaderTraceparent) || strings.EqualFold(key, HeaderTracestate)
}

type recordSpan struct {
	t     *Tracer
	ctx   context.Context
	span  trace.Span
	attrs [4]attribute.KeyValue
}

func (r *recordSpan) Rule(rule string) topology.RuleSpan {
	attrs := append(r.attrs[:], AttrRule.String(rule))
	ctx, span := r.t.tracer.Start(r.ctx, "rule "+rule, trace.WithAttributes(attrs...))
	return &ruleSpan{t: r.t, ctx: ctx, span: span}
}

func (r *recordSpan) End() { r.span.End() }

type ruleSpan struct {
	t    *Tracer
	ctx  context.Context
	span trace.Span
}

// Inject copies hs without any trace context and adds the span's.
func (s *ruleSpan) Inject(hs []kgo.RecordHeader) []kgo.RecordHeader {
	out := make([]kgo.RecordHeader, 0, len(hs)+2)
	for _, h := range hs {
		if !isTraceHeader(h.Key) {
			out = append(out, h)
		}
	}
	s.t.prop.Inject(s.ctx, headers{h: &out})
	return out
}

func (s *ruleSpan) End(outcome topology.Outcome, code diag.Code) {
	if s.span.IsRecording() {
		s.span.SetAttributes(AttrOutcome.String(string(outcome)))
		if code != "" {
			s.span.SetAttributes(AttrErrorCode.String(string(code)))
			s.span.SetStatus(codes.Error, string(code))
		}
	}
	s.span.End()
}

// headers is a propagation.TextMapCarrier over Kafka record headers.
type headers struct{ h *[]kgo.RecordHeader }

func (c headers) Get(key string) string {
	for _, h := range *c.h {
		if strings.EqualFold(h.Key, key) {
			return string(h.Value)
		}
	}
	return ""
}

func (c headers) Set(key, value string) {
	*c.h = append(*c.h, kgo.RecordHeader{Key: key, Value: []byte(value)})
}

func (c headers) Keys() []string {
	keys := make([]string, len(*c.h))
	for i, h := range *c.h {
		keys[i] = h.Key
	}
	return keys
}

var _ topology.Tracer = (*Tracer)(nil)
