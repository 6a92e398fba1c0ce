package topology

import (
	"fmt"
	"slices"
	"strings"

	"github.com/veltrix/veltrix/processors"
)

// Shape is what a running instance cannot change without a restart: the
// topics it reads, its repartition topics, and its stores with the
// definition of each step that declares one (its key, aggregations, window,
// ttl: the meaning of the state kept). Everything else (filters, sets,
// routes, outputs, parameters of stateless steps, rules that keep no state)
// can change between two transactions, keeping every store (see
// engine.Reload).
type Shape struct {
	Sources      []string     `json:"sources"`
	Repartitions []string     `json:"repartitions"` // each with its key and topic
	Stores       []StoreShape `json:"stores"`
}

// StoreShape is a store and the definition of the step that declares it.
type StoreShape struct {
	StoreInfo
	// Step is the declaring step's kind and definition: its YAML in a
	// canonical form, with the values of the template parameters it uses.
	Step string `json:"step"`
}

// Shape returns the topology's shape.
func (t *Topology) Shape() Shape {
	var repartitions []string
	for _, r := range t.Rules {
		for _, s := range r.stages() {
			if s.after == nil || len(s.Steps) == 0 {
				continue
			}
			last := s.Steps[len(s.Steps)-1]
			key := "?"
			if e, ok := last.(processors.KeyEffecter); ok && e.KeyEffect().Key != nil {
				key = normExpr(e.KeyEffect().Key.Source())
			}
			repartitions = append(repartitions, s.after.From[0]+" by "+key)
		}
	}
	s := Shape{Sources: slices.Sorted(slices.Values(t.sources())), Repartitions: slices.Sorted(slices.Values(repartitions))}
	s.Sources = slices.Compact(s.Sources)
	for _, st := range t.Stores() {
		s.Stores = append(s.Stores, StoreShape{StoreInfo: st, Step: t.storeDefs[st.Name]})
	}
	slices.SortFunc(s.Stores, func(a, b StoreShape) int { return strings.Compare(a.Name, b.Name) })
	return s
}

// Diff lists how to differs from s, one line per difference; none when a
// topology of shape to can replace one of shape s while running.
func (s Shape) Diff(to Shape) []string {
	var out []string
	list := func(what string, from, to []string) {
		for _, x := range from {
			if !slices.Contains(to, x) {
				out = append(out, fmt.Sprintf("%s %s removed", what, x))
			}
		}
		for _, x := range to {
			if !slices.Contains(from, x) {
				out = append(out, fmt.Sprintf("%s %s added", what, x))
			}
		}
	}
	list("source topic", s.Sources, to.Sources)
	list("repartition", s.Repartitions, to.Repartitions)
	find := func(stores []StoreShape, name string) (StoreShape, bool) {
		i := slices.IndexFunc(stores, func(st StoreShape) bool { return st.Name == name })
		if i < 0 {
			return StoreShape{}, false
		}
		return stores[i], true
	}
	for _, a := range s.Stores {
		b, ok := find(to.Stores, a.Name)
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("store %s removed", a.Name))
		case a.Kind != b.Kind || a.Step != b.Step:
			out = append(out, fmt.Sprintf("store %s: its step changed from %q to %q", a.Name, a.Step, b.Step))
		case a.Rule != b.Rule:
			out = append(out, fmt.Sprintf("store %s moved from rule %s to rule %s", a.Name, a.Rule, b.Rule))
		case !slices.Equal(a.Topics, b.Topics):
			out = append(out, fmt.Sprintf("store %s: its step reads %s instead of %s", a.Name, strings.Join(b.Topics, ", "), strings.Join(a.Topics, ", ")))
		}
	}
	for _, b := range to.Stores {
		if _, ok := find(s.Stores, b.Name); !ok {
			out = append(out, fmt.Sprintf("store %s added", b.Name))
		}
	}
	return out
}
