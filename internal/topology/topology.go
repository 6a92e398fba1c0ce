package topology

import (
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/processors"
)

// Topology is the validated processing graph of a configuration: every rule
// with its compiled steps, the topics it reads and writes. It is immutable
// after Build and safe for concurrent use by every task.
type Topology struct {
	AppID string
	Rules []*Rule // in configuration order

	byTopic       map[string][]*Rule // input topic -> rules (or continuations after a rekey) reading it, in order
	coPartitioned [][]string
	stores        []StoreInfo       // sorted by name
	storeDefs     map[string]string // store -> the definition of the step declaring it
	repartitions  []string          // sorted
	punctuating   []*Rule           // rules and continuations holding punctuating steps
	added         []Repartition
	maxSkew       time.Duration
	tracer        Tracer // nil: no tracing (see WithTracer)
}

// AheadOfClock reports whether a record timestamp is further ahead of the
// wall clock now than processing.max_event_time_skew allows: such a record
// fails (VX5008) and must not move stream time.
func (t *Topology) AheadOfClock(ts, now time.Time) bool {
	return t.maxSkew > 0 && ts.After(now.Add(t.maxSkew))
}

// StoreInfo describes a store declared by a stateful step. The engine opens
// every store in every task and keeps its changelog topic.
type StoreInfo struct {
	Name      string `json:"name"`
	Rule      string `json:"rule"`      // the rule of the step declaring it
	Kind      string `json:"kind"`      // the declaring step's kind: aggregate, dedupe, table, sequence
	Changelog string `json:"changelog"` // state.ChangelogTopic(app.id, Name)
	// Topics are the topics whose records reach the declaring step (the
	// rule's inputs, or its repartition topic when the step follows a
	// rekey); the changelog has their partition count.
	Topics []string `json:"topics"`
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
	// after is the rule's continuation when it rekeys: the steps after the
	// rekey, reading the repartition topic (same name, on_error and DLQ, so
	// metrics count a rekeyed rule's records once per stage).
	after      *Rule
	tombstones bool // the first step takes tombstones (table)
	punctuates bool // some step punctuates
	// maxRecordBytes is kafka.max_record_bytes: a larger output is a
	// VX5006 failure of its record, a larger DLQ record is shortened.
	maxRecordBytes int
}

// init derives the flags of a built rule (or continuation).
func (r *Rule) init() {
	if len(r.Steps) > 0 {
		if ta, ok := r.Steps[0].(processors.TombstoneAccepter); ok {
			r.tombstones = ta.AcceptsTombstones()
		}
	}
	r.punctuates = processors.HasPunctuator(r.Steps)
}

// Repartition returns the rule's first repartition topic ("" when it has
// none). Its Steps end with the rekey (or the added repartition); the steps
// after it run on records of that topic.
func (r *Rule) Repartition() string {
	if r.after == nil {
		return ""
	}
	return r.after.From[0]
}

// RepartitionTopics returns every repartition topic of the rule, in order:
// its rekey's and those the key analysis added.
func (r *Rule) RepartitionTopics() []string {
	var out []string
	for _, s := range r.stages()[1:] {
		out = append(out, s.From[0])
	}
	return out
}

// stages returns the rule and its continuations, in order.
func (r *Rule) stages() []*Rule {
	out := []*Rule{r}
	for s := r.after; s != nil; s = s.after {
		out = append(out, s)
	}
	return out
}

// Describe returns the description of the rule's steps (kind, main argument,
// outputs, nested branches), the steps after each repartition included.
func (r *Rule) Describe() []processors.Info {
	if r.after == nil {
		return r.info
	}
	var out []processors.Info
	for _, s := range r.stages() {
		out = append(out, s.info...)
	}
	return out
}

// Option changes how Build builds the topology.
type Option func(*options)

