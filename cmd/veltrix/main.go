// Command veltrix runs Veltrix rules over Kafka topics. It only wires flags to
// the packages that do the work; see the README and docs/ for usage.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code out of a command.
type exitError struct {
	code   int
	err    error
	logged bool // already in the log: not printed again
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	startPprof()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if msg := err.Error(); msg != "" && (ee == nil || !ee.logged) {
		fmt.Fprintln(os.Stderr, msg)
	}
	os.Exit(code)
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "veltrix",
		Short:         "Veltrix: rules over Kafka topics, stateful and exactly once",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newRunCmd(),
		newDevCmd(),
		newValidateCmd(),
		newDescribeCmd(),
		newTestCmd(),
		newBrokerCmd(),
		newVersionCmd(),
		newHealthCmd(),
	)
	return root
}
