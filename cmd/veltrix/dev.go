package main

import (
	"github.com/spf13/cobra"

	"github.com/veltrix/veltrix/internal/quickstart"
)

func newDevCmd() *cobra.Command {
	var o quickstart.Options
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Quickstart: embedded broker, example rules and an event generator, with live progress",
		Long: `Starts an embedded broker, creates the topics, runs the bundled example rules
(examples/ecommerce, or -c FILE) against a generator of realistic e-commerce
events (orders, payments, inventory; about 1% malformed so the DLQ path shows)
and prints live progress until Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			err := quickstart.Run(cmd.Context(), o)
			if list := configErrorOrNil(err); list != nil {
				return list
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&o.ConfigPath, "config", "c", "", "configuration file (default: the bundled e-commerce example)")
	cmd.Flags().Float64Var(&o.Rate, "rate", 200, "generated events per second")
	return cmd
}
