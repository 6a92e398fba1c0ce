// Package shutdown bounds the stop of a long-running function: once its
// context ends (SIGINT/SIGTERM), the function has a grace period to finish
// (commit or abort its transaction, close its stores); when that passes, or
// on a second signal, the wait is abandoned and the caller exits.
//
// Abandoning is safe for an exactly-once instance: its open transaction is
// aborted by the broker after processing.transaction_timeout, and its
// uncommitted input is processed again by the next owner of the partitions,
// so nothing is lost or duplicated; it only costs that delay.
package shutdown

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// ErrAbandoned marks a stop that did not finish within the grace period or
// was cut short by a second signal.
var ErrAbandoned = errors.New("shutdown abandoned")

// Run runs run(ctx) and returns its error. When ctx ends, run gets grace to
// return; after that, or once signals has delivered its second signal since
// Run began (the first one is the one that ended ctx), Run returns
// ErrAbandoned without waiting for run, which keeps running until the
// process exits. A nil signals channel means no second-signal exit.
func Run(ctx context.Context, log *slog.Logger, grace time.Duration, signals <-chan os.Signal, run func(context.Context) error) error {
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	received := 0
	for stopping := false; !stopping; {
		select {
		case err := <-done:
			return err
		case <-signals:
			received++
			stopping = true
		case <-ctx.Done():
			stopping = true
		}
	}
	log.Info("stopping", "shutdown_timeout", grace)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-timer.C:
			return fmt.Errorf("%w: processing.shutdown_timeout passed (%v) before the stop finished: %s", ErrAbandoned, grace, abandonedWhat)
		case <-signals:
			if received++; received >= 2 {
				return fmt.Errorf("%w: second signal: %s", ErrAbandoned, abandonedWhat)
			}
		}
	}
}

const abandonedWhat = "the open transaction, if any, is abandoned (the broker aborts it after processing.transaction_timeout) and its input is processed again by the next owner: nothing is lost or duplicated"
