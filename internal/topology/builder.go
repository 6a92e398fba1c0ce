package topology

import (
	"fmt"
	"log/slog"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/state"
	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/pkg/expr"
	"github.com/veltrix/veltrix/processors"
)

// build is shared by every scope of one Build.
type build struct {
	cfg   *config.Config
	specs []*processors.Spec
	log   *slog.Logger
	errs  diag.List
	used  map[string]bool // templates instantiated at least once

	stores   []*storeDecl // in declaration order
	refs     []*storeRef
	topicKey map[string]string // topic -> normalized key expression declared in topics:
	added    []Repartition
	steps    map[processors.Step]*stepDecl // what each built step declared
}

// stepDecl is one step as it was built: its kind, its item, and what it
// declared through the Builder. describe's edges, the key analysis' names
// and the stores' definitions come from these, never from a step's display
// (Describe).
type stepDecl struct {
	kind    string
	item    *yaml.Node // the item
	params  map[string]*config.Value
	outputs []string // topics it declared with Output
	store   string   // the store it declared with Store or ReadStore
}

// storeDecl is a store declared by a stateful step.
type storeDecl struct {
	StoreInfo
	def   string // the declaring step's definition (see definition)
	item  int    // the rule's top-level step declaring it (or holding the step)
	stage int    // the stage of the rule that step runs in (0: the rule's own topics)
	pos   diag.Pos
}

// storeRef is a store read by a step that does not own it (a join).
type storeRef struct {
	name, kind, rule string
	item, stage      int
	pos              diag.Pos
}

// ruleState is what the scopes of one rule record while its steps are
// built: its rekey point.
type ruleState struct {
	rekeyTopic string
	rekeyPos   diag.Pos
	topPath    string // the path of the rule's top-level step list
	item       int    // the top-level step being built
	outputs    []outputDecl
	building   []*stepDecl // the items being built, innermost last
}

// outputDecl is a topic a step declared it writes (Builder.Output).
type outputDecl struct {
	topic string
	item  int // the rule's top-level step declaring it (or holding the step)
}

// scope is where steps are being built: a rule's inline steps or one
// instance of a template. It implements processors.Builder.
type scope struct {
	st     *build
	rule   *config.Rule // the rule being built (its From for loop checks)
	file   string       // the file the steps are written in
	env    *expr.Env
	params map[string]*config.Value // bound parameters of the template instance
	stack  []string                 // templates being instantiated, outermost first
	log    *slog.Logger
	rs     *ruleState // shared by every scope of the rule
	depth  int        // nesting: route branches and used templates
	check  bool       // an unused template compiled for its errors: declares nothing
}

var _ processors.Builder = (*scope)(nil)

// rule builds one rule; nil when it has problems (all recorded).
func (st *build) rule(i int, rc *config.Rule) *Rule {
	before := len(st.errs)
	r := &Rule{Name: rc.Name, From: rc.From, Template: rc.Template, OnError: rc.OnError}
	if r.OnError == "" {
		r.OnError = config.OnErrorDLQ
	}
	if r.OnError == config.OnErrorDLQ {
		r.DLQ = rc.DLQ
		if r.DLQ == "" {
			r.DLQ = st.cfg.App.ID + ".dlq"
		}
	}
	path := rc.Pos.Path
	if path == "" {
		path = fmt.Sprintf("rules[%d]", i)
	}
	sc := &scope{st: st, rule: rc, file: rc.Pos.File, log: st.log.With("rule", rc.Name), rs: &ruleState{}}
	if rc.Template == "" {
		env, err := expr.NewEnv()
		if err != nil {
			st.errs.Add(rc.Pos.At(diag.Internal, "%v", err))
			return nil
		}
		sc.env = env
		sc.rs.topPath = path + ".steps"
		r.Steps = processors.BuildChain(sc, st.specs, rc.Steps, path+".steps")
	} else {
		// The loader reports a rule's unknown template (VX2001) at its
		// template: key; the rule is left out here.
		t := st.cfg.Template(rc.Template)
		if t == nil {
			return nil
		}
		st.used[t.Name] = true
		vals := make(map[string]*config.Value, len(t.Params))
		for k, v := range rc.With {
			vals[k] = v
		}
		sc.rs.topPath = templatePath(t) + ".steps"
		r.Steps = sc.instantiate(t, vals)
	}
	if r.DLQ != "" {
		if slices.Contains(r.From, r.DLQ) {
			st.errs.Add(rc.Pos.At(diag.OutputLoop, "rule %q reads its own DLQ topic %q", rc.Name, r.DLQ).
				WithHint("set dlq: to another topic"))
		} else if err := config.ValidTopicName(r.DLQ); err != nil {
			st.errs.Add(rc.Pos.At(diag.InvalidTopic, "DLQ topic %q is not a valid topic name: %v", r.DLQ, err))
		}
	}
	if len(st.errs) > before {
		return nil
	}
	p, ok := st.keys(r, sc.rs, st.topicKey)
	if !ok {
		return nil
	}
	st.added = append(st.added, p.added...)
	for _, d := range st.stores {
		if d.Rule == r.Name {
			d.stage = p.stage[d.item]
		}
	}
	for _, ref := range st.refs {
		if ref.rule == r.Name {
			ref.stage = p.stage[ref.item]
		}
	}
	r.Steps = p.steps
	outs := make([][]string, len(p.stage)+1)
	for _, o := range sc.rs.outputs {
		k := 0
		if o.item < len(p.stage) {
			k = p.stage[o.item]
		}
		if !slices.Contains(outs[k], o.topic) {
			outs[k] = append(outs[k], o.topic)
		}
	}
	if !st.split(r, sc.rs, outs) {
		return nil
	}
	return r
}

