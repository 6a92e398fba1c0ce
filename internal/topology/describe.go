package topology

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/veltrix/veltrix/processors"
)

// Description is the stable JSON form of a topology (describe --format json
// and /v1/topology).
type Description struct {
	AppID          string            `json:"app_id"`
	Sources        []string          `json:"sources"`
	Rules          []RuleDescription `json:"rules"`
	Stores         []StoreInfo       `json:"stores"`
	InternalTopics []InternalTopic   `json:"internal_topics"`
	CoPartitioned  [][]string        `json:"co_partitioned"`
	Sinks          []string          `json:"sinks"`
	// AddedRepartitions are the repartitions the topology added before
	// steps that group by a key their input is not partitioned by.
	AddedRepartitions []Repartition `json:"added_repartitions"`
}

// RuleDescription describes one rule.
type RuleDescription struct {
	Name     string            `json:"name"`
	From     []string          `json:"from"`
	Template string            `json:"template,omitempty"`
	OnError  string            `json:"on_error"`
	DLQ      string            `json:"dlq,omitempty"`
	Steps    []processors.Info `json:"steps"`
	Outputs  []string          `json:"outputs"`
}

// InternalTopic is a topic Veltrix writes for itself.
type InternalTopic struct {
	Topic string `json:"topic"`
	Kind  string `json:"kind"`            // "changelog", "repartition" or "dlq"
	Store string `json:"store,omitempty"` // the store of a changelog
	Rule  string `json:"rule,omitempty"`  // the rule of a changelog's store or of a repartition topic
}

