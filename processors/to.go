package processors

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/pkg/expr"
)

var toFields = []Field{
	{Name: "topic", Type: OutputType, Required: true, Doc: "the output topic; `${params.x}` is substituted"},
	{Name: "key", Type: KeyExpr, Doc: "the record key (a string, bytes or number); default: the event's key"},
	{Name: "headers", Type: ExprMapType, What: "header names", Doc: "headers to set, name to expression; the event's headers are kept and these replace same-named ones"},
}

func toSpec() *Spec {
	return &Spec{
		Kind:    "to",
		Summary: "Emit the event to a topic and continue.",
		Doc: "The value is a topic name, or a mapping with `topic`, `key` and `headers`. The record " +
			"value is the event as JSON: the original bytes when no step changed it. The event " +
			"continues after `to`, so a rule can write to several topics. In exactly-once mode the " +
			"record becomes visible when the task's transaction commits.",
		Fields: toFields,
		Example: "- to: orders.high-value\n" +
			"- to: {topic: \"${params.out}\", key: event.customer_id, headers: {source: '\"veltrix\"'}}",
		Build: buildTo,
	}
}

func buildTo(b Builder, n *yaml.Node, path string) Step {
	if n.Kind == yaml.ScalarNode {
		topic := b.Output(n, path)
		if topic == "" {
			return nil
		}
		return &toStep{topic: topic}
	}
	v, ok := DecodeFields(b, n, path, "to", toFields)
	if !ok {
		return nil
	}
	return &toStep{topic: v.String("topic", ""), key: v.Expr("key"), headers: v.ExprMap("headers")}
}

// KeyEffect implements KeyEffecter: the event goes on unchanged (key
// only sets the output record's key).
func (s *toStep) KeyEffect() KeyEffect { return KeyEffect{} }

type toStep struct {
	topic   string
	key     *expr.Program // nil: the event's key
	headers []NamedExpr
}

func (s *toStep) Process(t ProcessorContext, ev *Event) (bool, error) {
	value, err := ev.Encode()
	if err != nil {
		return false, &diag.Error{Code: diag.ResultType, Message: "to " + s.topic + ": value cannot be encoded as JSON: " + err.Error()}
	}
	out := Output{Topic: s.topic, Key: ev.Key, Value: value, Headers: ev.Headers}
	if s.key != nil {
		k, err := s.key.AppendString(nil, ev)
		if err != nil {
			return false, err
		}
		out.Key = k
	}
	if len(s.headers) > 0 {
		hs := make([]kgo.RecordHeader, 0, len(ev.Headers)+len(s.headers))
		for _, h := range ev.Headers {
			if !s.sets(h.Key) {
				hs = append(hs, h)
			}
		}
		for _, h := range s.headers {
			v, err := h.Prg.String(ev)
			if err != nil {
				return false, err
			}
			hs = append(hs, kgo.RecordHeader{Key: h.Name, Value: []byte(v)})
		}
		out.Headers = hs
	}
	t.Emit(out)
	return true, nil
}

// sets reports whether the step sets the header name.
func (s *toStep) sets(name string) bool {
	for _, h := range s.headers {
		if h.Name == name {
			return true
		}
	}
	return false
}

func (s *toStep) Describe() Info {
	var extra []string
	if s.key != nil {
		extra = append(extra, "key = "+s.key.Source())
	}
	for _, h := range s.headers {
		extra = append(extra, "header "+h.Name+" = "+h.Prg.Source())
	}
	arg := s.topic
	if len(extra) > 0 {
		arg += " (" + strings.Join(extra, ", ") + ")"
	}
	return Info{Kind: "to", Arg: arg}
}
