package devgen

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPacerKeepsRate(t *testing.T) {
	tests := []struct {
		name             string
		rate             float64
		events           int
		elapsed          time.Duration // event n goes out at n/rate: (events-1)/rate in all
		slack            time.Duration // sleeping at least minSleep may overshoot by this much
		minWait, maxWait int
	}{
		{"200/s sleeps per event", 200, 1000, 999 * 5 * time.Millisecond, 0, 999, 999},
		{"3/s", 3, 31, 10 * time.Second, 0, 30, 30},
		{"100k/s batches under minSleep", 100_000, 10_000, 9999 * 10 * time.Microsecond, minSleep, 90, 101},
		{"unpaced", 0, 10_000, 0, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			p := newPacer(tt.rate, clk)
			for range tt.events {
				if err := p.wait(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			elapsed, waits := clk.elapsed()
			// Rounding each due time to whole nanoseconds leaves at most 1ns.
			if elapsed < tt.elapsed-time.Nanosecond || elapsed > tt.elapsed+tt.slack+time.Nanosecond {
				t.Errorf("%d events took %v of clock time, want %v", tt.events, elapsed, tt.elapsed)
			}
			if waits < tt.minWait || waits > tt.maxWait {
				t.Errorf("%d sleeps, want %d..%d", waits, tt.minWait, tt.maxWait)
			}
		})
	}
}

// After a stall (a slow broker, a stopped process) the pacer sends at most
// burstWindow's worth of events at once instead of the whole backlog.
func TestPacerBoundsCatchUp(t *testing.T) {
	clk := newFakeClock()
	p := newPacer(1000, clk)
	for range 10 {
		if err := p.wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	clk.advance(5 * time.Second)
	_, before := clk.elapsed()
	burst := 0
	for {
		if err := p.wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, w := clk.elapsed(); w > before {
			break
		}
		burst++
	}
	if want := int(burstWindow.Seconds()*1000) + 1; burst != want {
		t.Errorf("%d events sent at once after the stall, want %d", burst, want)
	}
}

// stuckClock never fires its timers.
type stuckClock struct{ fakeClock }

func (*stuckClock) After(time.Duration) <-chan time.Time { return nil }

func TestPacerStopsOnContext(t *testing.T) {
	clk := &stuckClock{fakeClock{now: epoch}}
	p := newPacer(1, clk)
	if err := p.wait(context.Background()); err != nil {
		t.Fatalf("first event: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait on a cancelled context = %v", err)
	}
}

// lateClock oversleeps every timer, as a loaded machine does.
type lateClock struct{ fakeClock }

func (c *lateClock) After(d time.Duration) <-chan time.Time {
	return c.fakeClock.After(d + time.Duration(c.waits%4)*time.Millisecond)
}

// Late timers do not add up: event n still goes out at n/rate, give or take
// one late wake-up.
func TestPacerDoesNotDrift(t *testing.T) {
	clk := &lateClock{fakeClock{now: epoch}}
	p := newPacer(200, clk)
	for range 1000 {
		if err := p.wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	want := 999 * 5 * time.Millisecond
	if elapsed, _ := clk.elapsed(); elapsed < want || elapsed > want+3*time.Millisecond {
		t.Errorf("1000 events at 200/s took %v of clock time, want %v", elapsed, want)
	}
}

// tickingClock moves forward a little on every reading, as a real clock does.
type tickingClock struct{ fakeClock }

func (c *tickingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Microsecond)
	return c.now
}

// The catch-up after a stall must not recompute its schedule against a
// clock that moved meanwhile (that spun forever).
func TestPacerCatchUpEndsWithAMovingClock(t *testing.T) {
	clk := &tickingClock{fakeClock{now: epoch}}
	p := newPacer(500, clk)
	clk.advance(10 * time.Second)
	done := make(chan error, 1)
	go func() { done <- p.wait(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("wait did not return after a stall")
	}
}