type options struct {
	log   *slog.Logger
	specs []*processors.Spec
	load  []config.Option // Compile's options for config.Load
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
// (VX3001, VX3002), unknown templates of use: steps (VX2001), template
// cycles (VX2006), outputs that loop back into the rule (VX3005),
// unreachable route branches (VX3006), invalid topic names after
// substitution (VX1107), stores declared twice, joins on a store no table
// step declares and misplaced rekeys (VX3004).
//
// A rule with a rekey is split: its Steps end with the rekey, which writes
// to the repartition topic, and the steps after it read that topic (an
// input and an output of the topology, and an internal topic). A join
// records its rule's topics and its table rule's topics as co-partitioned,
// and so does a rule with stateful steps that reads several topics.
//
// Templates that no rule uses are compiled too (with their defaults, or
// placeholder values for required parameters) so that their errors show.
//
// cfg is a Config as config.Load (or config.Fragment) returns it, problems
// or not: Build does not repeat the loader's checks. A rule whose template
// does not exist is skipped (the loader reported VX2001 at its template:),
// and so is a template whose parameter declarations the loader rejected.
// Compile does both halves and is what commands use.
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
	st.topicKey = st.topicKeys()
	t := &Topology{AppID: cfg.App.ID, byTopic: map[string][]*Rule{}, maxSkew: cfg.Processing.MaxEventTimeSkew}
	for i, rc := range cfg.Rules {
		r := st.rule(i, rc)
		if r == nil {
			continue
		}
		t.Rules = append(t.Rules, r)
		for _, stage := range r.stages() {
			stage.maxRecordBytes = cfg.Kafka.MaxRecordBytes
			for _, from := range stage.From {
				if !slices.Contains(t.byTopic[from], stage) {
					t.byTopic[from] = append(t.byTopic[from], stage)
				}
			}
			if stage.punctuates {
				t.punctuating = append(t.punctuating, stage)
			}
		}
		t.repartitions = append(t.repartitions, r.RepartitionTopics()...)
	}
	slices.Sort(t.repartitions)
	t.added = st.added
	for _, tmpl := range cfg.Templates {
		if !st.used[tmpl.Name] {
			st.unused(tmpl)
		}
	}
	st.linkStores(t)
	if err := dedupe(st.errs).Err(); err != nil {
		return nil, err
	}
	return t, nil
}

