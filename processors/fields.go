package processors

import (
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/pkg/expr"
)

// FieldKind is what a step field holds; DecodeFields parses and checks a
// field by its kind, and docs/steps.md names it.
type FieldKind int

// Field kinds.
const (
	// KindCustom: decoded by the step's Build from the raw node (Values.Node);
	// FieldType.Label names it in the docs.
	KindCustom FieldKind = iota
	// KindExpr: a CEL expression, compiled by Builder.Expr; FieldType.Result
	// says what it must return (checked with ResultFits).
	KindExpr
	// KindDuration: 30s, 5m, 1h or 7d; positive, whole milliseconds.
	KindDuration
	// KindStore: the store the step owns, declared with Builder.Store under
	// the step's kind.
	KindStore
	// KindOutput: a topic the step writes, declared with Builder.Output.
	KindOutput
	// KindEnum: one of FieldType.Values.
	KindEnum
	// KindSteps: a nested list of steps, built with Builder.Steps
	// (Values.Steps).
	KindSteps
	// KindExprMap: a mapping of names to expressions (Values.ExprMap), in
	// YAML order. FieldType.Keys says what the names are (KindFieldName:
	// event fields, checked and split as a FieldName field's value; otherwise
	// any names) and FieldType.Result what every expression must return. A
	// Required one needs at least one entry.
	KindExprMap
	// KindInt: an integer.
	KindInt
	// KindBool: true or false.
	KindBool
	// KindMapping: a nested mapping (Values.Node).
	KindMapping
	// KindReadStore: a store another step declares with the kind
	// FieldType.Of, read with Builder.ReadStore (a join's table).
	KindReadStore
	// KindFieldName: an event field, a dotted name for a nested one
	// (Values.FieldName).
	KindFieldName
	// KindFieldNames: one field name or a list of at least one, each
	// checked as a FieldName field's value (Values.FieldNames).
	KindFieldNames
)

// ResultAny is an expression that may return anything (a log's value).
const ResultAny Result = -1

// FieldType is a field's kind with what the kind needs.
type FieldType struct {
	Kind   FieldKind
	Result Result    // for Expr, and for the expressions of an ExprMap
	Keys   FieldKind // for ExprMap: KindFieldName when its names are event fields
	Values []string  // for Enum
	Of     string    // for KindReadStore: the kind of the step owning the store
	ZeroOK bool      // for Duration: 0 is allowed too
	Label  string    // the type as docs/steps.md shows it; default from Kind
}

// Field types of the common kinds.
var (
	AnyExpr      = FieldType{Kind: KindExpr, Result: ResultAny}
	BoolExpr     = FieldType{Kind: KindExpr, Result: ResultBool}
	NumberExpr   = FieldType{Kind: KindExpr, Result: ResultNumber}
	KeyExpr      = FieldType{Kind: KindExpr, Result: ResultKey}
	TimeExpr     = FieldType{Kind: KindExpr, Result: ResultTime}
	DurationType = FieldType{Kind: KindDuration}
	// DurationOrZero is a duration that may be 0 (a window's grace).
	DurationOrZero = FieldType{Kind: KindDuration, ZeroOK: true}
	StoreType      = FieldType{Kind: KindStore}
	OutputType     = FieldType{Kind: KindOutput}
	StepsType      = FieldType{Kind: KindSteps}
	ExprMapType    = FieldType{Kind: KindExprMap, Result: ResultAny}
	IntType        = FieldType{Kind: KindInt}
	BoolType       = FieldType{Kind: KindBool}
	MappingType    = FieldType{Kind: KindMapping}
	FieldName      = FieldType{Kind: KindFieldName}
	FieldNames     = FieldType{Kind: KindFieldNames}
	// MapExpr is an expression that returns a map (map's expression form).
	MapExpr = FieldType{Kind: KindExpr, Result: ResultMap}
	// FieldExprMap maps event fields (a dotted name for a nested one) to
	// expressions of any result: set's and map's value.
	FieldExprMap = FieldType{Kind: KindExprMap, Keys: KindFieldName, Result: ResultAny}
)

// ReadStoreOf is a store that a step of the given kind declares.
func ReadStoreOf(kind string) FieldType { return FieldType{Kind: KindReadStore, Of: kind} }

