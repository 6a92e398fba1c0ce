package processors

import (
	"fmt"
	"strings"

	"cel.dev/cel-go/common/types/ref"
	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/pkg/diag"
)

var setFields = []Field{
	{Name: WholeValue, Type: FieldExprMap, Required: true,
		Doc: "field names to the expressions of their new values; a dotted name sets a nested field"},
}

func setSpec() *Spec {
	return &Spec{
		Kind:    "set",
		Summary: "Add or replace fields of the event.",
		Doc: "The value maps field names to CEL expressions. Every expression is evaluated on the " +
			"event as it was before the step, then the fields are assigned. A dotted name such as " +
			"`customer.tier` sets a nested field, creating the objects on the way; a part of the path " +
			"that exists but is not an object is an error (VX5004). Timestamps are written as RFC 3339 strings.",
		Fields:  setFields,
		Example: `- set: {flag: '"high_value"', checked_at: now(), customer.tier: '"gold"'}`,
		Build: func(b Builder, n *yaml.Node, path string) Step {
			v, ok := DecodeFields(b, n, path, "set", setFields)
			if !ok {
				return nil
			}
			fields := v.ExprMap(WholeValue)
			flat := true
			for _, f := range fields {
				flat = flat && len(f.Path) == 1
			}
			return &setStep{fields: fields, flat: flat}
		},
	}
}

type setStep struct {
	fields []NamedExpr
	flat   bool // every field is top-level: set works on Raw without decoding it
}

func (s *setStep) Process(_ ProcessorContext, ev *Event) (bool, error) {
	if ev.Value == nil && s.flat && ev.obj.Raw() != nil {
		return s.splice(ev)
	}
	var buf [8]any
	vals := buf[:0]
	for _, f := range s.fields {
		v, err := f.Prg.Value(ev)
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
		if err := setPath(m, f.Path, vals[i]); err != nil {
			return false, f.Prg.Pos().At(diag.ResultType, "set %s: %v", f.Name, err)
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
		v, enc, err := f.Prg.AppendJSON(ev.enc, ev)
		if err != nil {
			return false, err
		}
		ev.enc = enc
		vals, encs = append(vals, v), append(encs, enc[start:len(enc):len(enc)])
	}
	for i, f := range s.fields {
		ev.edit(f.Name, vals[i], encs[i])
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
func describeFields(fields []NamedExpr) string {
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = f.Name + " = " + f.Prg.Source()
	}
	return strings.Join(parts, ", ")
}

// KeyEffect implements KeyEffecter: the fields set may change.
func (s *setStep) KeyEffect() KeyEffect {
	e := KeyEffect{}
	for _, f := range s.fields {
		e.Fields = append(e.Fields, f.Path[0])
	}
	return e
}
