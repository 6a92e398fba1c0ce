package processors

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/pkg/expr"
)

// Spec describes one step kind: its shape (for docs and describe) and how to
// build it from its YAML node. One spec per kind drives parsing, validation,
// docs/steps.md (generated from Specs, checked by a test) and describe.
type Spec struct {
	Kind    string  // the step's key in YAML, e.g. "filter"
	Summary string  // one line
	Doc     string  // a paragraph of Markdown
	Fields  []Field // for the mapping form; empty when the kind takes one value, or one field named WholeValue that decodes the whole value
	Example string  // YAML of one or more steps of this kind
	// Key says, for a step that groups or looks up by a key (a Grouper),
	// what that key is and what it keys; docs/steps.md lists it under
	// "Keys and repartitioning". Empty for other kinds.
	Key string
	// Build parses n (the value under the kind's key) and returns the step.
	// It reports every problem through b and returns nil when n is unusable.
	// path is the dotted path of n, e.g. rules[0].steps[2].to.
	Build func(b Builder, n *yaml.Node, path string) Step
}

// Field is one key of a step's mapping form. Its Type drives DecodeFields
// (parsing and validation) and the type column of docs/steps.md.
type Field struct {
	Name     string
	Type     FieldType
	Required bool
	Doc      string
	// What names the field in messages ("the key"); default Name. For an
	// ExprMap field, what its keys are ("header names").
	What string
	// Hint is the hint of a wrong value of an Enum, Bool, Int or ExprMap
	// field.
	Hint string
}

// Builder is what a spec's Build needs from whoever builds the topology: it
// compiles expressions, resolves names, builds nested step lists and gathers
// errors, so a step kind never sees templates or files.
type Builder interface {
	// Expr compiles a scalar node as a CEL expression; on a problem it
	// records a VX3001/VX3002/VX3004 error and returns nil.
	Expr(n *yaml.Node, path string) *expr.Program
	// Name resolves a scalar node that names something, substituting
	// ${params.x}; on a problem it records an error and returns false. It
	// declares nothing: a topic the step writes goes through Output, a
	// store through Store or ReadStore.
	Name(n *yaml.Node, path string) (string, bool)
	// Steps builds a nested list of steps (a route branch).
	Steps(n *yaml.Node, path string) Chain
	// Use builds a `use: template` step (its node is the whole step mapping).
	Use(n *yaml.Node, path string) Step
	// Errorf records a problem at n.
	Errorf(n *yaml.Node, path string, code diag.Code, format string, args ...any) *diag.Error
	// Logger is where log steps write (at info, with the rule's name).
	Logger() *slog.Logger

	// Output declares a topic the step writes (with Emit). It resolves the
	// name like Name, checks that Kafka accepts it (VX1107) and that the
	// rule does not read it (VX3005), and returns it; on a problem it
	// records an error and returns "". Declared outputs are the rule's
	// Outputs: topic creation, describe and validate --brokers read them, so
	// a step that emits to a topic it did not declare writes to a topic
	// nobody created or checked.
	Output(n *yaml.Node, path string) string
	// Store declares the store a stateful step owns (kind is the step's
	// kind, e.g. "aggregate"). It resolves the name like Name, checks that
	// the changelog topic <app.id>.<store>.changelog is a valid topic name
	// and that no other step declares the same store, and returns the name;
	// on a problem it records an error and returns "".
	Store(n *yaml.Node, path, kind string) string
	// ReadStore names a store that another step declares with the given
	// kind (a join reads a table's store). The topology checks, once every
	// rule is built, that such a step exists, and records the topics of
	// both rules as co-partitioned. On a problem it returns "".
	ReadStore(n *yaml.Node, path, kind string) string
	// Repartition returns the repartition topic <app.id>.<rule>.repartition
	// of the rule being built and marks the point where the topology splits
	// the rule: the steps after the step calling it read that topic. Only a
	// top-level step may call it, once per rule; otherwise it records an
	// error and returns "".
	Repartition(n *yaml.Node, path string) string
}

// Specs returns the specs of every built-in step kind, in documentation
// order. The list is built on each call, so callers may keep or change it.
func Specs() []*Spec {
	return []*Spec{filterSpec(), setSpec(), dropSpec(), mapSpec(), routeSpec(), toSpec(), logSpec(),
		rekeySpec(), aggregateSpec(), dedupeSpec(), tableSpec(), joinSpec(), sequenceSpec()}
}

// ItemObserver is implemented by a Builder that wants to know which item of
// a step list BuildChain is building: the topology ties what a step declares
// (Output, Store, ReadStore) to the step, and the step to its place in its
// rule. Items nest (a route's branches, a used template's steps are built
// while their item is), so the calls nest too.
type ItemObserver interface {
	// BuildingItem is called before item i of the list at listPath is
	// built; item is its YAML node.
	BuildingItem(listPath string, i int, item *yaml.Node)
	// BuiltItem is called after it, with the item's kind (UseKind for a
	// use: step; "" when the item has no usable kind) and the built step
	// (nil when it has problems).
	BuiltItem(listPath string, i int, kind string, s Step)
}

// UseKind is the key of a step that instantiates a template.
const UseKind = "use"

