package tracing_test

import (
	"compress/gzip"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/tracing"
	"github.com/veltrix/veltrix/testdriver"
)

// receiver is a small OTLP/HTTP trace receiver: it decodes the protobuf
// requests posted to /v1/traces.
type receiver struct {
	mu       sync.Mutex
	spans    []*tracepb.Span
	resource map[string]string
	headers  http.Header
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want a protobuf POST to /v1/traces", http.StatusBadRequest)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.headers = r.Header.Clone()
	for _, rs := range req.ResourceSpans {
		rc.resource = map[string]string{}
		for _, kv := range rs.Resource.GetAttributes() {
			rc.resource[kv.Key] = kv.Value.GetStringValue()
		}
		for _, ss := range rs.ScopeSpans {
			rc.spans = append(rc.spans, ss.Spans...)
		}
	}
	resp, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(resp)
}

// The spans of a traced record reach an OTLP/HTTP endpoint named by the
// standard variables, with the resource and headers they set.
func TestExportOverOTLPHTTP(t *testing.T) {
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=shop-7")
	t.Setenv("OTEL_SERVICE_NAME", "orders-pipeline")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")

	tr, err := tracing.New(t.Context(), config.Tracing{SampleRatio: 1}, tracing.WithAppID("shop"))
	if err != nil {
		t.Fatal(err)
	}
	d := testdriver.New(tr.Apply(topo(t, rules)))
	if err := d.Pipe(testdriver.Record{Topic: "orders", Key: []byte("o-1"), Value: []byte(`{"customer_id":"c-1","total":250}`)}); err != nil {
		t.Fatal(err)
	}
	// Shutdown exports what the batcher holds.
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}

	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.spans) != 7 { // 2 records (input, repartition) and 5 rule spans
		t.Fatalf("the receiver got %d spans, want 7", len(rc.spans))
	}
	var out testdriver.Record
	for _, o := range d.Outputs() {
		if o.Topic == "orders.big" {
			out = o
		}
	}
	tp, _ := out.Header("traceparent")
	parts := strings.Split(tp, "-")
	if len(parts) != 4 {
		t.Fatalf("output traceparent %q", tp)
	}
	found := false
	for _, s := range rc.spans {
		if hex.EncodeToString(s.TraceId) != parts[1] {
			t.Errorf("span %q in trace %x, the output's is %s", s.Name, s.TraceId, parts[1])
		}
		if hex.EncodeToString(s.SpanId) == parts[2] {
			found = true
			if s.Name != "rule big" {
				t.Errorf("the output names span %q, want rule big", s.Name)
			}
		}
	}
	if !found {
		t.Errorf("the output's traceparent %s names no exported span", tp)
	}
	for k, v := range map[string]string{"service.name": "orders-pipeline", "deployment.environment": "test", "veltrix.app.id": "shop"} {
		if rc.resource[k] != v {
			t.Errorf("resource %s=%q, want %q (all: %v)", k, rc.resource[k], v, rc.resource)
		}
	}
	if got := rc.headers.Get("X-Tenant"); got != "shop-7" {
		t.Errorf("header x-tenant %q, want shop-7 (OTEL_EXPORTER_OTLP_HEADERS)", got)
	}
}
