package testdriver

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/veltrix/veltrix/internal/topology"
)

// A record dated far ahead of the clock (one event from 2100) fails with
// VX5008 under on_error and does not move stream time: the windows stay
// open, and the events after it are not late.
func TestFarFutureEventDoesNotMoveStreamTime(t *testing.T) {
	clock := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	d := New(build(t, `app: {id: app}
rules:
  - name: counts
    from: in
    on_error: dlq
    steps:
      - aggregate: {store: s, count: true, window: {tumbling: 10m}, emit: on_close}
      - to: out
`), WithClock(func() time.Time { return clock }))
	pipe := func(at time.Time) {
		t.Helper()
		if err := d.Pipe(Record{Topic: "in", Key: []byte("k"), Value: []byte(`{}`), Timestamp: at}); err != nil {
			t.Fatal(err)
		}
	}
	pipe(clock.Add(-9 * time.Minute))
	pipe(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC))
	pipe(clock.Add(-8 * time.Minute)) // same window as the first: not late
	if st := d.StreamTime(0); !st.Equal(clock.Add(-8 * time.Minute)) {
		t.Errorf("stream time %v, want %v: the far-future record moved it", st, clock.Add(-8*time.Minute))
	}
	outs := d.ReadOutputs()
	if len(outs) != 1 || outs[0].Topic != "app.dlq" || code(outs[0]) != "VX5008" {
		t.Fatalf("outputs %v, want one DLQ record with VX5008", outs)
	}
	pipe(clock.Add(5 * time.Minute)) // closes the window of the first two
	outs = d.ReadOutputs()
	var v struct{ Count int }
	if len(outs) != 1 || outs[0].Topic != "out" || json.Unmarshal(outs[0].Value, &v) != nil || v.Count != 2 {
		t.Fatalf("outputs %v, want the window with count 2", outs)
	}
}

func code(r Record) string {
	c, _ := r.Header(topology.HeaderErrorCode)
	return c
}
