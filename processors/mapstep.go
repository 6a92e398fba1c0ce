package processors

import (
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/pkg/expr"
)

func itoa(i int) string { return strconv.Itoa(i) }

var mapFields = []Field{
	{Name: WholeValue, Type: FieldExprMap, Required: true,
		Doc: "field names to the expressions of their values in the new object; a dotted name builds a nested object"},
}

func mapSpec() *Spec {
	return &Spec{
		Kind:    "map",
		Summary: "Replace the event with a new value.",
		Doc: "Either a mapping of field names to CEL expressions, which builds a new object from " +
			"these fields only (dotted names build nested objects), or one CEL expression that " +
			"returns a map with string keys (VX3002 when its type says it cannot, VX5004 at run time " +
			"when it does not). All expressions " +
			"read the event as it was before the step.",
		Fields: mapFields,
		Example: "- map: {order_id: event.id, total: event.total, customer.id: event.customer_id}\n" +
			"- map: '{\"id\": event.id, \"amount\": event.total}'",
		Build: func(b Builder, n *yaml.Node, path string) Step {
			if n.Kind == yaml.ScalarNode {
				x, ok := DecodeField(b, n, path, "map", Field{Name: "map", Type: MapExpr})
				if !ok {
					return nil
				}
				return &mapStep{whole: x.(*expr.Program)}
			}
			v, ok := DecodeFields(b, n, path, "map", mapFields)
			if !ok {
				return nil
			}
			return &mapStep{fields: v.ExprMap(WholeValue)}
		},
	}
}

type mapStep struct {
	whole  *expr.Program // the expression form
	fields []NamedExpr   // the mapping form
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
		v, err := f.Prg.Value(ev)
		if err != nil {
			return false, err
		}
		if err := setPath(m, f.Path, v); err != nil {
			return false, f.Prg.Pos().At(diag.ResultType, "map %s: %v", f.Name, err)
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
