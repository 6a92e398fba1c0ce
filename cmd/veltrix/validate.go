package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/config"
	"github.com/veltrix/veltrix/pkg/clustercheck"
	"github.com/veltrix/veltrix/pkg/kafkaconn"
	"github.com/veltrix/veltrix/topology"

	"github.com/spf13/cobra"

	"github.com/veltrix/veltrix/pkg/diag"
)

func newValidateCmd() *cobra.Command {
	var path, format string
	var brokers []string
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check config, templates, expressions and the topology; exit 0 when valid, 2 with every problem listed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "text" && format != "json" {
				return &exitError{code: 2, err: fmt.Errorf("--format %q: want text or json", format)}
			}
			cfg, topo, err := load(path)
			if err == nil && cmd.Flags().Changed("brokers") {
				err = checkCluster(cmd.Context(), cfg, topo, brokers)
			}
			if format == "json" {
				problems := diag.List{}
				if err != nil {
					if problems = diag.AsList(err); problems == nil {
						return err
					}
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if encErr := enc.Encode(problems); encErr != nil {
					return encErr
				}
				if len(problems) > 0 {
					return &exitError{code: 2, err: fmt.Errorf("%d problem(s) found", len(problems))}
				}
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%s: valid (%d rules, inputs %v, outputs %v)\n", path, len(topo.Rules), topo.InputTopics(), topo.OutputTopics())
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "veltrix.yaml", "configuration file")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json (a JSON array of problems on stdout)")
	cmd.Flags().StringSliceVar(&brokers, "brokers", nil, "also check the topology against this cluster, read-only: topics exist, outputs can be created, co-partitioning (given without a value: kafka.brokers)")
	cmd.Flags().Lookup("brokers").NoOptDefVal = "config"
	return cmd
}

// checkCluster runs the read-only cluster checks; brokers ["config"] (the
// flag given without a value) means the configured kafka.brokers.
func checkCluster(ctx context.Context, cfg *config.Config, topo *topology.Topology, brokers []string) error {
	k := cfg.Kafka
	if len(brokers) > 0 && (len(brokers) != 1 || brokers[0] != "config") {
		k.Brokers = brokers
	}
	opts, err := kafkaconn.Options(k)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	res := clustercheck.Check(ctx, kadm.NewClient(cl), cfg, topo)
	if len(res.Problems) > 0 {
		return configError(res.Problems.Err())
	}
	return nil
}