// BuildChain builds a list of steps from the items of a YAML sequence; path
// is the path of the list (items are path[i]). Each item is a mapping with
// one key, the step kind (or `use:` with an optional `with:`). Unknown kinds
// are VX3003 with a did-you-mean hint; wrong shapes VX3004; steps after a
// route (which never continue) VX3004.
func BuildChain(b Builder, specs []*Spec, items []*yaml.Node, path string) Chain {
	kinds := make([]string, 0, len(specs)+1)
	for _, s := range specs {
		kinds = append(kinds, s.Kind)
	}
	kinds = append(kinds, UseKind)
	chain := make(Chain, 0, len(items))
	var routeAt *yaml.Node
	obs, _ := b.(ItemObserver)
	for i, item := range items {
		ipath := fmt.Sprintf("%s[%d]", path, i)
		if obs != nil {
			obs.BuildingItem(path, i, item)
		}
		if routeAt != nil {
			setHint(b.Errorf(item, ipath, diag.InvalidStep, "this step never runs: the route at line %d does not continue after its branches", routeAt.Line),
				"move the step into the route's branches")
			routeAt = nil // report once
		}
		kind, s := buildItem(b, specs, kinds, item, ipath)
		if obs != nil {
			obs.BuiltItem(path, i, kind, s)
		}
		if s != nil {
			chain = append(chain, s)
		}
		if kind == "route" {
			routeAt = item.Content[0]
		}
	}
	return chain
}

// buildItem builds one item of a step list: its kind and the step (nil when
// it has problems, all recorded).
func buildItem(b Builder, specs []*Spec, kinds []string, item *yaml.Node, ipath string) (string, Step) {
	if item.Kind != yaml.MappingNode || len(item.Content) == 0 {
		b.Errorf(item, ipath, diag.InvalidStep, "a step must be a mapping like {filter: ...}, found %s", nodeKind(item))
		return "", nil
	}
	kindNode := item.Content[0]
	kind := kindNode.Value
	if hasKey(item, UseKind) {
		return UseKind, b.Use(item, ipath)
	}
	if len(item.Content) > 2 {
		setHint(b.Errorf(item.Content[2], ipath+"."+item.Content[2].Value, diag.InvalidStep,
			"a step has exactly one kind, found %q and %q", kind, item.Content[2].Value),
			"write each step as its own list item")
		return "", nil
	}
	i := slices.IndexFunc(specs, func(s *Spec) bool { return s.Kind == kind })
	if i < 0 {
		e := b.Errorf(kindNode, ipath+"."+kind, diag.UnknownStep, "unknown step kind %q", kind)
		hint := "step kinds are " + strings.Join(kinds, ", ")
		if s := diag.Closest(kind, kinds); s != "" {
			hint = fmt.Sprintf("did you mean %q? ", s) + hint
		}
		setHint(e, "%s", hint)
		return "", nil
	}
	return kind, specs[i].Build(b, item.Content[1], ipath+"."+kind)
}

// mapping checks that n is a mapping whose keys are among the spec's fields
// (required ones present) and returns the value nodes by key.
func mapping(b Builder, n *yaml.Node, path string, fields []Field) (map[string]*yaml.Node, bool) {
	if n.Kind != yaml.MappingNode {
		b.Errorf(n, path, diag.InvalidStep, "expected a mapping, found %s", nodeKind(n))
		return nil, false
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.Name
	}
	out := make(map[string]*yaml.Node, len(fields))
	ok := true
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !slices.Contains(names, k.Value) {
			e := b.Errorf(k, path+"."+k.Value, diag.InvalidStep, "unknown key %q", k.Value)
			hint := "allowed keys: " + strings.Join(names, ", ")
			if s := diag.Closest(k.Value, names); s != "" {
				hint = fmt.Sprintf("did you mean %q? ", s) + hint
			}
			setHint(e, "%s", hint)
			ok = false
			continue
		}
		out[k.Value] = v
	}
	for _, f := range fields {
		if f.Required && out[f.Name] == nil {
			b.Errorf(n, path, diag.InvalidStep, "missing required key %q", f.Name)
			ok = false
		}
	}
	return out, ok
}

// setHint sets the hint of a recorded error in place.
func setHint(e *diag.Error, format string, args ...any) {
	if e != nil {
		e.Hint = fmt.Sprintf(format, args...)
	}
}

// scalar reports a VX3004 unless n is a scalar.
func scalar(b Builder, n *yaml.Node, path, what string) bool {
	if n == nil || n.Kind != yaml.ScalarNode {
		b.Errorf(n, path, diag.InvalidStep, "expected %s, found %s", what, nodeKind(n))
		return false
	}
	return true
}

func hasKey(n *yaml.Node, key string) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

// nodeKind names a node's kind for messages.
func nodeKind(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "an empty document"
}

// NodeKind names a node's kind for messages: "a list", "a mapping", a
// quoted scalar, "null" or "nothing".
func NodeKind(n *yaml.Node) string { return nodeKind(n) }

// Info describes a built step for describe: its kind, its main argument on
// one line, the topics it writes and the store it keeps or reads, and its
// nested step lists. A step's Describe gives Kind, Arg and Branches, for
// display; Outputs and Store are what the step declared through the Builder
// (Output, Repartition, Store, ReadStore), filled in by the topology.
type Info struct {
	Kind     string       `json:"kind"`
	Arg      string       `json:"arg,omitempty"`
	Outputs  []string     `json:"outputs,omitempty"`
	Store    string       `json:"store,omitempty"` // the store a stateful step owns or reads
	Branches []BranchInfo `json:"branches,omitempty"`
}

// BranchInfo is a nested list of steps: a route branch or a used template.
type BranchInfo struct {
	Label string `json:"label"`
	Steps []Info `json:"steps"`
}

// Describer is implemented by every built-in step.
type Describer interface {
	Describe() Info
}

// Describe returns the infos of a chain's steps (steps that are not
// Describers show as kind "custom").
func Describe(c Chain) []Info {
	out := make([]Info, 0, len(c))
	for _, s := range c {
		if d, ok := s.(Describer); ok {
			out = append(out, d.Describe())
		} else {
			out = append(out, Info{Kind: "custom", Arg: fmt.Sprintf("%T", s)})
		}
	}
	return out
}