// EnumOf is an Enum of the given values; the first is the default.
func EnumOf(values ...string) FieldType { return FieldType{Kind: KindEnum, Values: values} }

// CustomType is a field its step decodes itself, shown as label.
func CustomType(label string) FieldType { return FieldType{Kind: KindCustom, Label: label} }

var resultNames = map[Result]string{ResultBool: "bool", ResultNumber: "number", ResultKey: "key", ResultTime: "time", ResultMap: "map"}

// String is the type as docs/steps.md shows it.
func (t FieldType) String() string {
	if t.Label != "" {
		return t.Label
	}
	switch t.Kind {
	case KindExpr:
		if r, ok := resultNames[t.Result]; ok {
			return "expr (" + r + ")"
		}
		return "expr"
	case KindDuration:
		if t.ZeroOK {
			return "duration (0 allowed)"
		}
		return "duration"
	case KindStore, KindReadStore:
		return "store"
	case KindFieldName:
		return "field"
	case KindFieldNames:
		return "field or list of fields"
	case KindOutput:
		return "topic"
	case KindEnum:
		return strings.Join(t.Values, " \\| ")
	case KindSteps:
		return "steps"
	case KindExprMap:
		s := "map of expr"
		if t.Keys == KindFieldName {
			s = "map of field to expr"
		}
		if r, ok := resultNames[t.Result]; ok {
			s += " (" + r + ")"
		}
		return s
	case KindInt:
		return "int"
	case KindBool:
		return "bool"
	case KindMapping:
		return "mapping"
	}
	return "value"
}

// NamedExpr is one entry of an ExprMap field, in YAML order.
type NamedExpr struct {
	Name string
	Path []string // for event field names: Name split at dots
	Prg  *expr.Program
}

// WholeValue is the name of a field that stands for a step's whole value:
// a kind whose value is one typed thing rather than a mapping of known keys
// (set's mapping of field names to expressions) declares it as its one
// field, DecodeFields decodes the node itself by it, and Build reads it
// under this name. docs/steps.md shows it as "(the value)".
const WholeValue = ""

// Values are a step's decoded fields, by name. A field that is absent (or
// failed to decode) reads as its zero value or the given default.
type Values struct {
	vals   map[string]any
	nodes  map[string]*yaml.Node
	keysOK bool // the node was a mapping of known keys, required ones present
}

// Has reports whether the field was given.
func (v Values) Has(name string) bool { return v.nodes[name] != nil }

// Node is the field's YAML node (nil when absent).
func (v Values) Node(name string) *yaml.Node { return v.nodes[name] }

// Expr is an Expr field's compiled program (nil when absent).
func (v Values) Expr(name string) *expr.Program {
	p, _ := v.vals[name].(*expr.Program)
	return p
}

// Steps is a Steps field's built chain.
func (v Values) Steps(name string) Chain {
	c, _ := v.vals[name].(Chain)
	return c
}

// ExprMap is an ExprMap field's entries.
func (v Values) ExprMap(name string) []NamedExpr {
	m, _ := v.vals[name].([]NamedExpr)
	return m
}

// String is a Store, Output or Enum field's value (def when absent).
func (v Values) String(name, def string) string {
	if s, ok := v.vals[name].(string); ok {
		return s
	}
	return def
}

// FieldName is a FieldName field's parts and the name as written.
func (v Values) FieldName(name string) ([]string, string) {
	f, _ := v.vals[name].(fieldName)
	return f.parts, f.name
}

type fieldName struct {
	parts []string
	name  string
}

// FieldNames is a FieldNames field's names: each one's parts, and the
// names as written, in order.
func (v Values) FieldNames(name string) (parts [][]string, names []string) {
	fs, _ := v.vals[name].([]fieldName)
	for _, f := range fs {
		parts = append(parts, f.parts)
		names = append(names, f.name)
	}
	return parts, names
}