// split cuts a rule after each top-level repartition (a rekey step, or one
// the key analysis added): the steps after one become a continuation of the
// rule that reads its topic. Every stage shares the rule's name, on_error
// and DLQ, so metrics count a rule's records once per stage. outs are the
// topics the steps of each stage declared they write; a stage's Outputs are
// those, then its repartition topic.
func (st *build) split(r *Rule, rs *ruleState, outs [][]string) bool {
	steps := r.Steps
	cur := r
	for k := 0; ; k++ {
		i := slices.IndexFunc(steps, func(s processors.Step) bool {
			_, ok := s.(processors.Repartitioner)
			return ok
		})
		if i < 0 {
			cur.Steps = steps
			cur.info = st.describe(cur.Steps)
			cur.Outputs = stageOutputs(outs, k)
			cur.init()
			return true
		}
		if i == len(steps)-1 {
			st.errs.Add(rs.rekeyPos.At(diag.InvalidStep, "nothing follows the rekey: the repartitioned events would go nowhere").
				WithHint("add the steps that need the new key after the rekey, or use to: {topic: ..., key: ...} to write with another key"))
			return false
		}
		topic := steps[i].(processors.Repartitioner).RepartitionTopic()
		cur.Steps = slices.Clip(steps[:i+1])
		cur.info = st.describe(cur.Steps)
		cur.Outputs = append(stageOutputs(outs, k), topic)
		cur.init()
		next := &Rule{Name: r.Name, From: []string{topic}, Template: r.Template, OnError: r.OnError, DLQ: r.DLQ}
		cur.after = next
		cur, steps = next, slices.Clone(steps[i+1:])
	}
}

// stageOutputs returns a copy of the declared outputs of stage k.
func stageOutputs(outs [][]string, k int) []string {
	if k >= len(outs) {
		return nil
	}
	return slices.Clone(outs[k])
}

// template finds the template of a use: step by name, recording VX2001
// when there is none.
func (st *build) template(name string, at diag.Pos, path string) *config.Template {
	if t := st.cfg.Template(name); t != nil {
		st.used[name] = true
		return t
	}
	names := make([]string, len(st.cfg.Templates))
	for i, t := range st.cfg.Templates {
		names[i] = t.Name
	}
	at.Path = path
	e := at.At(diag.UnknownTemplate, "unknown template %q", name)
	if c := diag.Closest(name, names); c != "" {
		e = e.WithHint("did you mean %q?", c)
	} else if len(names) > 0 {
		e = e.WithHint("templates are %s", strings.Join(names, ", "))
	}
	st.errs.Add(e)
	return nil
}

// unused compiles a template no rule uses, with its defaults or placeholder
// values, so that its problems are reported.
func (st *build) unused(t *config.Template) {
	st.used[t.Name] = true
	vals := map[string]*config.Value{}
	for _, p := range t.Params {
		if p.Default != nil {
			vals[p.Name] = p.Default
		} else {
			vals[p.Name] = &config.Value{V: placeholder(p.Type), Pos: p.Pos}
		}
	}
	sc := &scope{st: st, rule: &config.Rule{Name: "(template " + t.Name + ")"}, log: st.log, rs: &ruleState{}, check: true}
	sc.instantiate(t, vals)
}

