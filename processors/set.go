package processors

import (
	"fmt"
	"strings"

	"cel.dev/cel-go/common/types/ref"
	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/pkg/expr"
)

func setSpec() *Spec {
	return &Spec{
		Kind:    "set",
		Summary: "Add or replace fields of the event.",
		Doc: "The value maps field names to CEL expressions. Every expression is evaluated on the " +
			"event as it was before the step, then the fields are assigned. A dotted name such as " +
			"`customer.tier` sets a nested field, creating the objects on the way; a part of the path " +
			"that exists but is not an object is an error (VX5004). Timestamps are written as RFC 3339 strings.",
		Example: `- set: {flag: '"high_value"', checked_at: now(), customer.tier: '"gold"'}`,
		Build: func(b Builder, n *yaml.Node, path string) Step {
			fields, ok := exprFields(b, n, path)
			if !ok {
				return nil
			}
			flat := true
			for _, f := range fields {
				flat = flat && len(f.path) == 1
			}
			return &setStep{fields: fields, flat: flat}
		},
	}
}

// exprField is one `name: expr` pair of set or map.
type exprField struct {
	name string
	path []string // name split at dots
	prg  *expr.Program
}

// exprFields parses a mapping of field names to expressions.
func exprFields(b Builder, n *yaml.Node, path string) ([]exprField, bool) {
	if n.Kind != yaml.MappingNode || len(n.Content) == 0 {
		b.Errorf(n, path, diag.InvalidStep, "expected a mapping of field names to expressions, found %s", nodeKind(n))
		return nil, false
	}
	ok := true
	fields := make([]exprField, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		fpath := path + "." + k.Value
		parts, err := splitField(k.Value)
		if err != "" {
			b.Errorf(k, fpath, diag.InvalidStep, "field name %q: %s", k.Value, err)
			ok = false
			continue
		}
		if !scalar(b, v, fpath, "an expression") {
			ok = false
			continue
		}
		p := b.Expr(v, fpath)
		if p == nil {
			ok = false
			continue
		}
		fields = append(fields, exprField{name: k.Value, path: parts, prg: p})
	}
	return fields, ok
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

type setStep struct {
	fields []exprField
	flat   bool // every field is top-level: set works on Raw without decoding it
}

func (s *setStep) Process(_ ProcessorContext, ev *Event) (bool, error) {
	if ev.Value == nil && s.flat && ev.obj.Raw() != nil {
		return s.splice(ev)
	}
	var buf [8]any
	vals := buf[:0]
	for _, f := range s.fields {
		v, err := f.prg.Value(ev)
		if err != nil {
			return false, err
		}
		vals = append(vals, v)
	}
	m := ev.Map()
	if m == nil {
		m = make(map[string]any, len(s.fields))
		ev.Value = m
	}
	for i, f := range s.fields {
		if err := setPath(m, f.path, vals[i]); err != nil {
			return false, f.prg.Pos().At(diag.ResultType, "set %s: %v", f.name, err)
		}
	}
	ev.Touch()
	return true, nil
}

// splice records the fields as edits of the undecoded event: each value is
// encoded once, into the event's edit storage, and spliced into Raw when the
// event is encoded.
func (s *setStep) splice(ev *Event) (bool, error) {
	var vbuf [8]ref.Val
	var ebuf [8][]byte
	vals, encs := vbuf[:0], ebuf[:0]
	for _, f := range s.fields {
		start := len(ev.enc)
		v, enc, err := f.prg.AppendJSON(ev.enc, ev)
		if err != nil {
			return false, err
		}
		ev.enc = enc
		vals, encs = append(vals, v), append(encs, enc[start:len(enc):len(enc)])
	}
	for i, f := range s.fields {
		ev.edit(f.name, vals[i], encs[i])
	}
	return true, nil
}

// setPath assigns v at the dotted path in m, creating objects on the way.
func setPath(m map[string]any, path []string, v any) error {
	for i, p := range path[:len(path)-1] {
		next, found := m[p]
		if !found || next == nil {
			sub := make(map[string]any, 1)
			m[p] = sub
			m = sub
			continue
		}
		sub, ok := next.(map[string]any)
		if !ok {
			return fmt.Errorf("%s is not an object", strings.Join(path[:i+1], "."))
		}
		m = sub
	}
	m[path[len(path)-1]] = v
	return nil
}

func (s *setStep) Describe() Info { return Info{Kind: "set", Arg: describeFields(s.fields)} }

// describeFields renders fields as "a = expr, b = expr" in written order.
func describeFields(fields []exprField) string {
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = f.name + " = " + f.prg.Source()
	}
	return strings.Join(parts, ", ")
}

// KeyEffect implements KeyEffecter: the fields set may change.
func (s *setStep) KeyEffect() KeyEffect {
	e := KeyEffect{}
	for _, f := range s.fields {
		e.Fields = append(e.Fields, f.path[0])
	}
	return e
}
