package config

import (
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/pkg/diag"
)

var (
	ruleKeys      = []string{"name", "from", "steps", "template", "with", "on_error", "dlq"}
	errorPolicies = []string{OnErrorFail, OnErrorSkip, OnErrorDLQ}
)

// pendingRule is a template rule whose arguments are checked once every
// file, and so every template, is read.
type pendingRule struct {
	rule     *Rule
	nameNode *yaml.Node // the template: value
	with     *yaml.Node
	withAt   diag.Pos
}

// rules reads the rules: list of one file. A rule whose name repeats an
// earlier one is reported and left out.
func (l *loader) rules(cfg *Config, file string, n *yaml.Node) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		l.wrongType(file, n, "rules", "list of rules", "write rules: as a list: - name: ...")
		return
	}
	for i, item := range n.Content {
		if r := l.rule(cfg, file, index("rules", i), resolve(item)); r != nil {
			cfg.Rules = append(cfg.Rules, r)
		}
	}
}

// rule reads one rule; it returns nil when the rule is not a mapping or its
// name is a duplicate.
func (l *loader) rule(cfg *Config, file, path string, n *yaml.Node) *Rule {
	if isNull(n) || n.Kind != yaml.MappingNode {
		l.wrongType(file, n, path, "mapping", "a rule is a mapping with name:, from: and steps: or template:")
		return nil
	}
	r := &Rule{Pos: l.pos(file, n, path), OnError: OnErrorDLQ, DLQ: cfg.App.ID + ".dlq"}
	var nameNode, tmplNode, withNode, stepsKey *yaml.Node
	hasFrom := false
	for _, kv := range l.pairs(n, path, file) {
		kpath := join(path, kv.name)
		val := resolve(kv.val)
		switch kv.name {
		case "name":
			if !isString(val) || val.Value == "" {
				l.wrongType(file, val, kpath, "non-empty string", "name the rule, e.g. name: big-orders")
				continue
			}
			nameNode, r.Name = val, val.Value
		case "from":
			hasFrom = true
			l.from(r, file, kpath, val)
		case "steps":
			stepsKey = kv.key
			if val.Kind != yaml.SequenceNode || len(val.Content) == 0 {
				l.wrongType(file, val, kpath, "non-empty list of steps", "write steps: as a list: - filter: ...")
				continue
			}
			r.Steps = val.Content
		case "template":
			if !isString(val) || val.Value == "" {
				l.wrongType(file, val, kpath, "template name", "write template: <name of a template>")
				continue
			}
			tmplNode, r.Template = val, val.Value
		case "with":
			withNode = kv.val
			if tmplNode == nil && !hasKey(n, "template") {
				l.errs.Add(l.pos(file, kv.key, kpath).At(diag.InvalidValue, "with: applies only to a rule with template:").
					WithHint("remove with:, or use template: <name>"))
			}
		case "on_error":
			if !isString(val) || !slices.Contains(errorPolicies, val.Value) {
				e := l.pos(file, val, kpath).At(diag.InvalidValue, "on_error: %s is not one of %s", describe(val), strings.Join(errorPolicies, ", ")).
					With("one of "+strings.Join(errorPolicies, ", "), describe(val))
				if c := diag.Closest(val.Value, errorPolicies); c != "" {
					e = e.WithHint("did you mean %q?", c)
				} else {
					e = e.WithHint("fail stops the instance, skip drops the event, dlq (the default) sends it to the DLQ topic")
				}
				l.errs.Add(e)
				continue
			}
			r.OnError = val.Value
		case "dlq":
			if !isString(val) {
				l.wrongType(file, val, kpath, "topic name", "write dlq: <topic>")
				continue
			}
			if l.topic(val, file, kpath) {
				r.DLQ = val.Value
			}
		default:
			l.unknownKey(l.pos(file, kv.key, kpath), kv.name, ruleKeys, "")
		}
	}
	label := "rule"
	if r.Name != "" {
		label = "rule " + quote(r.Name)
	}
	if nameNode == nil && !hasKey(n, "name") {
		l.errs.Add(r.Pos.At(diag.MissingRequired, "rule has no name").With("name:", "nothing").
			WithHint("add name: <unique rule name>"))
	}
	if !hasFrom {
		l.errs.Add(r.Pos.At(diag.MissingRequired, "%s has no from: topic", label).With("from:", "nothing").
			WithHint("add from: <topic> or from: [topic-a, topic-b]"))
	}
	switch {
	case tmplNode != nil && stepsKey != nil:
		l.errs.Add(l.pos(file, stepsKey, join(path, "steps")).At(diag.InvalidValue, "%s has both steps: and template:", label).
			WithHint("keep one: inline steps: or template: with with:"))
	case !hasKey(n, "steps") && !hasKey(n, "template"):
		l.errs.Add(r.Pos.At(diag.MissingRequired, "%s has neither steps: nor template:", label).With("steps: or template:", "nothing").
			WithHint("add steps: [...] or template: <name> with with: {...}"))
	}
	if r.Name != "" {
		if err := ValidTopicName(r.Name); err != nil {
			l.errs.Add(l.pos(file, nameNode, join(path, "name")).At(diag.InvalidValue, "rule name %s cannot be used in topic names: %v", quote(r.Name), err).
				WithHint("rule names appear in internal topic names (<app.id>.<rule>.repartition) and metric labels"))
		}
	}
	if tmplNode != nil { // checked even for a duplicate, to report everything at once
		at := l.pos(file, tmplNode, join(path, "with"))
		if w := resolve(withNode); w != nil {
			at = l.pos(file, w, join(path, "with"))
		}
		l.pending = append(l.pending, pendingRule{rule: r, nameNode: tmplNode, with: withNode, withAt: at})
	}
	if r.Name != "" {
		if first, dup := l.ruleAt[r.Name]; dup {
			l.errs.Add(l.pos(file, nameNode, join(path, "name")).At(diag.DuplicateName, "rule %q is defined twice; first at %s:%d", r.Name, first.File, first.Line).
				WithHint("rule names must be unique across the main file and included files"))
			return nil
		}
		l.ruleAt[r.Name] = r.Pos
	}
	return r
}

