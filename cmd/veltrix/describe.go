package main

import (
	"github.com/spf13/cobra"
)

func newDescribeCmd() *cobra.Command {
	var path, format string
	cmd := &cobra.Command{
		Use:   "describe",
		Short: "Print the topology: sources, steps, stores, internal topics, sinks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, topo, err := load(path)
			if err != nil {
				return err
			}
			return topo.Describe(cmd.OutOrStdout(), format)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "veltrix.yaml", "configuration file")
	cmd.Flags().StringVar(&format, "format", "text", "text, mermaid or json")
	return cmd
}
