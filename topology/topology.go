package topology

import (
	"log/slog"
	"slices"

	"github.com/veltrix/veltrix/config"
	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/processors"
)

// Topology is the validated processing graph of a configuration: every rule
// with its compiled steps, the topics it reads and writes. It is immutable
// after Build and safe for concurrent use by every task.
type Topology struct {
	AppID string
	Rules []*Rule // in configuration order

	byTopic       map[string][]*Rule // input topic -> rules reading it, in order
	coPartitioned [][]string
}

// Rule is one compiled rule.
type Rule struct {
	Name     string
	From     []string
	Template string // the template it instantiates, if any
	Steps    processors.Chain
	OnError  string   // config.OnErrorFail, OnErrorSkip or OnErrorDLQ
	DLQ      string   // the DLQ topic when OnError is dlq, else ""
	Outputs  []string // topics its steps write, in order of appearance (DLQ not included)

	info []processors.Info
}

// Describe returns the description of the rule's steps (kind, main argument,
// outputs, nested branches).
func (r *Rule) Describe() []processors.Info { return r.info }

// Option changes how Build builds the topology.
type Option func(*options)

type options struct {
	log   *slog.Logger
	specs []*processors.Spec
}

// WithLogger sets the logger of log steps. The default discards.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithSpecs replaces the step kinds (the default is processors.Specs()).
// Tests use it to add kinds.
func WithSpecs(specs []*processors.Spec) Option { return func(o *options) { o.specs = specs } }

// Build compiles every rule of cfg (inline steps, or a template instantiated
// with the rule's arguments) and checks the graph. The error, when not nil,
// is a diag.List of every problem found in every rule and template: unknown
// step kinds (VX3003), wrong step shapes (VX3004), CEL syntax and type errors
// (VX3001, VX3002), unknown templates (VX2001), template cycles (VX2006),
// outputs that loop back into the rule (VX3005), unreachable route branches
// (VX3006) and invalid topic names after substitution (VX1107).
//
// Templates that no rule uses are compiled too (with their defaults, or
// placeholder values for required parameters) so that their errors show.
func Build(cfg *config.Config, opts ...Option) (*Topology, error) {
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.specs == nil {
		o.specs = processors.Specs()
	}
	st := &build{cfg: cfg, specs: o.specs, log: o.log, used: map[string]bool{}}
	t := &Topology{AppID: cfg.App.ID, byTopic: map[string][]*Rule{}}
	for i, rc := range cfg.Rules {
		r := st.rule(i, rc)
		if r == nil {
			continue
		}
		t.Rules = append(t.Rules, r)
		for _, from := range r.From {
			if !slices.Contains(t.byTopic[from], r) {
				t.byTopic[from] = append(t.byTopic[from], r)
			}
		}
	}
	for _, tmpl := range cfg.Templates {
		if !st.used[tmpl.Name] {
			st.unused(tmpl)
		}
	}
	if err := dedupe(st.errs).Err(); err != nil {
		return nil, err
	}
	return t, nil
}

// dedupe drops repeated problems (a template used by several rules reports
// its own errors once).
func dedupe(l diag.List) diag.List {
	type key struct {
		code          diag.Code
		file          string
		line, col     int
		path, message string
	}
	seen := map[key]bool{}
	out := l[:0]
	for _, e := range l {
		k := key{e.Code, e.File, e.Line, e.Column, e.Path, e.Message}
		if !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	return out
}

// InputTopics returns every topic a rule reads, sorted and unique.
func (t *Topology) InputTopics() []string {
	var out []string
	for _, r := range t.Rules {
		out = append(out, r.From...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// OutputTopics returns every topic the topology writes: the sinks of its
// steps and the DLQ topics of rules with on_error dlq; sorted and unique.
func (t *Topology) OutputTopics() []string {
	out := t.sinks()
	out = append(out, t.dlqTopics()...)
	slices.Sort(out)
	return slices.Compact(out)
}

// sinks returns the topics written by steps, sorted and unique.
func (t *Topology) sinks() []string {
	var out []string
	for _, r := range t.Rules {
		out = append(out, r.Outputs...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// dlqTopics returns the DLQ topics in use, sorted and unique.
func (t *Topology) dlqTopics() []string {
	var out []string
	for _, r := range t.Rules {
		if r.OnError == config.OnErrorDLQ && r.DLQ != "" {
			out = append(out, r.DLQ)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Rule returns the rule with the given name, or nil.
func (t *Topology) Rule(name string) *Rule {
	for _, r := range t.Rules {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// CoPartitioned returns the groups of topics that must have equal partition
// counts because one task reads them together into shared state (a join's
// stream and table). Stateless rules need none.
func (t *Topology) CoPartitioned() [][]string { return t.coPartitioned }
