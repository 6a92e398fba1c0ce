package processors

import (
	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/pkg/expr"
)

func filterSpec() *Spec {
	return &Spec{
		Kind:    "filter",
		Summary: "Keep the event only when a boolean expression is true.",
		Doc: "The value is a CEL expression that must return a bool (a type error at load when it " +
			"cannot, VX5004 at run time when it does not). A false result stops the event here: " +
			"the rule counts it as `filtered`.",
		Example: `- filter: event.type == "order.created" && event.total >= 1000`,
		Build: func(b Builder, n *yaml.Node, path string) Step {
			p, ok := DecodeField(b, n, path, "filter", Field{Name: "filter", Type: BoolExpr})
			if !ok {
				return nil
			}
			return &filterStep{when: p.(*expr.Program)}
		},
	}
}

type filterStep struct{ when *expr.Program }

func (s *filterStep) Process(_ ProcessorContext, ev *Event) (bool, error) { return s.when.Bool(ev) }

// KeyEffect implements KeyEffecter: the event goes on unchanged.
func (s *filterStep) KeyEffect() KeyEffect { return KeyEffect{} }

func (s *filterStep) Describe() Info { return Info{Kind: "filter", Arg: s.when.Source()} }
