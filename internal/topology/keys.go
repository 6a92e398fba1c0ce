package topology

import (
	"fmt"
	"slices"
	"strings"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/pkg/expr"
	"github.com/veltrix/veltrix/processors"
)

// Key analysis: a step that groups or looks up by a key (processors.Grouper:
// aggregate, dedupe, join, sequence) must see every event of its key in one
// task, so its input must be partitioned by that key. The events of a rule
// are known to be partitioned by:
//
//   - the record key (the expression key, and a step without a key);
//   - the key its topics declare in the topics: section;
//   - after a rekey, or a repartition added here, that key;
//   - after an aggregate with a key, its group key (the record key of its
//     results).
//
// A step that changes a field forgets the known expressions that read it; a
// step that replaces the value (map, aggregate) forgets them all. A Grouper
// whose key is none of these gets a repartition before it (the rekey
// mechanism: an internal topic written in the same transaction, read by the
// rest of the rule), unless it says repartition: false.

// Repartition is a repartition the topology added before a step whose key
// its input is not partitioned by. validate lists them; describe shows them
// among the rule's steps.
type Repartition struct {
	Rule  string   `json:"rule"`
	Step  string   `json:"step"` // the step it serves, e.g. "aggregate revenue"
	Key   string   `json:"key"`  // the key expression
	Topic string   `json:"topic"`
	Pos   diag.Pos `json:"-"` // of the key expression
}

// Note returns the repartition as an information line (code VX3008): what
// was added, where and why.
func (r Repartition) Note() *diag.Error {
	return r.Pos.At(diag.RepartitionAdded, "rule %q: %s groups by %s, which its input is not known to be partitioned by: repartitioned through %s",
		r.Rule, r.Step, r.Key, r.Topic).
		WithHint("declare the input topic's key (topics: {<topic>: {key: %s}}) if its records are keyed by it already, or write repartition: false on the step to group per input partition on purpose", r.Key)
}

// String renders the note as validate prints it:
// "file:line:col info VX3008 path: message" and its hint.
func (r Repartition) String() string {
	n := r.Note()
	s := n.Error()
	if i := strings.Index(s, string(n.Code)); i >= 0 {
		s = s[:i] + "info " + s[i:]
	}
	return s
}

// AddedRepartitions returns the repartitions the topology added, in rule order.
func (t *Topology) AddedRepartitions() []Repartition { return slices.Clone(t.added) }

