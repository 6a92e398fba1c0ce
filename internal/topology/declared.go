package topology

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/processors"
)

// What the topology shows of a step and what it compares between two
// configurations comes from what the step declared while it was built
// (stepDecl): the topics it writes, the store it keeps or reads, its kind
// and its item. A step's Describe only supplies the display text (its
// argument and the labels of its branches).

// decl returns what step s declared, nil for a step built elsewhere (a
// repartition the key analysis added).
func (st *build) decl(s processors.Step) *stepDecl {
	if st.steps == nil || s == nil {
		return nil
	}
	return st.steps[s] // a non-comparable step type was never recorded: no entry
}

// describe returns the infos of a chain's steps: each step's display (kind,
// argument, branches) with the outputs and the store it declared, the
// steps of its nested lists likewise.
func (st *build) describe(c processors.Chain) []processors.Info {
	infos := processors.Describe(c)
	for i, s := range c {
		st.fill(&infos[i], s)
	}
	return infos
}

// fill sets in's kind, outputs and store from what s declared, and those of
// its nested steps when its display lists them in the same order.
func (st *build) fill(in *processors.Info, s processors.Step) {
	in.Outputs, in.Store = nil, ""
	if d := st.decl(s); d != nil {
		if d.kind != "" {
			in.Kind = d.kind
		}
		in.Outputs, in.Store = slices.Clone(d.outputs), d.store
	}
	if r, ok := s.(processors.Repartitioner); ok {
		in.Outputs = append(in.Outputs, r.RepartitionTopic())
	}
	n, ok := s.(processors.Nested)
	if !ok {
		return
	}
	chains := n.NestedChains()
	if len(chains) != len(in.Branches) {
		return
	}
	for j, nc := range chains {
		br := in.Branches[j].Steps
		if len(br) != len(nc.Steps) {
			continue
		}
		for k, ns := range nc.Steps {
			st.fill(&br[k], ns)
		}
	}
}

// stepName names a step in messages: its kind and its store ("aggregate
// revenue").
func (st *build) stepName(s processors.Step) string {
	d := st.decl(s)
	switch {
	case d == nil:
		return fmt.Sprintf("%T", s)
	case d.store != "":
		return d.kind + " " + d.store
	}
	return d.kind
}

// paramRE matches a parameter used in a step: params.x in an expression,
// ${params.x} in a name.
var paramRE = regexp.MustCompile(`params\.([A-Za-z_][A-Za-z0-9_]*)`)

// definition is the meaning of a stateful step as written: its item in a
// canonical form (keys sorted; comments, quoting, layout and white space
// runs left out) followed by the values of the template parameters it
// uses. Two steps with the same definition keep the same state.
func definition(item *yaml.Node, params map[string]*config.Value) string {
	var b strings.Builder
	var used []string
	canonical(&b, item, &used)
	slices.Sort(used)
	used = slices.Compact(used)
	for _, name := range used {
		if v, ok := params[name]; ok && v != nil {
			fmt.Fprintf(&b, " params.%s=%v", name, v.V)
		}
	}
	return b.String()
}

// canonical writes n in flow style with sorted mapping keys, collecting the
// parameters its scalars name.
func canonical(b *strings.Builder, n *yaml.Node, used *[]string) {
	if n == nil {
		b.WriteString("null")
		return
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			canonical(b, c, used)
		}
	case yaml.AliasNode:
		canonical(b, n.Alias, used)
	case yaml.SequenceNode:
		b.WriteString("[")
		for i, c := range n.Content {
			if i > 0 {
				b.WriteString(", ")
			}
			canonical(b, c, used)
		}
		b.WriteString("]")
	case yaml.MappingNode:
		idx := make([]int, 0, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			idx = append(idx, i)
		}
		slices.SortFunc(idx, func(x, y int) int { return strings.Compare(n.Content[x].Value, n.Content[y].Value) })
		b.WriteString("{")
		for k, i := range idx {
			if k > 0 {
				b.WriteString(", ")
			}
			canonical(b, n.Content[i], used)
			b.WriteString(": ")
			canonical(b, n.Content[i+1], used)
		}
		b.WriteString("}")
	default:
		for _, m := range paramRE.FindAllStringSubmatch(n.Value, -1) {
			*used = append(*used, m[1])
		}
		v := oneLine(n.Value)
		if v == "" || strings.ContainsAny(v, ",:{}[]\"") {
			v = fmt.Sprintf("%q", v)
		}
		b.WriteString(v)
	}
}