// decodeFieldNames decodes a FieldNames field: one name, or a list of at
// least one, every bad name reported.
func decodeFieldNames(b Builder, n *yaml.Node, path, kind string, f Field) (any, bool) {
	who := f.Name
	if who == WholeValue {
		who = kind
	}
	if n.Kind != yaml.SequenceNode && n.Kind != yaml.ScalarNode {
		b.Errorf(n, path, diag.InvalidStep, "%s expects a list of field names, found %s", who, nodeKind(n))
		return nil, false
	}
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	if len(items) == 0 {
		b.Errorf(n, path, diag.InvalidStep, "%s needs at least one field name", who)
		return nil, false
	}
	out := make([]fieldName, 0, len(items))
	ok := true
	for i, it := range items {
		ipath := path
		if n.Kind == yaml.SequenceNode {
			ipath = path + "[" + itoa(i) + "]"
		}
		x, good := DecodeField(b, it, ipath, kind, Field{Name: f.Name, Type: FieldName})
		if !good {
			ok = false
			continue
		}
		out = append(out, x.(fieldName))
	}
	return out, ok
}

// Duration is a Duration field's value (def when absent).
func (v Values) Duration(name string, def time.Duration) time.Duration {
	if d, ok := v.vals[name].(time.Duration); ok {
		return d
	}
	return def
}

// Bool is a Bool field's value (def when absent).
func (v Values) Bool(name string, def bool) bool {
	if x, ok := v.vals[name].(bool); ok {
		return x
	}
	return def
}

// Int is an Int field's value (def when absent).
func (v Values) Int(name string, def int) int {
	if x, ok := v.vals[name].(int); ok {
		return x
	}
	return def
}

// DecodeFields decodes a step's mapping node n by its fields: an unknown
// key (with a did-you-mean hint), a missing required key or a value of the
// wrong shape is a VX3004; expressions are compiled (VX3001/VX3002) and
// their result type checked; a Store field declares the store under kind
// (the step's kind) and an Output field the topic. Every problem is
// recorded through b; ok is false when there was one. When the keys are
// wrong (unknown or missing), the values are not decoded. When fields is
// one WholeValue field, n is that field's value.
func DecodeFields(b Builder, n *yaml.Node, path, kind string, fields []Field) (Values, bool) {
	if len(fields) == 1 && fields[0].Name == WholeValue {
		v := Values{vals: map[string]any{}, nodes: map[string]*yaml.Node{WholeValue: n}, keysOK: true}
		x, ok := DecodeField(b, n, path, kind, fields[0])
		if ok && x != nil {
			v.vals[WholeValue] = x
		}
		return v, ok
	}
	f, ok := mapping(b, n, path, fields)
	v := Values{vals: map[string]any{}, nodes: f, keysOK: ok}
	if !ok {
		return v, false // the values are not decoded when the keys are wrong
	}
	for _, fd := range fields {
		fn := f[fd.Name]
		if fn == nil {
			continue
		}
		x, good := DecodeField(b, fn, path+"."+fd.Name, kind, fd)
		if !good {
			ok = false
			continue
		}
		if x != nil {
			v.vals[fd.Name] = x
		}
	}
	return v, ok
}

// DecodeField decodes the value n of one field (the scalar form of a step,
// e.g. `- to: topic`, decodes its one value by the field it stands for).
// It returns nil for a Custom or Mapping field (read Values.Node); a Steps
// field is built with Builder.Steps.
func DecodeField(b Builder, n *yaml.Node, path, kind string, f Field) (any, bool) {
	what := f.What
	if what == "" {
		what = f.Name
	}
	switch f.Type.Kind {
	case KindExpr:
		noun := "an expression"
		if f.Type.Result == ResultBool {
			noun = "a boolean expression"
		}
		if !scalar(b, n, path, noun) {
			return nil, false
		}
		p := b.Expr(n, path)
		if p == nil {
			return nil, false
		}
		if f.Type.Result != ResultAny && !ResultFits(b, n, path, p, f.Type.Result, what) {
			return nil, false
		}
		return p, true
	case KindDuration:
		d, ok := duration(b, n, path, f.Type.ZeroOK)
		return d, ok
	case KindStore:
		s := b.Store(n, path, kind)
		return s, s != ""
	case KindReadStore:
		s := b.ReadStore(n, path, f.Type.Of)
		return s, s != ""
	case KindFieldName:
		if !scalar(b, n, path, "a field name") {
			return nil, false
		}
		fn, ok := decodeFieldName(b, n, path)
		if !ok {
			return nil, false
		}
		return fn, true
	case KindFieldNames:
		return decodeFieldNames(b, n, path, kind, f)
	case KindOutput:
		if !scalar(b, n, path, "a topic name") {
			return nil, false
		}
		s := b.Output(n, path)
		return s, s != ""
	case KindEnum:
		if n.Kind == yaml.ScalarNode {
			for _, x := range f.Type.Values {
				if n.Value == x {
					return x, true
				}
			}
		}
		setHint(b.Errorf(n, path, diag.InvalidStep, "%s must be %s, found %s", what, orList(f.Type.Values), nodeKind(n)), "%s", f.Hint)
		return nil, false
	case KindBool:
		if n.Kind == yaml.ScalarNode && (n.Value == "true" || n.Value == "false") {
			return n.Value == "true", true
		}
		setHint(b.Errorf(n, path, diag.InvalidStep, "%s must be true or false, found %s", what, nodeKind(n)), "%s", f.Hint)
		return nil, false
	case KindInt:
		if n.Kind == yaml.ScalarNode {
			if i, err := strconv.Atoi(n.Value); err == nil {
				return i, true
			}
		}
		setHint(b.Errorf(n, path, diag.InvalidStep, "%s must be an integer, found %s", what, nodeKind(n)), "%s", f.Hint)
		return nil, false
	case KindExprMap:
		return decodeExprMap(b, n, path, kind, f)
	case KindSteps:
		// A problem inside the list is recorded by the steps' own Build.
		c := b.Steps(n, path)
		return c, n.Kind == yaml.SequenceNode
	case KindMapping:
		if n.Kind != yaml.MappingNode {
			b.Errorf(n, path, diag.InvalidStep, "%s must be a mapping, found %s", f.Name, nodeKind(n))
			return nil, false
		}
	}
	return nil, true
}

