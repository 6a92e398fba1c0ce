package processors

import (
	"context"
	"log/slog"

	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/pkg/expr"
)

func logSpec() *Spec {
	return &Spec{
		Kind:    "log",
		Summary: "Log the value of an expression at info level.",
		Doc: "The value is a CEL expression; its result is logged (as JSON-compatible data) with the " +
			"rule's name, the source topic, partition and offset. The event continues unchanged. " +
			"Meant for debugging: it logs once per event.",
		Example: `- log: '{"order": event.id, "total": event.total}'`,
		Build: func(b Builder, n *yaml.Node, path string) Step {
			x, ok := DecodeField(b, n, path, "log", Field{Name: "value", Type: AnyExpr})
			if !ok {
				return nil
			}
			p := x.(*expr.Program)
			l := b.Logger()
			if l == nil {
				l = slog.New(slog.DiscardHandler)
			}
			return &logStep{prg: p, log: l}
		},
	}
}

type logStep struct {
	prg *expr.Program
	log *slog.Logger
}

func (s *logStep) Process(_ ProcessorContext, ev *Event) (bool, error) {
	if !s.log.Enabled(context.Background(), slog.LevelInfo) {
		return true, nil
	}
	v, err := s.prg.Value(ev)
	if err != nil {
		return false, err
	}
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "log step",
		slog.Any("value", v), slog.String("topic", ev.Topic),
		slog.Int("partition", int(ev.Partition)), slog.Int64("offset", ev.Offset))
	return true, nil
}

func (s *logStep) Describe() Info { return Info{Kind: "log", Arg: s.prg.Source()} }

// KeyEffect implements KeyEffecter: the event goes on unchanged.
func (s *logStep) KeyEffect() KeyEffect { return KeyEffect{} }