// Description returns the topology's description.
func (t *Topology) Description() Description {
	d := Description{
		AppID:          t.AppID,
		Sources:        nonNil(t.sources()),
		Rules:          []RuleDescription{},
		Stores:         nonNil(t.Stores()),
		InternalTopics: nonNil(t.InternalTopics()),
		CoPartitioned:  nonNil(t.CoPartitioned()),
		Sinks:          nonNil(t.sinks()),

		AddedRepartitions: nonNil(t.AddedRepartitions()),
	}
	for _, r := range t.Rules {
		var outs []string
		for _, s := range r.stages() {
			outs = append(outs, s.Outputs...)
		}
		d.Rules = append(d.Rules, RuleDescription{
			Name: r.Name, From: nonNil(r.From), Template: r.Template, OnError: r.OnError, DLQ: r.DLQ,
			Steps: nonNil(r.Describe()), Outputs: nonNil(outs),
		})
	}
	return d
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Describe writes the topology in a format: "text" (for people), "mermaid"
// (a flowchart LR graph: topic -> rule -> steps -> topic) or "json" (the
// Description, indented).
func (t *Topology) Describe(w io.Writer, format string) error {
	var err error
	switch format {
	case "text", "":
		err = t.describeText(w)
	case "mermaid":
		err = t.describeMermaid(w)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		err = enc.Encode(t.Description())
	default:
		return fmt.Errorf("topology: unknown describe format %q (want text, mermaid or json)", format)
	}
	if err != nil {
		return fmt.Errorf("topology: describe: %w", err)
	}
	return nil
}

func (t *Topology) describeText(w io.Writer) error {
	var b strings.Builder
	d := t.Description()
	fmt.Fprintf(&b, "app: %s\n", d.AppID)
	list := func(title string, items []string) {
		fmt.Fprintf(&b, "%s:\n", title)
		if len(items) == 0 {
			b.WriteString("  (none)\n")
		}
		for _, it := range items {
			fmt.Fprintf(&b, "  %s\n", it)
		}
	}
	list("sources", d.Sources)
	b.WriteString("rules:\n")
	if len(d.Rules) == 0 {
		b.WriteString("  (none)\n")
	}
	for _, r := range d.Rules {
		fmt.Fprintf(&b, "  %s\n", r.Name)
		fmt.Fprintf(&b, "    from: %s\n", strings.Join(r.From, ", "))
		if r.Template != "" {
			fmt.Fprintf(&b, "    template: %s\n", r.Template)
		}
		onErr := r.OnError
		if r.DLQ != "" {
			onErr += " -> " + r.DLQ
		}
		fmt.Fprintf(&b, "    on_error: %s\n", onErr)
		b.WriteString("    steps:\n")
		textSteps(&b, r.Steps, "      ")
	}
	stores := make([]string, len(d.Stores))
	for i, s := range d.Stores {
		stores[i] = fmt.Sprintf("%s (%s, rule %s, topics %s)", s.Name, s.Kind, s.Rule, strings.Join(s.Topics, ", "))
	}
	list("stores", stores)
	internal := make([]string, len(d.InternalTopics))
	for i, it := range d.InternalTopics {
		switch {
		case it.Store != "":
			internal[i] = it.Topic + " (" + it.Kind + " of store " + it.Store + ")"
		case it.Rule != "":
			internal[i] = it.Topic + " (" + it.Kind + " of rule " + it.Rule + ")"
		default:
			internal[i] = it.Topic + " (" + it.Kind + ")"
		}
	}
	list("internal topics", internal)
	groups := make([]string, len(d.CoPartitioned))
	for i, g := range d.CoPartitioned {
		groups[i] = strings.Join(g, ", ")
	}
	list("co-partitioned", groups)
	list("sinks", d.Sinks)
	_, err := io.WriteString(w, b.String())
	return err
}

func textSteps(b *strings.Builder, steps []processors.Info, indent string) {
	for i, s := range steps {
		fmt.Fprintf(b, "%s%d. %-7s %s\n", indent, i+1, s.Kind, oneLine(s.Arg))
		for _, br := range s.Branches {
			fmt.Fprintf(b, "%s   %s:\n", indent, oneLine(br.Label))
			textSteps(b, br.Steps, indent+"     ")
		}
	}
}

// oneLine folds whitespace so that a multi-line expression stays on one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// mermaid builds a flowchart: topics are cylinders, rules rounded boxes,
// steps boxes; route branches are labelled edges.
type mermaid struct {
	b      strings.Builder
	topics map[string]string // topic -> node id
	stores map[string]string // store -> node id
	n      int
}

func (t *Topology) describeMermaid(w io.Writer) error {
	m := &mermaid{topics: map[string]string{}, stores: map[string]string{}}
	m.b.WriteString("flowchart LR\n")
	for _, r := range t.Rules {
		for _, from := range r.From {
			m.topic(from)
		}
	}
	for ri, r := range t.Rules {
		rid := fmt.Sprintf("r%d", ri)
		fmt.Fprintf(&m.b, "  %s([\"rule %s\"])\n", rid, esc(r.Name))
		for _, from := range r.From {
			fmt.Fprintf(&m.b, "  %s --> %s\n", m.topic(from), rid)
		}
		m.steps(rid, "", r.info)
		for _, s := range r.stages()[1:] {
			m.steps(m.topic(s.From[0]), "", s.info)
		}
		if r.DLQ != "" {
			fmt.Fprintf(&m.b, "  %s -. dlq .-> %s\n", rid, m.topic(r.DLQ))
		}
	}
	_, err := io.WriteString(w, m.b.String())
	return err
}

// topic returns the node id of a topic, declaring it on first use.
func (m *mermaid) topic(name string) string {
	return m.node(m.topics, "t", "%s[(\"%s\")]", name)
}

// store returns the node id of a store (a hexagon), declaring it on first use.
func (m *mermaid) store(name string) string {
	return m.node(m.stores, "st", "%s{{\"store %s\"}}", name)
}

// node returns the id of name among ids (prefix and a number), declaring
// it with shape (a format of the id and the escaped name) on first use.
func (m *mermaid) node(ids map[string]string, prefix, shape, name string) string {
	if id, ok := ids[name]; ok {
		return id
	}
	id := fmt.Sprintf("%s%d", prefix, len(ids))
	ids[name] = id
	fmt.Fprintf(&m.b, "  "+shape+"\n", id, esc(name))
	return id
}

// steps chains the steps after node prev (the first edge labelled label).
func (m *mermaid) steps(prev, label string, steps []processors.Info) {
	for _, s := range steps {
		m.n++
		id := fmt.Sprintf("s%d", m.n)
		text := s.Kind
		if s.Arg != "" {
			text += ": " + oneLine(s.Arg)
		}
		fmt.Fprintf(&m.b, "  %s[\"%s\"]\n", id, esc(text))
		if label != "" {
			fmt.Fprintf(&m.b, "  %s -->|\"%s\"| %s\n", prev, esc(label), id)
			label = ""
		} else {
			fmt.Fprintf(&m.b, "  %s --> %s\n", prev, id)
		}
		for _, o := range s.Outputs {
			fmt.Fprintf(&m.b, "  %s --> %s\n", id, m.topic(o))
		}
		if s.Store != "" {
			fmt.Fprintf(&m.b, "  %s -.- %s\n", id, m.store(s.Store))
		}
		for _, br := range s.Branches {
			m.steps(id, oneLine(br.Label), br.Steps)
		}
		prev = id
	}
}

// esc makes text safe inside a quoted Mermaid label.
func esc(s string) string {
	return strings.NewReplacer(`"`, "#quot;", "&", "#amp;", "<", "#lt;", ">", "#gt;").Replace(s)
}
