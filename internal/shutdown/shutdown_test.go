package shutdown_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/veltrix/veltrix/internal/shutdown"
)

var quiet = slog.New(slog.DiscardHandler)

// hang is a run that never returns (a stop stuck on an unreachable broker).
func hang(release chan struct{}) func(context.Context) error {
	return func(context.Context) error { <-release; return nil }
}

func TestCleanStopWithinGrace(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := shutdown.Run(ctx, quiet, time.Minute, nil, func(ctx context.Context) error { <-ctx.Done(); return nil })
	if err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

func TestErrorBeforeStop(t *testing.T) {
	boom := errors.New("boom")
	err := shutdown.Run(context.Background(), quiet, time.Minute, nil, func(context.Context) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want boom", err)
	}
}

func TestGraceRunsOut(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	begin := time.Now()
	err := shutdown.Run(ctx, quiet, 200*time.Millisecond, nil, hang(release))
	if !errors.Is(err, shutdown.ErrAbandoned) {
		t.Fatalf("Run = %v, want ErrAbandoned", err)
	}
	if took := time.Since(begin); took < 200*time.Millisecond || took > 10*time.Second {
		t.Errorf("Run returned after %v, want about the 200ms grace", took)
	}
}

func TestSecondSignal(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	sigs := make(chan os.Signal, 2)
	sigs <- syscall.SIGTERM // the first: starts the stop
	sigs <- syscall.SIGTERM // the second: ends it at once
	err := shutdown.Run(context.Background(), quiet, time.Hour, sigs, hang(release))
	if !errors.Is(err, shutdown.ErrAbandoned) {
		t.Fatalf("Run = %v, want ErrAbandoned", err)
	}
}

// The signal that cancelled ctx arrives after ctx ended: it is the first,
// not the second.
func TestFirstSignalAfterCancel(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sigs := make(chan os.Signal, 1)
	sigs <- syscall.SIGTERM
	begin := time.Now()
	err := shutdown.Run(ctx, quiet, 300*time.Millisecond, sigs, hang(release))
	if !errors.Is(err, shutdown.ErrAbandoned) || time.Since(begin) < 300*time.Millisecond {
		t.Fatalf("Run = %v after %v, want ErrAbandoned after the grace", err, time.Since(begin))
	}
}
