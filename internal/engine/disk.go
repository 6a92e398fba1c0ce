package engine

import (
	"context"
	"errors"
	"time"

	"github.com/veltrix/veltrix/internal/diskspace"
	"github.com/veltrix/veltrix/pkg/diag"
)

// The disk guard. Pebble cannot carry on after a write fails for want of
// space: it ends the process (it cannot tell what the failed write left in
// its log). So the engine stops writing before that: between two
// transactions (or commits), when the file system of app.state_dir has less
// free space than app.state_min_free_bytes, it processes nothing, commits
// nothing and is not ready, and it resumes once there is room again. The
// instance stays live and in its group meanwhile (its partitions are not
// moved: another instance on the same disk would be in the same state).

// diskCheckEvery is how often the guard asks the file system while the
// engine runs; diskWaitEvery while processing is paused.
const (
	diskCheckEvery = time.Second
	diskWaitEvery  = time.Second
)

// WithDiskFree replaces how the engine reads the free space of its state
// directory (default diskspace.Free); tests use it to fill the disk.
func WithDiskFree(free func(dir string) (int64, error)) Option {
	return func(e *Engine) { e.disk.free = free }
}

// diskGuard is the engine's view of its state disk.
type diskGuard struct {
	free    func(dir string) (int64, error)
	checked time.Time // the last check
	low     bool      // processing is paused
	warned  bool      // an unreadable free space was logged
}

// roomOnDisk returns once the state directory's file system has room, at
// once when it was checked within diskCheckEvery; meanwhile the engine is
// not ready. It returns ctx's error when stopped while paused.
func (e *Engine) roomOnDisk(ctx context.Context) error {
	need := int64(e.cfg.App.StateMinFreeBytes)
	if need <= 0 || time.Since(e.disk.checked) < diskCheckEvery {
		return nil
	}
	for {
		e.disk.checked = time.Now() // wall time: WithClock sets the steps' processing time, not this
		free, err := e.disk.free(e.cfg.App.StateDir)
		switch {
		case err != nil:
			if !e.disk.warned && !errors.Is(err, diskspace.ErrUnsupported) {
				e.log.Warn("cannot read the free space of the state directory; the disk is not guarded", "err", err)
			}
			e.disk.warned = true
			return nil
		case free >= need:
			e.metrics.StateDiskFree.Set(float64(free))
			if e.disk.low {
				e.disk.low = false
				e.log.Info("state disk has room again; processing resumes", "free_bytes", free)
			}
			return nil
		}
		e.metrics.StateDiskFree.Set(float64(free))
		if !e.disk.low {
			e.disk.low = true
			e.log.Error("state disk nearly full: processing paused until there is room",
				"code", diag.StateDiskLow, "free_bytes", free, "min_free_bytes", need, "state_dir", e.cfg.App.StateDir)
		}
		e.ready.Store(false)
		e.live.beat(e.now()) // paused on purpose, not stuck
		t := time.NewTimer(diskWaitEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
