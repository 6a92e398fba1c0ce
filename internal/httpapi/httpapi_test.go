package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/httpapi"
	"github.com/veltrix/veltrix/internal/metrics"
	"github.com/veltrix/veltrix/internal/topology"
)

type source struct{ ready bool }

func (s *source) Ready() bool { return s.ready }
func (s *source) Status() any { return map[string]int{"consumed": 7} }

func testTopology(t *testing.T) *topology.Topology {
	t.Helper()
	var steps yaml.Node
	if err := yaml.Unmarshal([]byte("- filter: event.total > 10\n- to: out\n"), &steps); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{App: config.App{ID: "app"}, Rules: []*config.Rule{{
		Name: "r", From: []string{"in"}, Steps: steps.Content[0].Content, OnError: config.OnErrorDLQ, DLQ: "app.dlq",
	}}}
	topo, err := topology.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func get(t *testing.T, srv *httptest.Server, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.RuleRecords.WithLabelValues("r", "matched").Add(3)
	src := &source{}
	srv := httptest.NewServer(httpapi.Handler(reg, testTopology(t), src))
	defer srv.Close()

	for _, tc := range []struct {
		path, want string
		code       int
	}{
		{"/healthz", "ok", 200},
		{"/readyz", "not ready", 503},
		{"/metrics", `veltrix_rule_records_total{outcome="matched",rule="r"} 3`, 200},
		{"/v1/rules", `"on_error": "dlq"`, 200},
		{"/v1/topology", `"in"`, 200},
		{"/v1/status", `"consumed": 7`, 200},
		{"/", `<td class="name">r</td>`, 200},
		{"/nope", "404", 404},
	} {
		code, body := get(t, srv, tc.path)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s = %d %q, want %d containing %q", tc.path, code, body, tc.code, tc.want)
		}
	}
	src.ready = true
	if code, _ := get(t, srv, "/readyz"); code != 200 {
		t.Errorf("/readyz = %d once ready, want 200", code)
	}
	_, body := get(t, srv, "/v1/rules")
	var rules []map[string]any
	if err := json.Unmarshal([]byte(body), &rules); err != nil || len(rules) != 1 || rules[0]["name"] != "r" {
		t.Errorf("/v1/rules = %s (%v), want one rule r", body, err)
	}
}
