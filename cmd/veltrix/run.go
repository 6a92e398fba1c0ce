package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/configwatch"
	"github.com/veltrix/veltrix/internal/engine"
	"github.com/veltrix/veltrix/internal/instance"
	"github.com/veltrix/veltrix/internal/logging"
	"github.com/veltrix/veltrix/internal/shutdown"
	"github.com/veltrix/veltrix/internal/topology"
	"github.com/veltrix/veltrix/internal/tracing"
	"github.com/veltrix/veltrix/pkg/diag"
)

// load compiles the configuration into its topology (topology.Compile);
// configuration problems come back as an exitError with code 2 listing every
// problem, with the Config when the file could be read (for its Warnings).
func load(path string) (*config.Config, *topology.Topology, error) {
	cfg, topo, err := topology.Compile(path)
	if err != nil {
		return cfg, nil, configError(err)
	}
	return cfg, topo, nil
}

// configErrorOrNil returns err as a configuration error (exit 2) when it
// carries diag problems, else nil.
func configErrorOrNil(err error) error {
	if diag.AsList(err) == nil {
		return nil
	}
	return configError(err)
}

func configError(err error) error {
	list := diag.AsList(err)
	if list == nil {
		return &exitError{code: 2, err: err}
	}
	return &exitError{code: 2, err: fmt.Errorf("%w\n%d problem(s) found", list, len(list))}
}

// runExitError maps the error of a run to its exit code (DESIGN.md): 3 when
// the cluster could not be reached within kafka.startup_timeout, 2 for a
// configuration problem found on the cluster (printed as a list), else 1.
// Other than a configuration error, the error is logged here, in the
// configured format, and not printed again.
func runExitError(log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	code := 1
	switch {
	case errors.Is(err, engine.ErrClusterUnreachable):
		code = 3
	case errors.Is(err, engine.ErrClusterCheck):
		return configError(err) // printed as a list, like validate's
	}
	log.Error("exiting", "code", code, "err", err)
	return &exitError{code: code, err: err, logged: true}
}

// traceFlushTimeout bounds the export of the spans still queued at exit.
const traceFlushTimeout = 5 * time.Second

// startTracing returns the tracer tracing.sample_ratio and the OTEL_*
// variables ask for, nil when tracing is off. The OpenTelemetry SDK reports
// export failures through its process-wide error handler: they go to the
// log, in its format.
func startTracing(ctx context.Context, log *slog.Logger, cfg *config.Config) (*tracing.Tracer, error) {
	tr, err := tracing.New(ctx, cfg.Tracing, tracing.WithAppID(cfg.App.ID))
	if err != nil || tr == nil {
		return nil, err
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("tracing: spans not exported", "err", err) }))
	log.Info("tracing records", "sample_ratio", cfg.Tracing.SampleRatio)
	return tr, nil
}

// stopTracing exports the spans still queued, within traceFlushTimeout.
func stopTracing(log *slog.Logger, tr *tracing.Tracer) {
	ctx, cancel := context.WithTimeout(context.Background(), traceFlushTimeout)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		log.Warn("tracing: spans lost at exit", "err", err)
	}
}

// reloadTimeout bounds a reload: reading the configuration, the cluster
// check of new outputs, and the wait for a transaction boundary.
const reloadTimeout = time.Minute

// reloadNow reloads the configuration (Instance.Reload logs the outcome).
func reloadNow(ctx context.Context, inst *instance.Instance) {
	ctx, cancel := context.WithTimeout(ctx, reloadTimeout)
	defer cancel()
	_, _ = inst.Reload(ctx)
}

// reloadOnSIGHUP reloads the configuration on each SIGHUP (Instance.Reload
// logs the outcome) until the returned function is called.
func reloadOnSIGHUP(ctx context.Context, inst *instance.Instance) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reloadNow(ctx, inst)
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
	}
}

func newRunCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the rules against the configured brokers until SIGINT/SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, topo, err := load(path)
			if err != nil {
				return err
			}
			log, err := logging.New(os.Stderr, cfg.Log)
			if err != nil {
				return configError(err)
			}
			for _, w := range cfg.Warnings {
				log.Warn("configuration warning", "code", w.Code, "path", w.Path, "problem", w.Message, "hint", w.Hint)
			}
			log.Info("starting", "app", cfg.App.ID, "brokers", cfg.Kafka.Brokers, "guarantee", cfg.Processing.Guarantee, "rules", len(topo.Rules))
			tr, err := startTracing(cmd.Context(), log, cfg)
			if err != nil {
				return configError(err)
			}
			topo = tr.Apply(topo)
			// main's context ends at the first signal; this channel also
			// sees the second, which ends a stuck stop at once.
			signals := make(chan os.Signal, 2)
			signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
			defer signal.Stop(signals)
			reload := func() (*config.Config, *topology.Topology, error) {
				cfg, topo, err := load(path)
				if err != nil {
					return nil, nil, err
				}
				return cfg, tr.Apply(topo), nil
			}
			inst := instance.New(cfg, topo, instance.WithLogger(log), instance.WithLoader(reload))
			stopHUP := reloadOnSIGHUP(cmd.Context(), inst)
			defer stopHUP()
			if cfg.App.WatchConfig {
				dirs := cfg.Dirs()
				if err := configwatch.Watch(cmd.Context(), dirs, func() { reloadNow(cmd.Context(), inst) }); err != nil {
					return configError(err)
				}
				log.Info("watching the configuration's files; a change reloads it", "dirs", dirs)
			}
			err = shutdown.Run(cmd.Context(), log, cfg.Processing.ShutdownTimeout, signals, inst.Run)
			stopTracing(log, tr)
			return runExitError(log, err)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "veltrix.yaml", "configuration file")
	return cmd
}