// placeholder is a value of a parameter type, used to check a template that
// no rule instantiates.
func placeholder(typ string) any {
	switch typ {
	case config.ParamNumber:
		return float64(0)
	case config.ParamInt:
		return int64(0)
	case config.ParamBool:
		return false
	case config.ParamDuration:
		return time.Duration(0)
	case config.ParamList:
		return []any{}
	}
	return "placeholder" // string, topic, expr: a valid topic name, in case it names one
}

// instantiate builds the steps of template t with the bound values vals in a
// new scope nested in sc. A missing value (reported by the loader as VX2002)
// is bound to a placeholder so that it does not cascade into type errors.
func (sc *scope) instantiate(t *config.Template, vals map[string]*config.Value) processors.Chain {
	params := make([]expr.Param, 0, len(t.Params))
	bound := make(map[string]*config.Value, len(t.Params))
	for _, p := range t.Params {
		v := vals[p.Name]
		if v == nil && p.Default != nil {
			v = p.Default
		}
		if v == nil {
			v = &config.Value{V: placeholder(p.Type), Pos: p.Pos}
		}
		bound[p.Name] = v
		params = append(params, expr.Param{Name: p.Name, Type: p.Type, Value: v.V})
	}
	env, err := expr.NewEnv(params...)
	if err != nil {
		if !t.Invalid() { // else the loader reported the malformed parameter
			sc.st.errs.Add(t.Pos.At(diag.ParamType, "template %q: %v", t.Name, err))
		}
		return nil
	}
	inner := &scope{
		st:     sc.st,
		rule:   sc.rule,
		file:   t.Pos.File,
		env:    env,
		params: bound,
		stack:  append(slices.Clip(sc.stack), t.Name),
		log:    sc.log,
		rs:     sc.rs,
		depth:  sc.depth,
		check:  sc.check,
	}
	return processors.BuildChain(inner, sc.st.specs, t.Steps, templatePath(t)+".steps")
}

// templatePath is the path of a template's entry.
func templatePath(t *config.Template) string {
	if t.Pos.Path == "" {
		return "templates." + t.Name
	}
	return t.Pos.Path
}

// pos is the place of n in the scope's file.
func (sc *scope) pos(n *yaml.Node, path string) diag.Pos {
	p := diag.Pos{File: sc.file, Path: path}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	return p
}

// Errorf implements processors.Builder.
func (sc *scope) Errorf(n *yaml.Node, path string, code diag.Code, format string, args ...any) *diag.Error {
	e := sc.pos(n, path).At(code, format, args...)
	sc.st.errs.Add(e)
	return e
}

// BuildingItem implements processors.ItemObserver: it tracks the rule's
// top-level step being built, so that the stores it declares are tied to
// its stage, and opens the declarations of the item.
func (sc *scope) BuildingItem(listPath string, i int, item *yaml.Node) {
	if sc.depth == 0 && listPath == sc.rs.topPath {
		sc.rs.item = i
	}
	sc.rs.building = append(sc.rs.building, &stepDecl{item: item, params: sc.params})
}

// BuiltItem implements processors.ItemObserver: it closes the item's
// declarations and keeps them with the built step.
func (sc *scope) BuiltItem(listPath string, i int, kind string, s processors.Step) {
	n := len(sc.rs.building)
	if n == 0 {
		return
	}
	d := sc.rs.building[n-1]
	sc.rs.building = sc.rs.building[:n-1]
	d.kind = kind
	if s == nil || sc.check || !reflect.TypeOf(s).Comparable() {
		return // a step of another type has no declarations to show
	}
	if sc.st.steps == nil {
		sc.st.steps = map[processors.Step]*stepDecl{}
	}
	sc.st.steps[s] = d
}

// declaring returns the declarations of the innermost item being built
// (nil outside of one).
func (sc *scope) declaring() *stepDecl {
	if n := len(sc.rs.building); n > 0 {
		return sc.rs.building[n-1]
	}
	return nil
}

// Logger implements processors.Builder.
func (sc *scope) Logger() *slog.Logger { return sc.log }

