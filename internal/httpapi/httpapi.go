// Package httpapi serves Veltrix's HTTP endpoints: /metrics (Prometheus),
// /healthz (the process is alive), /livez (the processing loop is not
// stuck), /readyz (assigned and restored),
// /v1/topology, /v1/rules, /v1/status, POST /v1/reload, the interactive
// queries /v1/stores/... and the operator console at / (see console.go).
package httpapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/topology"
	"github.com/veltrix/veltrix/pkg/diag"
)

// Source is what the endpoints report on: readiness and running totals.
type Source interface {
	Ready() bool
	Status() any // JSON-encodable running totals
}

// Liveness is implemented by a Source that can tell whether its processing
// loop is stuck; /livez answers 503 with the reason when it is (and 200
// for a Source without it).
type Liveness interface {
	Live() (ok bool, reason string)
}

// Reloader is implemented by a Source whose configuration can be read
// again and applied while it runs (POST /v1/reload): it returns the running
// configuration's version, and an error (a diag list: its problems, or why
// a change needs a restart) when nothing changed.
type Reloader interface {
	Reload(ctx context.Context) (version string, err error)
}

// Rules is implemented by a Source whose rules can change while it runs
// (a reload): the endpoints and the console show the current ones.
type Rules interface {
	Rules() *topology.Topology
}

// Option configures Handler.
type Option func(*options)

type options struct {
	token        string
	maxQueries   int
	queryTimeout time.Duration
	peer         *http.Client

	// The console's (console.go).
	cfg     *config.Config
	dlq     DLQ
	version func() string
	log     *slog.Logger
	rules   func() *topology.Topology // the running rules (Rules, else Handler's topology)
}

// WithAuthToken requires "Authorization: Bearer <token>" on /v1/* and sends
// it on calls to other instances (default: none, /v1 is open). /metrics,
// /healthz and /readyz stay open; the console asks for the token once
// (a login form) and keeps a session cookie.
func WithAuthToken(token string) Option { return func(o *options) { o.token = token } }

// WithMaxQueries bounds the interactive queries served at once (default
// 16); a query over the bound is answered 503 with Retry-After at once.
func WithMaxQueries(n int) Option { return func(o *options) { o.maxQueries = n } }

// WithQueryTimeout bounds one interactive query, fan-out to other instances
// included (default 5s).
func WithQueryTimeout(d time.Duration) Option { return func(o *options) { o.queryTimeout = d } }

// Handler returns the HTTP handler. When src also implements Stores, the
// interactive queries /v1/stores/{store}/{key} and /v1/stores/{store} are
// served too.
func Handler(gatherer prometheus.Gatherer, topo *topology.Topology, src Source, opts ...Option) http.Handler {
	o := options{maxQueries: 16, queryTimeout: 5 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	o.rules = func() *topology.Topology { return topo }
	if r, ok := src.(Rules); ok {
		o.rules = r.Rules
	}
	mux := http.NewServeMux()
	if st, ok := src.(Stores); ok {
		sh := newStoreHandler(st, o)
		mux.HandleFunc("GET /v1/stores/{store}/{key}", sh.get)
		mux.HandleFunc("GET /v1/stores/{store}", sh.scan)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		if l, ok := src.(Liveness); ok {
			if live, reason := l.Live(); !live {
				http.Error(w, "not live: "+reason, http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "live")
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
		if err := o.rules().Describe(w, "json"); err != nil {
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
		topo := o.rules()
		rules := make([]rule, 0, len(topo.Rules))
		for _, r := range topo.Rules {
			rules = append(rules, rule{Name: r.Name, From: r.From, Outputs: r.Outputs, OnError: r.OnError, DLQ: r.DLQ})
		}
		writeJSON(w, rules)
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		st := map[string]any{"ready": src.Ready(), "status": src.Status()}
		if o.version != nil {
			st["config_version"] = o.version()
		}
		writeJSON(w, st)
	})
	if rl, ok := src.(Reloader); ok {
		mux.HandleFunc("POST /v1/reload", reloadHandler(rl))
	}
	var h http.Handler = mux
	if o.token != "" {
		h = requireToken(mux, o.token)
	}
	newConsole(o, gatherer, src, h).register(mux)
	return h
}

// reloadTimeout bounds a reload requested over HTTP.
const reloadTimeout = time.Minute

// reloadHandler serves POST /v1/reload: 200 with the new version when the
// reload was applied, 409 with the problems (and the running version) when
// it was not. A cross-site request from a browser is refused: without a
// token, /v1 is open, and a page elsewhere must not make an instance
// reload.
func reloadHandler(rl Reloader) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			jsonError(w, http.StatusForbidden, "cross-site reload refused")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), reloadTimeout)
		defer cancel()
		v, err := rl.Reload(ctx)
		if err == nil {
			writeJSON(w, map[string]any{"result": "applied", "config_version": v})
			return
		}
		body := map[string]any{"result": "not applied", "config_version": v, "error": err.Error()}
		if list := diag.AsList(err); list != nil {
			body["problems"] = list
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		_ = json.NewEncoder(w).Encode(body)
	}
}

// requireToken answers 401 to a /v1/* request without the bearer token.
func requireToken(next http.Handler, token string) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/") || r.URL.Path == "/v1" {
			got := []byte(r.Header.Get("Authorization"))
			if subtle.ConstantTimeCompare(got, want) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="veltrix"`)
				jsonError(w, http.StatusUnauthorized, "missing or wrong bearer token (http.auth_token)")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Server limits. The write timeout bounds a whole response, so it exceeds
// the query timeout (5s by default) with room to spare.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 64 << 10
	// MaxConns is the number of connections served at once; more wait in
	// the kernel's accept queue.
	MaxConns = 256
)

// newServer is the HTTP server Serve runs, with its limits.
func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
}

// Serve serves h on ln until ctx ends, then shuts down gracefully. At most
// MaxConns connections are open at once.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := newServer(h)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(LimitListener(ln, MaxConns)) }()
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

// LimitListener returns a listener that has at most n accepted connections
// open at once: Accept waits until one closes (golang.org/x/net/netutil's
// LimitListener, which Veltrix does not otherwise need).
func LimitListener(ln net.Listener, n int) net.Listener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
