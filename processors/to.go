package processors

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/pkg/expr"
)

var toFields = []Field{
	{Name: "topic", Type: "topic", Required: true, Doc: "the output topic; `${params.x}` is substituted"},
	{Name: "key", Type: "expr", Doc: "the record key (a string, bytes or number); default: the event's key"},
	{Name: "headers", Type: "map of expr", Doc: "headers to set, name to expression; the event's headers are kept and these replace same-named ones"},
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

type headerExpr struct {
	name string
	prg  *expr.Program
}

func buildTo(b Builder, n *yaml.Node, path string) Step {
	if n.Kind == yaml.ScalarNode {
		topic := b.Output(n, path)
		if topic == "" {
			return nil
		}
		return &toStep{topic: topic}
	}
	f, ok := mapping(b, n, path, toFields)
	if !ok {
		return nil
	}
	s := &toStep{}
	if tn := f["topic"]; scalar(b, tn, path+".topic", "a topic name") {
		s.topic = b.Output(tn, path+".topic")
		ok = s.topic != ""
	} else {
		ok = false
	}
	if kn := f["key"]; kn != nil {
		if !scalar(b, kn, path+".key", "an expression") {
			ok = false
		} else if s.key = b.Expr(kn, path+".key"); s.key == nil || !ResultFits(b, kn, path+".key", s.key, ResultKey, "key") {
			ok = false
		}
	}
	if hn := f["headers"]; hn != nil {
		if hn.Kind != yaml.MappingNode {
			b.Errorf(hn, path+".headers", diag.InvalidStep, "headers must be a mapping of header names to expressions, found %s", nodeKind(hn))
			ok = false
		} else {
			for i := 0; i+1 < len(hn.Content); i += 2 {
				k, v := hn.Content[i], hn.Content[i+1]
				hpath := path + ".headers." + k.Value
				if !scalar(b, v, hpath, "an expression") {
					ok = false
					continue
				}
				p := b.Expr(v, hpath)
				if p == nil {
					ok = false
					continue
				}
				s.headers = append(s.headers, headerExpr{name: k.Value, prg: p})
			}
		}
	}
	if !ok {
		return nil
	}
	return s
}

// KeyEffect implements KeyEffecter: the event goes on unchanged (key
// only sets the output record's key).
func (s *toStep) KeyEffect() KeyEffect { return KeyEffect{} }

type toStep struct {
	topic   string
	key     *expr.Program // nil: the event's key
	headers []headerExpr
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
			v, err := h.prg.String(ev)
			if err != nil {
				return false, err
			}
			hs = append(hs, kgo.RecordHeader{Key: h.name, Value: []byte(v)})
		}
		out.Headers = hs
	}
	t.Emit(out)
	return true, nil
}

// sets reports whether the step sets the header name.
func (s *toStep) sets(name string) bool {
	for _, h := range s.headers {
		if h.name == name {
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
		extra = append(extra, "header "+h.name+" = "+h.prg.Source())
	}
	arg := s.topic
	if len(extra) > 0 {
		arg += " (" + strings.Join(extra, ", ") + ")"
	}
	return Info{Kind: "to", Arg: arg, Outputs: []string{s.topic}}
}