// Steps implements processors.Builder.
func (sc *scope) Steps(n *yaml.Node, path string) processors.Chain {
	if n == nil || n.Kind != yaml.SequenceNode {
		sc.Errorf(n, path, diag.InvalidStep, "expected a list of steps, found %s", processors.NodeKind(n))
		return nil
	}
	sc.depth++
	defer func() { sc.depth-- }()
	return processors.BuildChain(sc, sc.st.specs, n.Content, path)
}

// Store implements processors.Builder.
func (sc *scope) Store(n *yaml.Node, path, kind string) string {
	name, ok := sc.storeName(n, path)
	if !ok || sc.check {
		return name
	}
	for _, d := range sc.st.stores {
		if d.Name == name {
			e := sc.Errorf(n, path, diag.InvalidStep, "store %q is already declared by a %s step of rule %q (%s)", name, d.Kind, d.Rule, where(d.pos))
			e.Hint = "each stateful step needs its own store; give this one another name"
			return ""
		}
	}
	d := &storeDecl{
		StoreInfo: StoreInfo{Name: name, Rule: sc.rule.Name, Kind: kind, Changelog: state.ChangelogTopic(sc.st.cfg.App.ID, name)},
		item:      sc.rs.item,
		pos:       sc.pos(n, path),
	}
	if sd := sc.declaring(); sd != nil {
		sd.store = name
		d.def = definition(sd.item, sd.params)
	}
	sc.st.stores = append(sc.st.stores, d)
	return name
}

// ReadStore implements processors.Builder; the reference is checked when
// every rule is built.
func (sc *scope) ReadStore(n *yaml.Node, path, kind string) string {
	name, ok := sc.storeName(n, path)
	if !ok || sc.check {
		return name
	}
	sc.st.refs = append(sc.st.refs, &storeRef{name: name, kind: kind, rule: sc.rule.Name, item: sc.rs.item, pos: sc.pos(n, path)})
	if sd := sc.declaring(); sd != nil {
		sd.store = name
	}
	return name
}

// storeName resolves a store name and checks that its changelog topic is a
// valid topic name.
func (sc *scope) storeName(n *yaml.Node, path string) (string, bool) {
	name, ok := sc.Name(n, path)
	if !ok {
		return "", false
	}
	if err := config.ValidTopicName(state.ChangelogTopic(sc.st.cfg.App.ID, name)); err != nil {
		e := sc.Errorf(n, path, diag.InvalidStep, "store name %q cannot name a changelog topic: %v", name, err)
		e.Hint = "store names use letters, digits, '.', '_' and '-'"
		return "", false
	}
	return name, true
}

// Repartition implements processors.Builder.
func (sc *scope) Repartition(n *yaml.Node, path string) string {
	topic := RepartitionTopic(sc.st.cfg.App.ID, sc.rule.Name)
	switch {
	case sc.depth > 0:
		sc.Errorf(n, path, diag.InvalidStep, "rekey must be a top-level step of the rule, not inside a route branch or a used template").
			Hint = "move the rekey to the rule's own steps (or its template's), before the route or use"
		return ""
	case sc.rs.rekeyTopic != "":
		sc.Errorf(n, path, diag.InvalidStep, "a rule rekeys at most once (it already did at %s)", where(sc.rs.rekeyPos)).
			Hint = "split the rule: end it with a to: {topic: ..., key: ...} and read that topic in another rule"
		return ""
	case sc.check:
		return topic
	}
	if err := config.ValidTopicName(topic); err != nil {
		sc.Errorf(n, path, diag.InvalidTopic, "repartition topic %q is not a valid topic name: %v", topic, err)
		return ""
	}
	sc.rs.rekeyTopic, sc.rs.rekeyPos = topic, sc.pos(n, path)
	return topic
}

