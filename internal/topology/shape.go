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
	Step string `json:"step"` // the declaring step's kind and definition
}

// Shape returns the topology's shape.
func (t *Topology) Shape() Shape {
	defs := map[string]string{}
	var repartitions []string
	var walk func([]processors.Info)
	walk = func(infos []processors.Info) {
		for _, in := range infos {
			if in.Store != "" {
				defs[in.Kind+"\x00"+in.Store] = in.Kind + ": " + in.Arg
			}
			if in.Kind == "rekey" || in.Kind == "repartition" {
				repartitions = append(repartitions, in.Kind+" "+in.Arg)
			}
			for _, b := range in.Branches {
				walk(b.Steps)
			}
		}
	}
	for _, r := range t.Rules {
		walk(r.Describe())
	}
	s := Shape{Sources: slices.Sorted(slices.Values(t.sources())), Repartitions: slices.Sorted(slices.Values(repartitions))}
	s.Sources = slices.Compact(s.Sources)
	for _, st := range t.Stores() {
		s.Stores = append(s.Stores, StoreShape{StoreInfo: st, Step: defs[st.Kind+"\x00"+st.Name]})
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
