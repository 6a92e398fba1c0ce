package processors

import (
	"strconv"

	"cel.dev/cel-go/cel"
	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/pkg/expr"
)

func itoa(i int) string { return strconv.Itoa(i) }

func mapSpec() *Spec {
	return &Spec{
		Kind:    "map",
		Summary: "Replace the event with a new value.",
		Doc: "Either a mapping of field names to CEL expressions, which builds a new object from " +
			"these fields only (dotted names build nested objects), or one CEL expression that " +
			"returns a map with string keys (VX5004 at run time when it does not). All expressions " +
			"read the event as it was before the step.",
		Example: "- map: {order_id: event.id, total: event.total, customer.id: event.customer_id}\n" +
			"- map: '{\"id\": event.id, \"amount\": event.total}'",
		Build: func(b Builder, n *yaml.Node, path string) Step {
			if n.Kind == yaml.ScalarNode {
				p := b.Expr(n, path)
				if p == nil {
					return nil
				}
				if !p.MayReturn(cel.MapType(cel.StringType, cel.DynType)) {
					b.Errorf(n, path, diag.ExprType, "map must return a map, but %q returns %s", p.Source(), p.OutputType())
					return nil
				}
				return &mapStep{whole: p}
			}
			fields, ok := exprFields(b, n, path)
			if !ok {
				return nil
			}
			return &mapStep{fields: fields}
		},
	}
}

type mapStep struct {
	whole  *expr.Program // the expression form
	fields []exprField   // the mapping form
}

func (s *mapStep) Process(_ ProcessorContext, ev *Event) (bool, error) {
	if s.whole != nil {
		v, err := s.whole.Value(ev)
		if err != nil {
			return false, err
		}
		m, ok := v.(map[string]any)
		if !ok {
			return false, s.whole.Pos().At(diag.ResultType, "%s: map must return a map, got %T", s.whole.Source(), v)
		}
		ev.Value = m
		ev.Touch()
		return true, nil
	}
	m := make(map[string]any, len(s.fields))
	for _, f := range s.fields {
		v, err := f.prg.Value(ev)
		if err != nil {
			return false, err
		}
		if err := setPath(m, f.path, v); err != nil {
			return false, f.prg.Pos().At(diag.ResultType, "map %s: %v", f.name, err)
		}
	}
	ev.Value = m
	ev.Touch()
	return true, nil
}

func (s *mapStep) Describe() Info {
	if s.whole != nil {
		return Info{Kind: "map", Arg: s.whole.Source()}
	}
	return Info{Kind: "map", Arg: describeFields(s.fields)}
}

// KeyEffect implements KeyEffecter: the value is replaced.
func (s *mapStep) KeyEffect() KeyEffect { return KeyEffect{Replaces: true} }
