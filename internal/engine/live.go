package engine

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Liveness (/livez) answers one question: is the processing loop stuck?
// A restart fixes a stuck loop; it does not fix a cluster that is down, so
// liveness never depends on the brokers being reachable (that is what
// readiness, /readyz, reports).
//
// The loop beats at every poll (at least once per commit interval, with or
// without records and with or without partitions: an idle loop beats too)
// and at every restore progress report. The instance is live unless the
// loop has not beaten for longer than the stall limit while a broker has
// answered within that time: a loop that waits for the cluster (startup
// retry, a session waiting for the brokers, a commit the broker does not
// answer) is idle by design. Before the first beat (start, joining the
// group) and after Run returns the instance is live.

// liveness records the loop's beats.
type liveness struct {
	last atomic.Int64 // unix ns of the last beat; 0 before the first
}

// beat records progress of the loop.
func (l *liveness) beat(now time.Time) { l.last.Store(now.UnixNano()) }

// stop forgets the beats (Run returned: nothing is stuck).
func (l *liveness) stop() { l.last.Store(0) }

// liveStall is how long the loop may go without a beat while the brokers
// answer: twice processing.transaction_timeout plus a minute (80s by
// default). It exceeds the longest wait that is by design with the brokers
// up: a restore waiting for a dead owner's open transaction to be aborted
// (the transaction timeout plus 30s, see state.RestoreOptions.SettleTimeout).
func (e *Engine) liveStall() time.Duration {
	return 2*e.cfg.Processing.TransactionTimeout + time.Minute
}

// Live reports whether the processing loop made progress within the stall
// limit or is idle by design (see liveness); reason says why not.
func (e *Engine) Live() (ok bool, reason string) {
	last := e.live.last.Load()
	if last == 0 {
		return true, ""
	}
	now := e.now()
	since := now.Sub(time.Unix(0, last))
	stall := e.liveStall()
	if since <= stall {
		return true, ""
	}
	broker := now.Sub(time.Unix(0, e.lastBrokerRead.Load()))
	if broker > stall {
		return true, "" // waiting for the brokers: by design, see /readyz
	}
	return false, fmt.Sprintf("the processing loop made no progress for %s while the brokers answered (limit %s)", since.Round(time.Second), stall)
}
