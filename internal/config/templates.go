package config

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/pkg/diag"
)

var (
	templateKeys = []string{"description", "params", "steps"}
	paramKeys    = []string{"type", "default", "description", "min", "max", "enum", "pattern"}
	paramTypes   = []string{ParamString, ParamNumber, ParamInt, ParamBool, ParamDuration, ParamTopic, ParamList, ParamExpr}
)

// Template returns the template with the given name, or nil.
func (c *Config) Template(name string) *Template {
	for _, t := range c.Templates {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// templateNames returns the names of every template, in file order.
func (c *Config) templateNames() []string {
	names := make([]string, len(c.Templates))
	for i, t := range c.Templates {
		names[i] = t.Name
	}
	return names
}

// Invalid reports whether the loader rejected the template's declaration
// (its body, steps or parameters), a problem it reported: a topology build
// does not report what follows from it again.
func (t *Template) Invalid() bool { return t.invalid }

// Param returns the parameter with the given name, or nil.
func (t *Template) Param(name string) *Param {
	for _, p := range t.Params {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Bind checks the arguments of one use of the template (a rule's with:, or
// the with: of a "- use: name" step) and returns every parameter's value:
// the given one, or the default. with may be nil when no with: is written.
// at is the place of with: (or, without it, of the template's name where it
// is used), and at.Path is the path of with:, e.g. "rules[1].with"; each
// problem's path is at.Path plus the parameter's name.
//
// Problems, all reported: with: is not a mapping (VX1102), an unknown
// parameter (VX2004, with a "did you mean"), a value of the wrong type
// (VX2003), an invalid topic name (VX1107), a violated min, max, enum or
// pattern (VX2005) and a missing required parameter (VX2002). Values that
// fail are left out of the result.
func (t *Template) Bind(with *yaml.Node, at diag.Pos) (map[string]*Value, diag.List) {
	l := &loader{}
	out := make(map[string]*Value, len(t.Params))
	names := make([]string, len(t.Params))
	for i, p := range t.Params {
		names[i] = p.Name
	}
	with = resolve(with)
	if !isNull(with) && with.Kind != yaml.MappingNode {
		l.errs.Add(l.pos(at.File, with, at.Path).At(diag.WrongType, "with: expected a mapping of parameters, found %s", describe(with)).
			With("mapping", describe(with)).WithHint("write with: {name: value, ...}"))
		with = nil
	}
	given := map[string]bool{}
	for _, kv := range l.pairs(with, at.Path, at.File) {
		given[kv.name] = true
		path := join(at.Path, kv.name)
		p := t.Param(kv.name)
		if p == nil {
			e := l.pos(at.File, kv.key, path).At(diag.UnknownParam, "template %q has no parameter %q", t.Name, kv.name).
				With("one of "+strings.Join(names, ", "), kv.name)
			switch c := diag.Closest(kv.name, names); {
			case c != "":
				e = e.WithHint("did you mean %q?", c)
			case len(names) == 0:
				e = e.WithHint("template %q takes no parameters; remove with:", t.Name)
			default:
				e = e.WithHint("its parameters are %s", strings.Join(names, ", "))
			}
			l.errs.Add(e)
			continue
		}
		v, err := p.check(t.Name, kv.val, l.pos(at.File, resolve(kv.val), path))
		if err != nil {
			l.errs.Add(err)
			continue
		}
		out[p.Name] = v
	}
	for _, p := range t.Params {
		switch {
		case given[p.Name]:
		case p.Default != nil:
			d := *p.Default
			out[p.Name] = &d
		default:
			l.errs.Add(at.At(diag.MissingParam, "template %q needs parameter %q (%s)", t.Name, p.Name, p.Type).
				With(p.Type, "nothing").WithHint("add it under with:, e.g. %s: %s", p.Name, example(p.Type)))
		}
	}
	return out, l.errs
}

// check checks one parameter value against the declaration.
func (p *Param) check(tmpl string, n *yaml.Node, at diag.Pos) (*Value, *diag.Error) {
	n = resolve(n)
	wrong := func() *diag.Error {
		e := at.At(diag.ParamType, "template %q expects %s, got %s", tmpl, p.Type, describe(n)).With(p.Type, describe(n))
		if (p.Type == ParamString || p.Type == ParamExpr) && n.Kind == yaml.ScalarNode && !isNull(n) {
			return e.WithHint("quote it to make it a string: %s", strconv.Quote(n.Value))
		}
		if p.Type == ParamDuration && n.Tag == "!!int" {
			return e.WithHint("add a unit, e.g. %ss", n.Value)
		}
		return e.WithHint("write %s, e.g. %s", article(p.Type), example(p.Type))
	}
	var v any
	switch p.Type {
	case ParamString, ParamExpr, ParamTopic:
		if !isString(n) {
			return nil, wrong()
		}
		v = n.Value
		if p.Type == ParamTopic {
			if err := ValidTopicName(n.Value); err != nil {
				return nil, at.At(diag.InvalidTopic, "%s is not a valid topic name: %v", quote(n.Value), err).
					With("topic name", describe(n)).WithHint("use 1 to 249 letters, digits, '.', '_' or '-'")
			}
		}
	case ParamNumber:
		var f float64
		if n.Tag != "!!int" && n.Tag != "!!float" || n.Decode(&f) != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, wrong()
		}
		v = f
	case ParamInt:
		var i int64
		if n.Tag != "!!int" || n.Decode(&i) != nil {
			return nil, wrong()
		}
		v = i
	case ParamBool:
		var b bool
		if n.Tag != "!!bool" || n.Decode(&b) != nil {
			return nil, wrong()
		}
		v = b
	case ParamDuration:
		d, err := time.ParseDuration(n.Value)
		if !isString(n) || err != nil {
			return nil, wrong()
		}
		v = d
	case ParamList:
		if n.Kind != yaml.SequenceNode {
			return nil, wrong()
		}
		budget := maxListNodes
		list, ok := jsonLike(n, &budget)
		if !ok {
			return nil, at.At(diag.ParamType, "template %q expects a list of plain values; this one is too large or nested too deeply", tmpl).
				With("list", "a list over "+strconv.Itoa(maxListNodes)+" values").WithHint("keep lists small; use a topic or a table for data")
		}
		v = list
	default:
		return nil, at.At(diag.InvalidParamSchema, "parameter %q has unknown type %q", p.Name, p.Type)
	}
	if err := p.constrain(tmpl, v, n, at); err != nil {
		return nil, err
	}
	return &Value{V: v, Pos: at}, nil
}

// constrain checks v against min, max, enum and pattern.
func (p *Param) constrain(tmpl string, v any, n *yaml.Node, at diag.Pos) *diag.Error {
	bad := func(expected, format string, args ...any) *diag.Error {
		return at.At(diag.ParamConstraint, "template %q parameter %q: %s", tmpl, p.Name, fmt.Sprintf(format, args...)).
			With(expected, describe(n))
	}
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case int64:
		f = float64(x)
	}
	if p.Min != nil && f < *p.Min {
		return bad(">= "+fmtNum(*p.Min), "%s is below the minimum %s", n.Value, fmtNum(*p.Min)).WithHint("use a value of at least %s", fmtNum(*p.Min))
	}
	if p.Max != nil && f > *p.Max {
		return bad("<= "+fmtNum(*p.Max), "%s is above the maximum %s", n.Value, fmtNum(*p.Max)).WithHint("use a value of at most %s", fmtNum(*p.Max))
	}
	s, _ := v.(string)
	if p.Enum != nil && !slices.Contains(p.Enum, s) {
		e := bad("one of "+strings.Join(p.Enum, ", "), "%s is not one of %s", quote(s), strings.Join(p.Enum, ", "))
		if c := diag.Closest(s, p.Enum); c != "" {
			return e.WithHint("did you mean %q?", c)
		}
		return e.WithHint("use one of %s", strings.Join(p.Enum, ", "))
	}
	if p.Pattern != "" {
		if re := p.regexp(); re == nil || !re.MatchString(s) {
			return bad("match of "+p.Pattern, "%s does not match the pattern %s", quote(s), p.Pattern).
				WithHint("the whole value must match %s", p.Pattern)
		}
	}
	return nil
}

// regexp compiles the pattern, anchored at both ends.
func (p *Param) regexp() *regexp.Regexp {
	if p.re == nil && p.Pattern != "" {
		p.re, _ = regexp.Compile(`^(?:` + p.Pattern + `)$`)
	}
	return p.re
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// example returns a sample value of a parameter type, for hints.
func example(typ string) string {
	switch typ {
	case ParamNumber:
		return "5000"
	case ParamInt:
		return "10"
	case ParamBool:
		return "true"
	case ParamDuration:
		return "30s"
	case ParamTopic:
		return "orders.high-value"
	case ParamList:
		return "[a, b]"
	case ParamExpr:
		return `'event.total > 100'`
	}
	return `"text"`
}

func article(typ string) string {
	switch typ {
	case ParamInt:
		return "a whole number"
	case ParamList:
		return "a list"
	case ParamExpr:
		return "a CEL expression"
	case ParamTopic:
		return "a topic name"
	}
	return "a " + typ
}

// maxListNodes bounds the values of one list parameter, which also stops
// alias expansion ("billion laughs") from blowing up.
const maxListNodes = 10000

// jsonLike converts n to the values encoding/json would give: string,
// float64, bool, nil, []any and map[string]any.
func jsonLike(n *yaml.Node, budget *int) (any, bool) {
	n = resolve(n)
	if *budget--; *budget < 0 || n == nil {
		return nil, false
	}
	switch n.Kind {
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, ok := jsonLike(c, budget)
			if !ok {
				return nil, false
			}
			out = append(out, v)
		}
		return out, true
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			v, ok := jsonLike(n.Content[i+1], budget)
			if !ok {
				return nil, false
			}
			out[resolve(n.Content[i]).Value] = v
		}
		return out, true
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, true
		case "!!bool":
			var b bool
			return b, n.Decode(&b) == nil
		case "!!int", "!!float":
			var f float64
			return f, n.Decode(&f) == nil
		}
		return n.Value, true
	}
	return nil, false
}

// templates reads the templates: mapping of one file.
func (l *loader) templates(cfg *Config, file string, n *yaml.Node) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		l.errs.Add(l.pos(file, n, "templates").At(diag.WrongType, "templates: expected a mapping of template names, found %s", describe(n)).
			With("mapping", describe(n)).WithHint("write templates: {name: {params: ..., steps: [...]}}"))
		return
	}
	for _, kv := range l.pairs(n, "templates", file) {
		path := join("templates", kv.name)
		t := &Template{Name: kv.name, Pos: l.pos(file, kv.key, path)}
		if first, dup := l.templateAt[kv.name]; dup {
			l.errs.Add(t.Pos.At(diag.DuplicateName, "template %q is defined twice; first at %s:%d", kv.name, first.File, first.Line).
				WithHint("rename one of them; template names are global across included files"))
			continue
		}
		l.templateAt[kv.name] = t.Pos
		cfg.Templates = append(cfg.Templates, t)
		l.template(t, kv.val, file, path)
	}
}