// where renders a position for a message: file:line, or line N.
func where(p diag.Pos) string {
	if p.File == "" {
		return fmt.Sprintf("line %d", p.Line)
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// RepartitionTopic is the internal topic a rule's rekey writes and its
// continuation reads: <app.id>.<rule>.repartition.
func RepartitionTopic(appID, rule string) string { return appID + "." + rule + ".repartition" }

// Expr implements processors.Builder: it compiles a scalar as CEL, placing
// errors at the line and column inside the file.
func (sc *scope) Expr(n *yaml.Node, path string) *expr.Program {
	if n == nil || n.Kind != yaml.ScalarNode {
		sc.Errorf(n, path, diag.InvalidStep, "expected an expression, found %s", processors.NodeKind(n))
		return nil
	}
	pos := sc.pos(n, path)
	switch {
	case n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0:
		pos.Column++ // past the quote
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		pos.Line++ // the text starts on the line after | or >; its column is a best effort
	}
	p, err := sc.env.Compile(n.Value, pos)
	if err != nil {
		if strings.Contains(n.Value, "${") {
			err = err.WithHint("write params.x in expressions; ${params.x} is only for names (topics, stores)")
		}
		sc.st.errs.Add(err)
		return nil
	}
	return p
}

// substRE matches ${params.name}.
var substRE = regexp.MustCompile(`\$\{\s*params\.([A-Za-z_][A-Za-z0-9_]*)\s*\}`)

// Name implements processors.Builder: it substitutes ${params.x}.
func (sc *scope) Name(n *yaml.Node, path string) (string, bool) {
	if n == nil || n.Kind != yaml.ScalarNode || n.Value == "" {
		sc.Errorf(n, path, diag.InvalidStep, "expected a name, found %s", processors.NodeKind(n))
		return "", false
	}
	return sc.substitute(n, path)
}

// Output implements processors.Builder: it resolves and checks the topic
// and records it as an output of the rule's current top-level step.
func (sc *scope) Output(n *yaml.Node, path string) string {
	name, ok := sc.Name(n, path)
	if !ok {
		return ""
	}
	from := ""
	if name != n.Value {
		from = fmt.Sprintf(" (from %q)", n.Value)
	}
	if err := config.ValidTopicName(name); err != nil {
		e := sc.Errorf(n, path, diag.InvalidTopic, "topic %q%s is not a valid topic name: %v", name, from, err)
		e.Hint = "topic names use letters, digits, '.', '_' and '-', at most 249 characters"
		return ""
	}
	if slices.Contains(sc.rule.From, name) {
		e := sc.Errorf(n, path, diag.OutputLoop, "rule %q writes to %q%s, which it reads: every output would be read again", sc.rule.Name, name, from)
		e.Hint = "write to another topic"
		return ""
	}
	if !sc.check {
		sc.rs.outputs = append(sc.rs.outputs, outputDecl{topic: name, item: sc.rs.item})
		if sd := sc.declaring(); sd != nil {
			sd.outputs = append(sd.outputs, name)
		}
	}
	return name
}

// substitute replaces every ${params.x} in n's value with the bound value.
func (sc *scope) substitute(n *yaml.Node, path string) (string, bool) {
	s := n.Value
	if !strings.Contains(s, "${") {
		return s, true
	}
	ok := true
	out := substRE.ReplaceAllStringFunc(s, func(m string) string {
		name := substRE.FindStringSubmatch(m)[1]
		v, found := sc.params[name]
		if !found {
			names := make([]string, 0, len(sc.params))
			for k := range sc.params {
				names = append(names, k)
			}
			slices.Sort(names)
			e := sc.Errorf(n, path, diag.UnknownParam, "%s names no parameter", m)
			switch c := diag.Closest(name, names); {
			case len(sc.stack) == 0:
				e.Hint = "${params.x} works only inside a template's steps"
			case c != "":
				e.Hint = fmt.Sprintf("did you mean %q?", c)
			default:
				e.Hint = "parameters are " + strings.Join(names, ", ")
			}
			ok = false
			return m
		}
		text, good := scalarText(v.V)
		if !good {
			sc.Errorf(n, path, diag.ParamType, "%s is a %T and cannot be part of a name", m, v.V)
			ok = false
		}
		return text
	})
	if ok && strings.Contains(out, "${") {
		sc.Errorf(n, path, diag.InvalidStep, "malformed substitution in %q", s).Hint = "write ${params.name}"
		ok = false
	}
	return out, ok
}

// scalarText renders a parameter value in a name.
func scalarText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case int64:
		return strconv.FormatInt(v, 10), true
	case int:
		return strconv.Itoa(v), true
	case bool:
		return strconv.FormatBool(v), true
	case time.Duration:
		return v.String(), true
	}
	return "", false
}

// useKeys are the keys of a `use:` step.
var useKeys = []string{"use", "with"}