// linkStores fills the topology's stores and co-partition groups, and
// checks the stores steps read.
func (st *build) linkStores(t *Topology) {
	topicsOf := func(rule string, stage int) []string {
		r := t.Rule(rule)
		if r == nil {
			return nil // the rule has errors of its own
		}
		if stages := r.stages(); stage < len(stages) {
			return stages[stage].From
		}
		return r.From
	}
	var groups [][]string
	for _, d := range st.stores {
		d.Topics = slices.Clone(topicsOf(d.Rule, d.stage))
		if d.Topics == nil {
			continue
		}
		t.stores = append(t.stores, d.StoreInfo)
		if t.storeDefs == nil {
			t.storeDefs = map[string]string{}
		}
		t.storeDefs[d.Name] = d.def
		if len(d.Topics) > 1 {
			groups = append(groups, slices.Clone(d.Topics))
		}
	}
	slices.SortFunc(t.stores, func(a, b StoreInfo) int { return strings.Compare(a.Name, b.Name) })
	for _, ref := range st.refs {
		i := slices.IndexFunc(st.stores, func(d *storeDecl) bool { return d.Name == ref.name })
		if i < 0 || st.stores[i].Kind != ref.kind {
			var names []string
			for _, d := range st.stores {
				if d.Kind == ref.kind {
					names = append(names, d.Name)
				}
			}
			e := ref.pos.At(diag.InvalidStep, "no %s step declares the store %q", ref.kind, ref.name)
			if i >= 0 {
				e = ref.pos.At(diag.InvalidStep, "store %q is declared by a %s step of rule %q, not by a %s step", ref.name, st.stores[i].Kind, st.stores[i].Rule, ref.kind)
			}
			switch c := diag.Closest(ref.name, names); {
			case i >= 0:
				e = e.WithHint("read a store declared by a %s step", ref.kind)
			case c != "":
				e = e.WithHint("did you mean %q?", c)
			case len(names) > 0:
				e = e.WithHint("%s stores are %s", ref.kind, strings.Join(names, ", "))
			default:
				e = e.WithHint("add a rule that reads the table's topic with a step - %s: {store: %s}", ref.kind, ref.name)
			}
			st.errs.Add(e)
			continue
		}
		g := append(slices.Clone(topicsOf(ref.rule, ref.stage)), st.stores[i].Topics...)
		if len(g) > 1 {
			groups = append(groups, g)
		}
	}
	for _, g := range groups {
		slices.Sort(g)
		g = slices.Compact(g)
		if len(g) > 1 && !slices.ContainsFunc(t.coPartitioned, func(x []string) bool { return slices.Equal(x, g) }) {
			t.coPartitioned = append(t.coPartitioned, g)
		}
	}
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

// InputTopics returns every topic a rule reads, the repartition topics
// included; sorted and unique.
func (t *Topology) InputTopics() []string {
	out := slices.Clone(t.repartitions)
	for _, r := range t.Rules {
		out = append(out, r.From...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// sources returns the topics rules read, without repartition topics.
func (t *Topology) sources() []string {
	var out []string
	for _, r := range t.Rules {
		out = append(out, r.From...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// OutputTopics returns every topic the topology produces to: the sinks of
// its steps, the repartition topics and the DLQ topics of rules with
// on_error dlq; sorted and unique. Changelog topics are not included (see
// InternalTopics and Stores).
func (t *Topology) OutputTopics() []string {
	out := t.sinks()
	out = append(out, t.repartitions...)
	out = append(out, t.dlqTopics()...)
	slices.Sort(out)
	return slices.Compact(out)
}

// sinks returns the topics written by steps, sorted and unique, without
// repartition topics.
func (t *Topology) sinks() []string {
	var out []string
	for _, r := range t.Rules {
		for _, stage := range r.stages() {
			for _, o := range stage.Outputs {
				if !slices.Contains(t.repartitions, o) {
					out = append(out, o)
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Stores returns the stores declared by stateful steps, sorted by name. The
// engine opens all of them in every task (a task is an input partition) and
// keeps each one's changelog topic with the partition count of its Topics.
func (t *Topology) Stores() []StoreInfo { return slices.Clone(t.stores) }

// StoreNames returns the names of the stores, sorted.
func (t *Topology) StoreNames() []string {
	out := make([]string, len(t.stores))
	for i, s := range t.stores {
		out[i] = s.Name
	}
	return out
}

// Repartitions returns the repartition topics of rules that rekey, sorted.
// Each is both an input and an output of the topology.
func (t *Topology) Repartitions() []string { return slices.Clone(t.repartitions) }

// InternalTopics returns the topics Veltrix writes for itself: the changelog
// of each store (kind "changelog"), the repartition topic of each rule that
// rekeys ("repartition") and the DLQ topics ("dlq"), sorted by topic.
func (t *Topology) InternalTopics() []InternalTopic {
	var out []InternalTopic
	for _, s := range t.stores {
		out = append(out, InternalTopic{Topic: s.Changelog, Kind: "changelog", Store: s.Name, Rule: s.Rule})
	}
	for _, r := range t.Rules {
		for _, p := range r.RepartitionTopics() {
			out = append(out, InternalTopic{Topic: p, Kind: "repartition", Rule: r.Name})
		}
	}
	for _, q := range t.dlqTopics() {
		out = append(out, InternalTopic{Topic: q, Kind: "dlq"})
	}
	slices.SortFunc(out, func(a, b InternalTopic) int { return strings.Compare(a.Topic, b.Topic) })
	return out
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
// counts because one task reads them together into shared state: a join's
// topics and its table's, and the topics of one rule with stateful steps.
// Each group is sorted; repartition topics appear in them (the engine
// creates a repartition topic with its group's partition count).
func (t *Topology) CoPartitioned() [][]string { return t.coPartitioned }