// template reads one template's body.
func (l *loader) template(t *Template, body *yaml.Node, file, path string) {
	body = resolve(body)
	if isNull(body) || body.Kind != yaml.MappingNode {
		l.errs.Add(l.pos(file, body, path).At(diag.WrongType, "template %q: expected a mapping with steps:, found %s", t.Name, describe(body)).
			With("mapping", describe(body)).WithHint("write %s: {params: {...}, steps: [...]}", t.Name))
		t.invalid = true
		return
	}
	hasSteps := false
	for _, kv := range l.pairs(body, path, file) {
		kpath := join(path, kv.name)
		val := resolve(kv.val)
		switch kv.name {
		case "description":
			if !isNull(val) && !isString(val) {
				l.wrongType(file, val, kpath, "string", "write a one-line description")
				continue
			}
			t.Description = val.Value
		case "params":
			l.params(t, val, file, kpath)
		case "steps":
			hasSteps = true
			if val.Kind != yaml.SequenceNode || len(val.Content) == 0 {
				l.errs.Add(l.pos(file, val, kpath).At(diag.WrongType, "template %q: steps: expected a non-empty list of steps, found %s", t.Name, describe(val)).
					With("list of steps", describe(val)).WithHint("write steps: [- filter: ..., - to: ...]"))
				t.invalid = true
				continue
			}
			t.Steps = val.Content
		default:
			l.unknownKey(l.pos(file, kv.key, kpath), kv.name, templateKeys, "")
		}
	}
	if !hasSteps {
		l.errs.Add(t.Pos.At(diag.MissingRequired, "template %q has no steps", t.Name).
			With("steps:", "nothing").WithHint("add steps: with at least one step"))
		t.invalid = true
	}
}

