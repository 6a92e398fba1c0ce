package engine

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"
)

// TaskView is what the console shows of one task (partition number p of
// every input topic).
type TaskView struct {
	Partition int32
	// Owned is true when this instance owns the task now; StreamTime and
	// Restores are then this instance's.
	Owned bool
	// StreamTime is the task's stream time as of its last processed batch
	// (zero before its first record).
	StreamTime time.Time
	// Restores are the task's stores being restored or restored since it
	// was assigned here, by store name.
	Restores []RestoreView
}

// RestoreView is the restore progress of one store of one task.
type RestoreView struct {
	Store     string
	Total     int64     // changelog records to restore when it began
	Remaining int64     // still to restore (0: done)
	Started   time.Time // when it began
	Updated   time.Time // last progress report
}

// ETA estimates when the restore ends from its rate so far; ok is false
// when it is done or nothing has been restored yet to measure a rate.
func (r RestoreView) ETA() (eta time.Duration, ok bool) {
	done := r.Total - r.Remaining
	took := r.Updated.Sub(r.Started)
	if r.Remaining <= 0 || done <= 0 || took <= 0 {
		return 0, false
	}
	return time.Duration(float64(took) * float64(r.Remaining) / float64(done)), true
}

// progress keeps, for the console, what the loop's goroutines know of each
// task: stream time (published after each batch, so readers never touch a
// task) and restore progress (from the restore's progress reports).
type progress struct {
	mu       sync.Mutex
	stream   map[int32]time.Time
	restores map[int32]map[string]*RestoreView
}

func (p *progress) setStreamTime(partition int32, t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stream == nil {
		p.stream = map[int32]time.Time{}
	}
	p.stream[partition] = t
}

// restore records a progress report: the first of a store since its
// remaining count last reached 0 starts a new restore.
// restore records a task's restore progress for a store and returns what
// remains of that store's restores over every task.
func (p *progress) restore(partition int32, store string, remaining int64, now time.Time) (left int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.restores == nil {
		p.restores = map[int32]map[string]*RestoreView{}
	}
	byStore := p.restores[partition]
	if byStore == nil {
		byStore = map[string]*RestoreView{}
		p.restores[partition] = byStore
	}
	r := byStore[store]
	if r == nil || (r.Remaining == 0 && remaining > 0) || remaining > r.Total {
		r = &RestoreView{Store: store, Total: remaining, Started: now}
		byStore[store] = r
	}
	r.Remaining, r.Updated = remaining, now
	for _, byStore := range p.restores {
		if r := byStore[store]; r != nil {
			left += r.Remaining
		}
	}
	return left
}

func (p *progress) view(partition int32) (time.Time, []RestoreView) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var rs []RestoreView
	for _, name := range slices.Sorted(maps.Keys(p.restores[partition])) {
		rs = append(rs, *p.restores[partition][name])
	}
	return p.stream[partition], rs
}

// Tasks returns a view of every task of the topology, in partition order
// (none before Run has prepared the topology).
func (e *Engine) Tasks() []TaskView {
	ts := e.tasks.Load()
	n := e.ntasks.Load()
	out := make([]TaskView, 0, n)
	for p := range n {
		v := TaskView{Partition: p, Owned: ts != nil && ts.Owns(p)}
		if v.Owned {
			v.StreamTime, v.Restores = e.progress.view(p)
		}
		out = append(out, v)
	}
	return out
}

// TaskOwner returns the advertised HTTP address of the instance that owns
// task p, from the group coordinator (cached for a moment).
func (e *Engine) TaskOwner(ctx context.Context, p int32) (string, error) {
	return e.ownerOf(ctx, p)
}
