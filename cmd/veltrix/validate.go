package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/veltrix/veltrix/pkg/diag"
)

func newValidateCmd() *cobra.Command {
	var path, format string
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check config, templates, expressions and the topology; exit 0 when valid, 2 with every problem listed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "text" && format != "json" {
				return &exitError{code: 2, err: fmt.Errorf("--format %q: want text or json", format)}
			}
			_, topo, err := load(path)
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
	return cmd
}
