package processors

import (
	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/pkg/expr"
)

var rekeyFields = []Field{
	{Name: "key", Type: KeyExpr, What: "the key", Required: true, Doc: "the new key (a string, or a number formatted as text)"},
}

func rekeySpec() *Spec {
	return &Spec{
		Kind:    "rekey",
		Summary: "Change the key and repartition by it.",
		Doc: "The step writes the event, keyed by the new key, to the rule's internal repartition topic " +
			"`<app.id>.<rule>.repartition`; the steps after it read that topic, so each key's events " +
			"reach one task and the stateful steps that follow (aggregate, dedupe, join, sequence) see " +
			"all of them. The value may be the expression itself (`- rekey: event.customer_id`). A rule " +
			"rekeys at most once, at the top level of its steps (not inside a route branch or a used " +
			"template), and steps must follow the rekey. The repartition topic is created by the engine " +
			"with the partition count of the rule's inputs (or of the table it joins).",
		Fields: rekeyFields,
		Example: "- rekey: {key: event.customer_id}   # or: - rekey: event.customer_id\n" +
			"- aggregate: {store: orders-per-customer, count: true}\n" +
			"- to: orders.per-customer",
		Build: func(b Builder, n *yaml.Node, path string) Step {
			var key *expr.Program
			var ok bool
			kn := n
			if n.Kind == yaml.MappingNode {
				var v Values
				v, ok = DecodeFields(b, n, path, "rekey", rekeyFields)
				if !ok {
					return nil
				}
				key, kn = v.Expr("key"), v.Node("key")
			} else {
				var x any
				if x, ok = DecodeField(b, n, path, "rekey", rekeyFields[0]); ok {
					key = x.(*expr.Program)
				}
			}
			if kn == nil || kn.Kind != yaml.ScalarNode {
				return nil
			}
			// A scalar key that does not compile still declares the
			// repartition, so that a misplaced rekey is reported too.
			topic := b.Repartition(n, path)
			if !ok || topic == "" {
				return nil
			}
			return &rekeyStep{key: key, topic: topic}
		},
	}
}

type rekeyStep struct {
	key   *expr.Program
	topic string
	added string // the step a repartition was added for ("" for a rekey step)
}

// LazyValue implements Lazy: the key is an expression and the value is
// written as Encode gives it (the original bytes when nothing changed them).
func (*rekeyStep) LazyValue() {}

// RepartitionTopic implements Repartitioner.
func (s *rekeyStep) RepartitionTopic() string { return s.topic }

func (s *rekeyStep) Process(t ProcessorContext, ev *Event) (bool, error) {
	k, err := s.key.AppendString(nil, ev)
	if err != nil {
		return false, err
	}
	value, err := ev.Encode()
	if err != nil {
		return false, &diag.Error{Code: diag.ResultType, Message: "rekey: value cannot be encoded as JSON: " + err.Error()}
	}
	ev.Key = k
	t.Emit(Output{Topic: s.topic, Key: ev.Key, Value: value, Headers: ev.Headers})
	return true, nil
}

func (s *rekeyStep) Describe() Info {
	if s.added != "" {
		return Info{Kind: "repartition", Arg: "by " + s.key.Source() + " for " + s.added + " (added; via " + s.topic + ")"}
	}
	return Info{Kind: "rekey", Arg: s.key.Source() + " (via " + s.topic + ")"}
}

// KeyEffect implements KeyEffecter: the events go on keyed by the key.
func (s *rekeyStep) KeyEffect() KeyEffect { return KeyEffect{Rekeys: true, Key: s.key} }
