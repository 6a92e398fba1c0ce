package engine

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/veltrix/veltrix/internal/config"
)

// Live is false only when the loop has not beaten for longer than the stall
// limit while the brokers answered: not before the first beat, not while
// the brokers are silent (waiting for them is by design), not after Run.
func TestLive(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var now atomic.Int64
	now.Store(t0.UnixNano())
	cfg := &config.Config{Processing: config.Processing{TransactionTimeout: 10 * time.Second}}
	e := &Engine{cfg: cfg, now: func() time.Time { return time.Unix(0, now.Load()) }}
	stall := e.liveStall()
	if stall != 80*time.Second {
		t.Fatalf("stall limit %s, want 80s (2 x transaction_timeout + 1m)", stall)
	}
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	for _, tc := range []struct {
		name         string
		beat, broker time.Duration // since t0; -1: never
		clock        time.Duration
		stopped      bool
		want         bool
	}{
		{name: "before the first beat", beat: -1, broker: 0, clock: time.Hour, want: true},
		{name: "beat just now", beat: 0, broker: 0, clock: time.Second, want: true},
		{name: "idle loop beats every commit interval", beat: 5 * time.Minute, broker: 5 * time.Minute, clock: 5*time.Minute + 100*time.Millisecond, want: true},
		{name: "within the limit", beat: 0, broker: 79 * time.Second, clock: 79 * time.Second, want: true},
		{name: "stuck while the brokers answer", beat: 0, broker: 2 * time.Minute, clock: 2 * time.Minute, want: false},
		{name: "waiting for silent brokers", beat: 0, broker: 0, clock: 10 * time.Minute, want: true},
		{name: "brokers silent longer than the limit", beat: 0, broker: 10 * time.Second, clock: 2 * time.Minute, want: true},
		{name: "after Run returned", beat: 0, broker: 2 * time.Minute, clock: 2 * time.Minute, stopped: true, want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.live.stop()
			if tc.beat >= 0 {
				e.live.beat(at(tc.beat))
			}
			e.lastBrokerRead.Store(at(tc.broker).UnixNano())
			if tc.stopped {
				e.live.stop()
			}
			now.Store(at(tc.clock).UnixNano())
			ok, reason := e.Live()
			if ok != tc.want || ok != (reason == "") {
				t.Errorf("Live() = %v %q, want %v", ok, reason, tc.want)
			}
		})
	}
}
