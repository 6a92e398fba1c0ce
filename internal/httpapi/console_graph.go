package httpapi

import (
	"fmt"
	"slices"
	"strings"

	"github.com/veltrix/veltrix/internal/topology"
	"github.com/veltrix/veltrix/processors"
)

// graph is the topology drawn as SVG: source topics on the left, rules in
// the middle (with their steps and live rates), and what the rules write on
// the right: output topics, repartition topics, DLQ topics and stores.
// Positions are computed here; the page's template draws them, so every
// label goes through html/template's escaping.
type graph struct {
	Width, Height int
	Nodes         []node
	Edges         []edge
}

type node struct {
	X, Y, W, H int
	Kind       string // topic, rule, dlq, repartition, store
	Title      string
	Lines      []string // under the title
	Href       string   // where a click goes, if anywhere
}

type edge struct {
	D     string // SVG path
	Kind  string // data, dlq, store
	Label string
}

// Layout constants (SVG user units).
const (
	colTopicX = 16
	colTopicW = 200
	colRuleX  = 290
	colRuleW  = 360
	colOutX   = 730
	colOutW   = 330
	rowGap    = 18
	topicH    = 40
	lineH     = 16
	graphPad  = 16
)

func (n node) right() (int, int) { return n.X + n.W, n.Y + n.H/2 }
func (n node) left() (int, int)  { return n.X, n.Y + n.H/2 }

func curve(x1, y1, x2, y2 int) string {
	mid := (x1 + x2) / 2
	return fmt.Sprintf("M%d,%d C%d,%d %d,%d %d,%d", x1, y1, mid, y1, mid, y2, x2, y2)
}

// stepLine is a one-line summary of a rule's steps: kinds in order, a
// route's branches in brackets.
func stepLine(steps []processors.Info) string {
	parts := make([]string, 0, len(steps))
	for _, s := range steps {
		p := s.Kind
		if len(s.Branches) > 0 {
			var bs []string
			for _, b := range s.Branches {
				bs = append(bs, stepLine(b.Steps))
			}
			p += "[" + strings.Join(bs, " | ") + "]"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " → ")
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func layoutGraph(topo *topology.Topology, snap snapshot) graph {
	desc := topo.Description()
	var g graph
	index := map[string]int{} // "kind:name" -> node index
	add := func(key string, n node) int {
		if i, ok := index[key]; ok {
			return i
		}
		g.Nodes = append(g.Nodes, n)
		index[key] = len(g.Nodes) - 1
		return len(g.Nodes) - 1
	}
	// Left column: the source topics.
	y := graphPad
	for _, t := range desc.Sources {
		add("topic:"+t, node{X: colTopicX, Y: y, W: colTopicW, H: topicH, Kind: "topic", Title: clip(t, 28), Lines: []string{"input topic"}})
		y += topicH + rowGap
	}
	leftH := y
	// Middle column: the rules.
	y = graphPad
	ruleAt := map[string]int{}
	for _, r := range desc.Rules {
		rt := snap.rates[r.Name]
		lines := []string{
			clip(stepLine(r.Steps), 52),
			fmt.Sprintf("in %s/s · out %s/s · filtered %s/s", pageFuncs["rate"].(func(float64) string)(rt.In),
				pageFuncs["rate"].(func(float64) string)(rt.Out), pageFuncs["rate"].(func(float64) string)(rt.Filtered)),
			fmt.Sprintf("dlq %s/s · errors %s/s · on_error %s", pageFuncs["rate"].(func(float64) string)(rt.DLQ),
				pageFuncs["rate"].(func(float64) string)(rt.Errors), r.OnError),
		}
		if r.Template != "" {
			lines = append([]string{"template " + r.Template}, lines...)
		}
		h := 26 + lineH*len(lines)
		ruleAt[r.Name] = add("rule:"+r.Name, node{X: colRuleX, Y: y, W: colRuleW, H: h, Kind: "rule", Title: clip(r.Name, 40), Lines: lines})
		y += h + rowGap
	}
	midH := y
	// Right column: outputs, repartitions, stores, DLQs, in rule order.
	y = graphPad
	right := func(key string, n node) int {
		if i, ok := index[key]; ok {
			return i
		}
		n.X, n.Y, n.W = colOutX, y, colOutW
		if n.H == 0 {
			n.H = topicH
		}
		y += n.H + rowGap
		return add(key, n)
	}
	link := func(from, to int, kind string) {
		x1, y1 := g.Nodes[from].right()
		x2, y2 := g.Nodes[to].left()
		g.Edges = append(g.Edges, edge{D: curve(x1, y1, x2, y2), Kind: kind})
	}
	repartitions := topo.Repartitions()
	for _, r := range desc.Rules {
		ri := ruleAt[r.Name]
		for _, f := range r.From {
			if ti, ok := index["topic:"+f]; ok {
				link(ti, ri, "data")
			}
		}
		for _, o := range r.Outputs {
			if slices.Contains(repartitions, o) {
				link(ri, right("repartition:"+o, node{Kind: "repartition", Title: clip(o, 44),
					Lines: []string{"repartition (read back by " + clip(r.Name, 24) + ")"}}), "data")
				continue
			}
			link(ri, right("topic:"+o, node{Kind: "topic", Title: clip(o, 44), Lines: []string{"output topic"}}), "data")
		}
		for _, s := range topo.Stores() {
			if s.Rule != r.Name {
				continue
			}
			lines := []string{fmt.Sprintf("%s · %s keys", s.Kind, pageFuncs["num"].(func(float64) string)(snap.storeKeys[s.Name]))}
			if rest := snap.restoring[s.Name]; rest > 0 {
				lines = append(lines, fmt.Sprintf("restoring: %s left", pageFuncs["num"].(func(float64) string)(rest)))
			}
			link(ri, right("store:"+s.Name, node{Kind: "store", Title: "store " + clip(s.Name, 38), Lines: lines, H: 26 + lineH*len(lines),
				Href: "/stores?store=" + s.Name}), "store")
		}
		if r.DLQ != "" {
			link(ri, right("dlq:"+r.DLQ, node{Kind: "dlq", Title: clip(r.DLQ, 44), Lines: []string{"dead-letter topic"}, Href: "/dlq"}), "dlq")
		}
	}
	g.Width = colOutX + colOutW + graphPad
	g.Height = slices.Max([]int{leftH, midH, y}) + graphPad
	return g
}