// normExpr is the text of an expression with white space outside string
// literals removed, so that event.a+1 and "event.a + 1" compare equal.
func normExpr(src string) string {
	var b strings.Builder
	var quote rune
	escaped := false
	for _, c := range src {
		switch {
		case quote != 0:
			b.WriteRune(c)
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == quote:
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
			b.WriteRune(c)
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// keyState is the set of key expressions (normalized) the events at one
// point of a rule are known to be partitioned by, besides the record key.
type keyState []string

// has reports whether the events are partitioned by key: it is the record
// key, or one of the known expressions.
func (k keyState) has(key *expr.Program) bool {
	n := normExpr(key.Source())
	return n == expr.VarKey || slices.Contains(k, n)
}

// reads reports whether the normalized expression e reads the top-level
// event field f (event.f, event["f"], event['f'], has(event.f)) or the
// event as a whole.
func reads(e, f string) bool {
	for i := 0; ; {
		j := strings.Index(e[i:], expr.VarEvent)
		if j < 0 {
			return false
		}
		j += i
		rest := e[j+len(expr.VarEvent):]
		before := byte(0)
		if j > 0 {
			before = e[j-1]
		}
		i = j + len(expr.VarEvent)
		if isIdent(before) || before == '.' || (rest != "" && isIdent(rest[0])) {
			continue // part of another name
		}
		switch {
		case strings.HasPrefix(rest, "."+f) && (len(rest) == len(f)+1 || !isIdent(rest[len(f)+1])):
			return true
		case strings.HasPrefix(rest, `["`+f+`"]`), strings.HasPrefix(rest, `['`+f+`']`):
			return true
		case strings.HasPrefix(rest, "."), strings.HasPrefix(rest, `["`), strings.HasPrefix(rest, `['`):
			continue // another field
		}
		return true // the event as a whole, or a computed field
	}
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// after returns the state after step s.
func (k keyState) after(s processors.Step) keyState {
	e, ok := s.(processors.KeyEffecter)
	if !ok {
		return nil // it may change anything
	}
	eff := e.KeyEffect()
	out := k
	switch {
	case eff.Replaces:
		out = nil
	case eff.Rekeys && eff.Key != nil:
		out = keyState{normExpr(eff.Key.Source())}
	}
	if len(eff.Fields) > 0 {
		out = slices.DeleteFunc(slices.Clone(out), func(known string) bool {
			return slices.ContainsFunc(eff.Fields, func(f string) bool { return reads(known, f) })
		})
	}
	return out
}

// topicKeys compiles the keys declared in the topics: section: topic ->
// normalized expression. It reports bad expressions (VX3001, VX3002) and
// entries for topics no rule reads (VX3007).
func (st *build) topicKeys() map[string]string {
	out := map[string]string{}
	if len(st.cfg.Topics) == 0 {
		return out
	}
	env, err := expr.NewEnv()
	if err != nil {
		st.errs.Add(diag.Pos{File: st.cfg.File}.At(diag.Internal, "%v", err))
		return out
	}
	var read []string
	for _, r := range st.cfg.Rules {
		read = append(read, r.From...)
	}
	slices.Sort(read)
	read = slices.Compact(read)
	for _, tk := range st.cfg.Topics {
		if !slices.Contains(read, tk.Topic) {
			e := tk.Pos.At(diag.TopicKeyUnused, "topics: declares the key of %q, which no rule reads", tk.Topic)
			if c := diag.Closest(tk.Topic, read); c != "" {
				e = e.WithHint("did you mean %q?", c)
			} else {
				e = e.WithHint("rules read %s; remove the entry or fix its name", strings.Join(read, ", "))
			}
			st.errs.Add(e)
			continue
		}
		sc := &scope{st: st, rule: &config.Rule{Name: "(topics)"}, file: tk.KeyPos.File, env: env, rs: &ruleState{}}
		p := sc.Expr(tk.KeyNode, tk.KeyPos.Path)
		if p == nil || !processors.ResultFits(sc, tk.KeyNode, tk.KeyPos.Path, p, processors.ResultKey, "a topic's key") {
			continue
		}
		out[tk.Topic] = normExpr(p.Source())
	}
	return out
}

// inputKeys is the state at the start of a rule reading from: the key the
// topics declare, when they all declare the same one.
func inputKeys(declared map[string]string, from []string) keyState {
	var k string
	for i, t := range from {
		d, ok := declared[t]
		if !ok || (i > 0 && d != k) {
			return nil
		}
		k = d
	}
	if k == "" {
		return nil
	}
	return keyState{k}
}

// plan is the key analysis of one rule's top-level steps.
type plan struct {
	steps processors.Chain // with the added repartitions
	stage []int            // stage of each original top-level step (0: reads the rule's topics)
	added []Repartition
}

// keys runs the key analysis over a rule's built top-level steps, adding a
// repartition before each Grouper whose key the events are not known to be
// partitioned by. A Grouper nested in a route branch or a used template
// that would need one is VX3004 (a rule is split at its top level only).
func (st *build) keys(r *Rule, rs *ruleState, declared map[string]string) (plan, bool) {
	p := plan{steps: make(processors.Chain, 0, len(r.Steps)+1), stage: make([]int, len(r.Steps))}
	state := inputKeys(declared, r.From)
	stage, ok := 0, true
	n := 0 // repartitions of the rule, the rekey included
	if rs.rekeyTopic != "" {
		n = 1
	}
	for i, s := range r.Steps {
		if g, isG := s.(processors.Grouper); isG {
			if key, repart := g.GroupKey(); key != nil && repart && !state.has(key) {
				n++
				topic := RepartitionTopic(st.cfg.App.ID, r.Name)
				if n > 1 { // the rule's first repartition has the plain name
					topic = fmt.Sprintf("%s.%d", topic, n)
				}
				if err := config.ValidTopicName(topic); err != nil {
					st.errs.Add(key.Pos().At(diag.InvalidTopic, "repartition topic %q is not a valid topic name: %v", topic, err).
						WithHint("shorten the rule's name or app.id"))
					ok = false
				}
				name := st.stepName(s)
				p.steps = append(p.steps, processors.NewRepartition(key, topic, name))
				p.added = append(p.added, Repartition{Rule: r.Name, Step: name, Key: key.Source(), Topic: topic, Pos: key.Pos()})
				stage++
				state = keyState{normExpr(key.Source())}
			}
		}
		if nest, isN := s.(processors.Nested); isN {
			for _, nc := range nest.NestedChains() {
				end, good := st.nestedKeys(r, nc.Steps, state)
				ok = ok && good
				if nc.Continues {
					state = end
				}
			}
		} else {
			state = state.after(s)
		}
		p.stage[i] = stage
		p.steps = append(p.steps, s)
		if _, isR := s.(processors.Repartitioner); isR {
			stage++
		}
	}
	return p, ok
}

// nestedKeys checks the Groupers of a nested step list, where no
// repartition can be added, and returns the state at its end.
func (st *build) nestedKeys(r *Rule, c processors.Chain, state keyState) (keyState, bool) {
	ok := true
	for _, s := range c {
		if g, isG := s.(processors.Grouper); isG {
			if key, repart := g.GroupKey(); key != nil && repart && !state.has(key) {
				st.errs.Add(key.Pos().At(diag.InvalidStep, "rule %q: %s groups by %s, which its input is not known to be partitioned by, and a repartition cannot be added inside a route branch or a used template",
					r.Name, st.stepName(s), key.Source()).
					WithHint("move the step to the rule's top level, put a rekey by %s at the rule's top level before the route or use, declare the topic's key (topics: {<topic>: {key: %s}}), or write repartition: false to group per input partition on purpose", key.Source(), key.Source()))
				ok = false
			}
		}
		if nest, isN := s.(processors.Nested); isN {
			for _, nc := range nest.NestedChains() {
				end, good := st.nestedKeys(r, nc.Steps, state)
				ok = ok && good
				if nc.Continues {
					state = end
				}
			}
			continue
		}
		state = state.after(s)
	}
	return state, ok
}
