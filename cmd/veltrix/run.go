package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/veltrix/veltrix/config"
	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/pkg/instance"
	"github.com/veltrix/veltrix/topology"
)

// load loads the configuration and builds its topology; configuration
// problems come back as an exitError with code 2 listing every problem.
func load(path string) (*config.Config, *topology.Topology, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, configError(err)
	}
	topo, err := topology.Build(cfg)
	if err != nil {
		return nil, nil, configError(err)
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

func newLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
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
			log := newLogger()
			log.Info("starting", "app", cfg.App.ID, "brokers", cfg.Kafka.Brokers, "guarantee", cfg.Processing.Guarantee, "rules", len(topo.Rules))
			return instance.New(cfg, topo, instance.WithLogger(log)).Run(cmd.Context())
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "veltrix.yaml", "configuration file")
	return cmd
}