// hasKey reports whether mapping n has the key, whatever its value.
func hasKey(n *yaml.Node, key string) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := resolve(n.Content[i]); k != nil && k.Value == key {
			return true
		}
	}
	return false
}

// from reads a rule's from: a topic or a list of topics.
func (l *loader) from(r *Rule, file, path string, n *yaml.Node) {
	items, paths := []*yaml.Node{n}, []string{path}
	switch {
	case n.Kind == yaml.SequenceNode && len(n.Content) > 0:
		items, paths = n.Content, make([]string, len(n.Content))
		for i := range paths {
			paths[i] = index(path, i)
		}
	case isNull(n) || n.Kind == yaml.SequenceNode:
		l.errs.Add(l.pos(file, n, path).At(diag.MissingRequired, "from: names no topic").With("topic or list of topics", describe(n)).
			WithHint("add from: <topic> or from: [topic-a, topic-b]"))
		return
	}
	for i, item := range items {
		item = resolve(item)
		if !isString(item) {
			l.wrongType(file, item, paths[i], "topic name", "write a topic name, e.g. orders")
			continue
		}
		if l.topic(item, file, paths[i]) {
			r.From = append(r.From, item.Value)
			r.FromPos = append(r.FromPos, l.pos(file, item, paths[i]))
		}
	}
}

// topic reports a topic name Kafka would reject and returns whether it is valid.
func (l *loader) topic(n *yaml.Node, file, path string) bool {
	if err := ValidTopicName(n.Value); err != nil {
		l.errs.Add(l.pos(file, n, path).At(diag.InvalidTopic, "%s is not a valid topic name: %v", quote(n.Value), err).
			With("topic name", describe(n)).WithHint("use 1 to 249 letters, digits, '.', '_' or '-'"))
		return false
	}
	return true
}

// bindRules checks the template and arguments of every template rule.
func (l *loader) bindRules(cfg *Config) {
	names := cfg.templateNames()
	for _, p := range l.pending {
		t := cfg.Template(p.rule.Template)
		if t == nil {
			e := l.pos(p.withAt.File, p.nameNode, strings.TrimSuffix(p.withAt.Path, ".with")+".template").
				At(diag.UnknownTemplate, "unknown template %q", p.rule.Template).With("a template name", quote(p.rule.Template))
			switch c := diag.Closest(p.rule.Template, names); {
			case c != "":
				e = e.WithHint("did you mean %q?", c)
			case len(names) == 0:
				e = e.WithHint("define it under templates: in this file or in an included file")
			default:
				e = e.WithHint("known templates: %s", strings.Join(names, ", "))
			}
			l.errs.Add(e)
			continue
		}
		if t.invalid {
			continue
		}
		with, errs := t.Bind(p.with, p.withAt)
		p.rule.With = with
		l.errs.Add(errs...)
	}
}