// decodeFieldName checks and splits the event field name n.Value.
func decodeFieldName(b Builder, n *yaml.Node, path string) (fieldName, bool) {
	parts, msg := splitField(n.Value)
	if msg != "" {
		b.Errorf(n, path, diag.InvalidStep, "field name %q: %s", n.Value, msg)
		return fieldName{}, false
	}
	return fieldName{parts: parts, name: n.Value}, true
}

// splitField splits a dotted field name, or explains why it is invalid.
func splitField(name string) ([]string, string) {
	if name == "" {
		return nil, "empty"
	}
	parts := strings.Split(name, ".")
	for _, p := range parts {
		if p == "" {
			return nil, "empty part between dots"
		}
	}
	return parts, ""
}

// decodeExprMap decodes an ExprMap field: each name checked by the field's
// Keys (a bad one is reported at the name and its expression skipped), each
// value decoded as an Expr field of the field's Result, named by its name.
func decodeExprMap(b Builder, n *yaml.Node, path, kind string, f Field) (any, bool) {
	if n.Kind != yaml.MappingNode || (f.Required && len(n.Content) == 0) {
		noun := "a mapping of " + keyNoun(f) + " to expressions"
		if f.Name == WholeValue {
			b.Errorf(n, path, diag.InvalidStep, "expected %s, found %s", noun, nodeKind(n))
		} else {
			setHint(b.Errorf(n, path, diag.InvalidStep, "%s must be %s, found %s", f.Name, noun, nodeKind(n)), "%s", f.Hint)
		}
		return nil, false
	}
	out := make([]NamedExpr, 0, len(n.Content)/2)
	ok := true
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, vn := n.Content[i], n.Content[i+1]
		epath := path + "." + k.Value
		e := NamedExpr{Name: k.Value}
		if f.Type.Keys == KindFieldName {
			fn, good := decodeFieldName(b, k, epath)
			if !good {
				ok = false
				continue
			}
			e.Path = fn.parts
		}
		x, good := DecodeField(b, vn, epath, kind, Field{Name: k.Value, Type: FieldType{Kind: KindExpr, Result: f.Type.Result}})
		if !good {
			ok = false
			continue
		}
		e.Prg = x.(*expr.Program)
		out = append(out, e)
	}
	return out, ok
}

// keyNoun names the keys of an ExprMap field in messages.
func keyNoun(f Field) string {
	switch {
	case f.What != "":
		return f.What
	case f.Type.Keys == KindFieldName:
		return "field names"
	}
	return "names"
}

// orList is "a", "a or b", "a, b or c".
func orList(vs []string) string {
	if len(vs) < 2 {
		return strings.Join(vs, "")
	}
	return strings.Join(vs[:len(vs)-1], ", ") + " or " + vs[len(vs)-1]
}