// wrongType reports a value of the wrong type at path.
func (l *loader) wrongType(file string, n *yaml.Node, path, expected, hint string) {
	l.errs.Add(l.pos(file, n, path).At(diag.WrongType, "expected %s, found %s", expected, describe(n)).
		With(expected, describe(n)).WithHint("%s", hint))
}

// params reads a template's params: mapping.
func (l *loader) params(t *Template, n *yaml.Node, file, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		l.wrongType(file, n, path, "mapping", "write params: {name: {type: number, default: 1}}")
		t.invalid = true
		return
	}
	for _, kv := range l.pairs(n, path, file) {
		p, ok := l.param(t.Name, kv, file, join(path, kv.name))
		if !ok {
			t.invalid = true
		}
		if p != nil {
			t.Params = append(t.Params, p)
		}
	}
}

// param reads one parameter declaration; ok is false when it has problems.
func (l *loader) param(tmpl string, kv keyValue, file, path string) (p *Param, ok bool) {
	p = &Param{Name: kv.name, Pos: l.pos(file, kv.key, path)}
	body := resolve(kv.val)
	if isNull(body) || body.Kind != yaml.MappingNode {
		l.errs.Add(l.pos(file, body, path).At(diag.WrongType, "parameter %q: expected a mapping such as {type: number}, found %s", kv.name, describe(body)).
			With("mapping", describe(body)).WithHint("write %s: {type: %s}", kv.name, ParamString))
		return nil, false
	}
	before := len(l.errs)
	bad := func(n *yaml.Node, key, format string, args ...any) *diag.Error {
		return l.pos(file, n, join(path, key)).At(diag.InvalidParamSchema, format, args...)
	}
	var def, minN, maxN, enumN, patN *yaml.Node
	for _, kv := range l.pairs(body, path, file) {
		val := resolve(kv.val)
		switch kv.name {
		case "type":
			if !isString(val) || !slices.Contains(paramTypes, val.Value) {
				e := bad(val, "type", "parameter %q has unknown type %s", p.Name, describe(val)).With("one of "+strings.Join(paramTypes, ", "), describe(val))
				if c := diag.Closest(val.Value, paramTypes); c != "" && isString(val) {
					l.errs.Add(e.WithHint("did you mean %q?", c))
				} else {
					l.errs.Add(e.WithHint("use one of %s", strings.Join(paramTypes, ", ")))
				}
				continue
			}
			p.Type = val.Value
		case "description":
			if !isNull(val) && !isString(val) {
				l.wrongType(file, val, join(path, kv.name), "string", "write a one-line description")
				continue
			}
			p.Description = val.Value
		case "default":
			def = val
		case "min":
			minN = val
		case "max":
			maxN = val
		case "enum":
			enumN = val
		case "pattern":
			patN = val
		default:
			l.unknownKey(l.pos(file, kv.key, join(path, kv.name)), kv.name, paramKeys, "")
		}
	}
	if p.Type == "" {
		if len(l.errs) == before {
			l.errs.Add(p.Pos.At(diag.MissingRequired, "parameter %q has no type", p.Name).
				With("type:", "nothing").WithHint("add type: one of %s", strings.Join(paramTypes, ", ")))
		}
		return p, false
	}
	numeric := p.Type == ParamNumber || p.Type == ParamInt
	textual := p.Type == ParamString || p.Type == ParamTopic
	bound := func(n *yaml.Node, key string) *float64 {
		if n == nil {
			return nil
		}
		var f float64
		switch {
		case !numeric:
			l.errs.Add(bad(n, key, "%s: applies to number and int parameters, not %s", key, p.Type).WithHint("remove %s:", key))
		case n.Tag != "!!int" && n.Tag != "!!float" || n.Decode(&f) != nil || math.IsNaN(f):
			l.errs.Add(bad(n, key, "%s: expected a number, found %s", key, describe(n)).With("number", describe(n)))
		default:
			return &f
		}
		return nil
	}
	p.Min, p.Max = bound(minN, "min"), bound(maxN, "max")
	if p.Min != nil && p.Max != nil && *p.Min > *p.Max {
		l.errs.Add(bad(maxN, "max", "max %s is below min %s", fmtNum(*p.Max), fmtNum(*p.Min)).WithHint("swap them"))
	}
	if enumN != nil {
		switch {
		case !textual:
			l.errs.Add(bad(enumN, "enum", "enum: applies to string and topic parameters, not %s", p.Type))
		case enumN.Kind != yaml.SequenceNode || len(enumN.Content) == 0:
			l.errs.Add(bad(enumN, "enum", "enum: expected a non-empty list of strings, found %s", describe(enumN)).With("list", describe(enumN)))
		default:
			for i, c := range enumN.Content {
				if c = resolve(c); !isString(c) {
					l.errs.Add(bad(c, index("enum", i), "enum: expected a string, found %s", describe(c)).With("string", describe(c)))
					continue
				}
				p.Enum = append(p.Enum, c.Value)
			}
		}
	}
	if patN != nil {
		switch {
		case !textual:
			l.errs.Add(bad(patN, "pattern", "pattern: applies to string and topic parameters, not %s", p.Type))
		case !isString(patN):
			l.errs.Add(bad(patN, "pattern", "pattern: expected a regular expression string, found %s", describe(patN)).With("string", describe(patN)))
		default:
			if _, err := regexp.Compile(patN.Value); err != nil {
				l.errs.Add(bad(patN, "pattern", "pattern %s is not a valid regular expression: %v", quote(patN.Value), err).
					WithHint("use Go (RE2) syntax; the whole value must match"))
			} else {
				p.Pattern = patN.Value
			}
		}
	}
	if len(l.errs) != before {
		return p, false
	}
	if def != nil && !isNull(def) {
		v, err := p.check(tmpl, def, l.pos(file, def, join(path, "default")))
		if err != nil {
			e := *err
			e.Code = diag.InvalidParamSchema
			e.Message = fmt.Sprintf("default of parameter %q does not fit its declaration: %s", p.Name, err.Message)
			l.errs.Add(&e)
			return p, false
		}
		p.Default = v
	}
	return p, true
}
