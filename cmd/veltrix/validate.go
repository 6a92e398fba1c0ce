package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/clustercheck"
	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/kafkaconn"
	"github.com/veltrix/veltrix/internal/topology"

	"github.com/spf13/cobra"

	"github.com/veltrix/veltrix/pkg/diag"
)

func newValidateCmd() *cobra.Command {
	var path, format string
	var brokers []string
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check config, templates, expressions and the topology; exit 0 when valid (warnings printed with their code), 2 with every problem listed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "text" && format != "json" {
				return &exitError{code: 2, err: fmt.Errorf("--format %q: want text or json", format)}
			}
			cfg, topo, err := load(path)
			var warnings diag.List
			if cfg != nil {
				warnings = append(warnings, cfg.Warnings...)
			}
			if err == nil && cmd.Flags().Changed("brokers") {
				var found diag.List
				found, err = checkCluster(cmd.Context(), cfg, topo, brokers)
				warnings = append(warnings, found...)
			}
			if format == "json" {
				problems := diag.List{}
				if err != nil {
					if problems = diag.AsList(err); problems == nil {
						return err
					}
				}
				errs := len(problems)
				problems = append(problems, warnings...)
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if encErr := enc.Encode(problems); encErr != nil {
					return encErr
				}
				if errs > 0 {
					return &exitError{code: 2, err: fmt.Errorf("%d problem(s) found", errs)}
				}
				return nil
			}
			// Warnings first: an error ends the command with its list.
			for _, w := range warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), w.Error())
			}
			if err != nil {
				return err
			}
			for _, r := range topo.AddedRepartitions() {
				fmt.Fprintln(cmd.ErrOrStderr(), r)
			}
			note := ""
			if len(warnings) > 0 {
				note = fmt.Sprintf(", %d warning(s)", len(warnings))
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%s: valid (%d rules, inputs %v, outputs %v%s)\n", path, len(topo.Rules), topo.InputTopics(), topo.OutputTopics(), note)
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
// flag given without a value) means the configured kafka.brokers. It returns
// the checks' warnings, and their problems as the error.
func checkCluster(ctx context.Context, cfg *config.Config, topo *topology.Topology, brokers []string) (diag.List, error) {
	k := cfg.Kafka
	if len(brokers) > 0 && (len(brokers) != 1 || brokers[0] != "config") {
		k.Brokers = brokers
	}
	opts, err := kafkaconn.Options(k)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	res := clustercheck.Check(ctx, kadm.NewClient(cl), cfg, topo)
	if len(res.Problems) > 0 {
		return res.Warnings, configError(res.Problems.Err())
	}
	return res.Warnings, nil
}
