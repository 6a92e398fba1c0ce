// Package httpapi serves Veltrix's HTTP endpoints: /metrics (Prometheus),
// /healthz (the process is alive), /readyz (assigned and restored),
// /v1/topology, /v1/rules, the interactive queries /v1/stores/... and a
// small status page at /.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/veltrix/veltrix/topology"
)

// Source is what the endpoints report on: readiness and running totals.
type Source interface {
	Ready() bool
	Status() any // JSON-encodable running totals
}

// Handler returns the HTTP handler. When src also implements Stores, the
// interactive queries /v1/stores/{store}/{key} and /v1/stores/{store} are
// served too.
func Handler(gatherer prometheus.Gatherer, topo *topology.Topology, src Source) http.Handler {
	mux := http.NewServeMux()
	if st, ok := src.(Stores); ok {
		sh := newStoreHandler(st)
		mux.HandleFunc("GET /v1/stores/{store}/{key}", sh.get)
		mux.HandleFunc("GET /v1/stores/{store}", sh.scan)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !src.Ready() {
			http.Error(w, "not ready: joining the group or restoring state", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("GET /v1/topology", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := topo.Describe(w, "json"); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("GET /v1/rules", func(w http.ResponseWriter, _ *http.Request) {
		type rule struct {
			Name    string   `json:"name"`
			From    []string `json:"from"`
			Outputs []string `json:"outputs"`
			OnError string   `json:"on_error"`
			DLQ     string   `json:"dlq,omitempty"`
		}
		rules := make([]rule, 0, len(topo.Rules))
		for _, r := range topo.Rules {
			rules = append(rules, rule{Name: r.Name, From: r.From, Outputs: r.Outputs, OnError: r.OnError, DLQ: r.DLQ})
		}
		writeJSON(w, rules)
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"ready": src.Ready(), "status": src.Status()})
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		st, _ := json.MarshalIndent(src.Status(), "", "  ")
		_ = statusPage.Execute(w, map[string]any{"App": topo.AppID, "Ready": src.Ready(), "Status": string(st), "Rules": topo.Rules})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

var statusPage = template.Must(template.New("status").Parse(`<!doctype html>
<title>veltrix {{.App}}</title>
<h1>veltrix: {{.App}}</h1>
<p>ready: {{.Ready}}</p>
<h2>Rules</h2>
<ul>{{range .Rules}}<li><b>{{.Name}}</b>: {{.From}} &rarr; {{.Outputs}} (on_error {{.OnError}})</li>{{end}}</ul>
<h2>Totals</h2>
<pre>{{.Status}}</pre>
<p><a href="/metrics">metrics</a> · <a href="/v1/topology">topology</a> · <a href="/v1/rules">rules</a> · <a href="/readyz">readyz</a></p>
`))

// Serve serves h on ln until ctx ends, then shuts down gracefully.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	log.Info("http listening", "addr", ln.Addr().String())
	select {
	case err := <-done:
		return fmt.Errorf("http: %w", err)
	case <-ctx.Done():
	}
	// Requests in flight get a moment to finish; connections still open
	// after it are closed: a slow client must not hold the process up.
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("http: closing connections still open at shutdown", "err", err)
		_ = srv.Close()
	}
	return nil
}