// Use implements processors.Builder: `- use: name` with an optional `with:`
// instantiates another template in place, its steps running as one step.
func (sc *scope) Use(n *yaml.Node, path string) processors.Step {
	var nameNode, withNode *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "use":
			nameNode = v
		case "with":
			withNode = v
		default:
			e := sc.Errorf(k, path+"."+k.Value, diag.InvalidStep, "unknown key %q in a use: step", k.Value)
			e.Hint = "a use: step has the keys use and with"
			if c := diag.Closest(k.Value, useKeys); c != "" {
				e.Hint = fmt.Sprintf("did you mean %q? ", c) + e.Hint
			}
			return nil
		}
	}
	if nameNode == nil || nameNode.Kind != yaml.ScalarNode || nameNode.Value == "" {
		sc.Errorf(nameNode, path+".use", diag.InvalidStep, "use: expects a template name, found %s", processors.NodeKind(nameNode))
		return nil
	}
	name := nameNode.Value
	if i := slices.Index(sc.stack, name); i >= 0 {
		chain := append(slices.Clone(sc.stack[i:]), name)
		sc.Errorf(nameNode, path+".use", diag.TemplateCycle, "template cycle: %s", strings.Join(chain, " -> ")).
			Hint = "a template cannot use itself, directly or through others"
		return nil
	}
	t := sc.st.template(name, sc.pos(nameNode, ""), path+".use")
	if t == nil {
		return nil
	}
	sc.depth++
	defer func() { sc.depth-- }()
	at := sc.pos(nameNode, path+".with")
	if withNode != nil {
		var ok bool
		if withNode, ok = sc.substituteWith(withNode, path+".with"); !ok {
			return nil
		}
		at = sc.pos(withNode, path+".with")
	}
	vals, errs := t.Bind(withNode, at)
	if len(errs) > 0 {
		sc.st.errs.Add(errs...)
		return nil
	}
	chain := sc.instantiate(t, vals)
	return &useStep{name: name, chain: chain}
}

// substituteWith returns a copy of a with: mapping in which scalar values
// that use ${params.x} carry the outer template's values, so that an inner
// template can receive the outer one's parameters. A value that is exactly
// ${params.x} keeps x's type.
func (sc *scope) substituteWith(n *yaml.Node, path string) (*yaml.Node, bool) {
	if n.Kind != yaml.MappingNode {
		return n, true // Bind reports the shape
	}
	c := *n
	c.Content = slices.Clone(n.Content)
	ok := true
	for i := 1; i < len(c.Content); i += 2 {
		v := c.Content[i]
		if v.Kind != yaml.ScalarNode || !strings.Contains(v.Value, "${") {
			continue
		}
		vpath := path + "." + c.Content[i-1].Value
		nv := *v
		if m := substRE.FindStringSubmatch(strings.TrimSpace(v.Value)); m != nil && m[0] == strings.TrimSpace(v.Value) {
			if pv, found := sc.params[m[1]]; found {
				if repl, good := valueNode(pv.V, v); good {
					c.Content[i] = repl
					continue
				}
			}
		}
		text, good := sc.substitute(v, vpath)
		if !good {
			ok = false
			continue
		}
		nv.Value, nv.Tag, nv.Style = text, "!!str", 0
		c.Content[i] = &nv
	}
	return &c, ok
}

// valueNode renders a parameter value as a YAML node at the place of at.
func valueNode(v any, at *yaml.Node) (*yaml.Node, bool) {
	n := &yaml.Node{}
	if err := n.Encode(v); err != nil {
		return nil, false
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if d, ok := v.(time.Duration); ok {
		n = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: d.String()}
	}
	n.Line, n.Column = at.Line, at.Column
	return n, true
}

// useStep runs the steps of a used template.
type useStep struct {
	name  string
	chain processors.Chain
}

func (s *useStep) Process(t processors.ProcessorContext, ev *processors.Event) (bool, error) {
	return s.chain.Process(t, ev)
}

// NestedChains implements processors.Nested: the event goes on after the
// template's steps.
func (s *useStep) NestedChains() []processors.NestedChain {
	return []processors.NestedChain{{Steps: s.chain, Continues: true}}
}

func (s *useStep) Describe() processors.Info {
	return processors.Info{Kind: processors.UseKind, Arg: s.name, Branches: []processors.BranchInfo{{Label: s.name, Steps: processors.Describe(s.chain)}}}
}
