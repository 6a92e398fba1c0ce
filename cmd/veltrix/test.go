package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/testdriver"
)

func newTestCmd() *cobra.Command {
	var path string
	var partitions int32
	cmd := &cobra.Command{
		Use:   "test TESTFILE...",
		Short: "Run rule unit tests (input events -> expected outputs and state) with no broker",
		Long: `Runs rule test files through the same processor code as run, in memory, with
no broker. Each case pipes its input records into a fresh driver and compares
the outputs (in order; objects match as a subset) and, optionally, store
contents. Prints one PASS/FAIL line per case, a diff for each failure and a
summary; exit 1 when a case fails, 2 on configuration or test file errors.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			cfg, _, err := load(path)
			if err != nil {
				return err
			}
			var problems diag.List
			suites := make([]*testdriver.Suite, 0, len(files))
			for _, f := range files {
				s, err := testdriver.LoadSuite(f)
				if err != nil {
					problems.Merge(err)
					continue
				}
				suites = append(suites, s)
			}
			var results []testdriver.Result
			for _, s := range suites {
				r, err := s.Run(cfg, testdriver.WithPartitions(partitions))
				if err != nil {
					problems.Merge(err)
					continue
				}
				results = append(results, r...)
			}
			if err := problems.Err(); err != nil {
				return configError(err)
			}
			out := cmd.OutOrStdout()
			passed, failed := testdriver.Report(out, results)
			fmt.Fprintf(out, "%d passed, %d failed\n", passed, failed)
			if failed > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d test case(s) failed", failed)}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "veltrix.yaml", "configuration file")
	cmd.Flags().Int32Var(&partitions, "partitions", 1, "partitions per input topic (tasks with their own state and stream time)")
	return cmd
}
