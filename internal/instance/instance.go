// Package instance runs one Veltrix application instance: the engine over the
// consumer group plus the HTTP server (metrics, health, topology), sharing one
// metrics registry, until the context ends.
package instance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/dlq"
	"github.com/veltrix/veltrix/internal/engine"
	"github.com/veltrix/veltrix/internal/httpapi"
	"github.com/veltrix/veltrix/internal/kafkaconn"
	"github.com/veltrix/veltrix/internal/metrics"
	"github.com/veltrix/veltrix/internal/topology"
)

// Instance is a configured, not yet running, application instance.
// It embeds its engine, which answers readiness and interactive queries for
// the HTTP API.
type Instance struct {
	*engine.Engine
	cfg      *config.Config
	topo     *topology.Topology
	log      *slog.Logger
	reg      *prometheus.Registry
	httpAddr func(string)
	metrics  *metrics.Metrics
	loader   Loader
	reloadMu sync.Mutex
	version  version
	// clientOpts are the test options of the engine's client, also used
	// by the console's DLQ reader.
	clientOpts []kgo.Opt
}

// Option configures an Instance.
type Option func(*options)

type options struct {
	log        *slog.Logger
	clientOpts []kgo.Opt
	httpAddr   func(string)
	loader     Loader
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithClientOpts adds franz-go client options to the engine's client.
func WithClientOpts(opts ...kgo.Opt) Option {
	return func(o *options) { o.clientOpts = append(o.clientOpts, opts...) }
}

// WithHTTPBound is called with the HTTP server's bound address.
func WithHTTPBound(f func(addr string)) Option { return func(o *options) { o.httpAddr = f } }

// New wires an instance for cfg and its built topology.
func New(cfg *config.Config, topo *topology.Topology, opts ...Option) *Instance {
	o := options{log: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.Runtime()...)
	m := metrics.New(reg)
	eng := engine.New(cfg, topo, engine.WithLogger(o.log), engine.WithMetrics(m), engine.WithClientOpts(o.clientOpts...))
	in := &Instance{cfg: cfg, topo: topo, log: o.log, reg: reg, Engine: eng, httpAddr: o.httpAddr, clientOpts: o.clientOpts,
		metrics: m, loader: o.loader}
	in.version.current = versionOf(cfg, topo)
	return in
}

// An Instance answers the interactive queries and shows its tasks on the
// console.
var (
	_ httpapi.Stores   = (*Instance)(nil)
	_ httpapi.Tasks    = (*Instance)(nil)
	_ httpapi.Reloader = (*Instance)(nil)
	_ httpapi.Rules    = (*Instance)(nil)
)

// Status returns the engine's running totals.
func (in *Instance) Status() any { return in.Engine.Stats() }

// Run runs the engine and the HTTP server until ctx ends or the engine fails;
// it returns the engine's error, if any.
func (in *Instance) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	httpDone := make(chan error, 1)
	if in.cfg.HTTP.Listen != "" {
		ln, err := net.Listen("tcp", in.cfg.HTTP.Listen)
		if err != nil {
			return fmt.Errorf("http: listen %s: %w", in.cfg.HTTP.Listen, err)
		}
		addr := ln.Addr().String()
		adv := in.cfg.HTTP.Advertise // checked at load: a plain host:port
		if adv == "" {
			adv = advertised(addr)
		}
		in.Engine.SetAdvertisedAddr(adv)
		if in.httpAddr != nil {
			in.httpAddr(addr)
		}
		kopts, err := kafkaconn.Options(in.cfg.Kafka)
		if err != nil {
			return fmt.Errorf("http: %w", err)
		}
		h := httpapi.Handler(in.reg, in.topo, in, httpapi.WithAuthToken(in.cfg.HTTP.AuthToken),
			httpapi.WithConfig(in.cfg), httpapi.WithLogger(in.log), httpapi.WithConfigVersion(in.Version),
			httpapi.WithDLQ(dlq.New(append(kopts, in.clientOpts...)...)))
		go func() {
			err := httpapi.Serve(ctx, ln, h, in.log)
			if err != nil {
				cancel() // a server that cannot listen stops the instance
			}
			httpDone <- err
		}()
	} else {
		httpDone <- nil
	}
	err := in.Engine.Run(ctx)
	cancel()
	return errors.Join(err, <-httpDone)
}

// advertised is the address other instances can reach addr at: the host
// name instead of a wildcard address (0.0.0.0 or ::).
func advertised(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			return net.JoinHostPort(h, port)
		}
	}
	return addr
}
