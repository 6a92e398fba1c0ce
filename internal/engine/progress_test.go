package engine

import (
	"testing"
	"time"
)

func TestRestoreProgress(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var p progress
	p.restore(3, "revenue", 1000, t0)
	p.restore(3, "revenue", 600, t0.Add(4*time.Second))
	p.setStreamTime(3, t0.Add(time.Minute))
	st, rs := p.view(3)
	if !st.Equal(t0.Add(time.Minute)) || len(rs) != 1 {
		t.Fatalf("view = %v %+v", st, rs)
	}
	r := rs[0]
	if r.Total != 1000 || r.Remaining != 600 {
		t.Fatalf("restore = %+v, want 600 of 1000 left", r)
	}
	// 400 records in 4s: 600 more take 6s.
	if eta, ok := r.ETA(); !ok || eta != 6*time.Second {
		t.Errorf("ETA = %v %v, want 6s", eta, ok)
	}
	p.restore(3, "revenue", 0, t0.Add(9*time.Second))
	if _, rs := p.view(3); rs[0].Remaining != 0 || rs[0].Total != 1000 {
		t.Errorf("done restore = %+v", rs[0])
	} else if _, ok := rs[0].ETA(); ok {
		t.Error("a finished restore has an ETA")
	}
	// A new restore (after a reassignment) starts over.
	p.restore(3, "revenue", 50, t0.Add(time.Hour))
	if _, rs := p.view(3); rs[0].Total != 50 || !rs[0].Started.Equal(t0.Add(time.Hour)) {
		t.Errorf("second restore = %+v, want a fresh one of 50", rs[0])
	}
	if _, ok := (RestoreView{Total: 10, Remaining: 10, Started: t0, Updated: t0}).ETA(); ok {
		t.Error("an ETA before any progress")
	}
}
