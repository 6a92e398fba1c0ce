package topology

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/processors"
)

// parseConfig builds a *config.Config from a small YAML document with app,
// templates and rules, keeping the step nodes and their lines, as the loader
// does (without its schema checks).
func parseConfig(t testing.TB, file, src string) *config.Config {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{File: file, App: config.App{ID: "shop"}}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "app":
			cfg.App.ID = get(v, "id").Value
		case "topics":
			for j := 0; j+1 < len(v.Content); j += 2 {
				name, key := v.Content[j], get(v.Content[j+1], "key")
				path := "topics." + name.Value
				cfg.Topics = append(cfg.Topics, &config.TopicKey{Topic: name.Value, Key: key.Value, KeyNode: key,
					Pos:    diag.Pos{File: file, Line: name.Line, Column: name.Column, Path: path},
					KeyPos: diag.Pos{File: file, Line: key.Line, Column: key.Column, Path: path + ".key"}})
			}
		case "templates":
			for j := 0; j+1 < len(v.Content); j += 2 {
				name, body := v.Content[j], v.Content[j+1]
				tm := &config.Template{Name: name.Value, Pos: diag.Pos{File: file, Line: name.Line, Column: name.Column, Path: "templates." + name.Value}}
				if ps := get(body, "params"); ps != nil {
					for p := 0; p+1 < len(ps.Content); p += 2 {
						pn, pb := ps.Content[p], ps.Content[p+1]
						param := &config.Param{Name: pn.Value, Type: get(pb, "type").Value, Pos: diag.Pos{File: file, Line: pn.Line, Column: pn.Column}}
						if d := get(pb, "default"); d != nil {
							param.Default = &config.Value{V: typed(t, param.Type, d)}
						}
						tm.Params = append(tm.Params, param)
					}
				}
				if s := get(body, "steps"); s != nil {
					tm.Steps = s.Content
				}
				cfg.Templates = append(cfg.Templates, tm)
			}
		case "rules":
			for j, rn := range v.Content {
				r := &config.Rule{Name: get(rn, "name").Value, Pos: diag.Pos{File: file, Line: rn.Line, Column: rn.Column, Path: fmt.Sprintf("rules[%d]", j)}}
				from := get(rn, "from")
				if from.Kind == yaml.ScalarNode {
					r.From = []string{from.Value}
				} else {
					for _, f := range from.Content {
						r.From = append(r.From, f.Value)
					}
				}
				if s := get(rn, "steps"); s != nil {
					r.Steps = s.Content
				}
				if tn := get(rn, "template"); tn != nil {
					r.Template = tn.Value
				}
				if oe := get(rn, "on_error"); oe != nil {
					r.OnError = oe.Value
				}
				if d := get(rn, "dlq"); d != nil {
					r.DLQ = d.Value
				}
				if w := get(rn, "with"); w != nil {
					r.With = map[string]*config.Value{}
					var tm *config.Template
					for _, x := range cfg.Templates {
						if x.Name == r.Template {
							tm = x
						}
					}
					for p := 0; p+1 < len(w.Content); p += 2 {
						typ := config.ParamString
						if tm != nil && tm.Param(w.Content[p].Value) != nil {
							typ = tm.Param(w.Content[p].Value).Type
						}
						r.With[w.Content[p].Value] = &config.Value{V: typed(t, typ, w.Content[p+1])}
					}
				}
				cfg.Rules = append(cfg.Rules, r)
			}
		}
	}
	return cfg
}

func get(n *yaml.Node, key string) *yaml.Node {
	for i := 0; n != nil && i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// typed decodes a parameter value of a declared type.
func typed(t testing.TB, typ string, n *yaml.Node) any {
	t.Helper()
	var err error
	var v any
	switch typ {
	case config.ParamNumber:
		v, err = strconv.ParseFloat(n.Value, 64)
	case config.ParamInt:
		v, err = strconv.ParseInt(n.Value, 10, 64)
	case config.ParamBool:
		v, err = strconv.ParseBool(n.Value)
	case config.ParamDuration:
		v, err = time.ParseDuration(n.Value)
	case config.ParamList:
		var l []any
		err = n.Decode(&l)
		v = l
	default:
		v = n.Value
	}
	if err != nil {
		t.Fatalf("param value %q: %v", n.Value, err)
	}
	return v
}

// task collects outputs and tells a fixed time.
type task struct {
	now time.Time
	out []processors.Output
}

func (t *task) Emit(o processors.Output)      { t.out = append(t.out, o) }
func (t *task) Now() time.Time                { return t.now }
func (t *task) Store(string) processors.Store { return nil }
func (t *task) StreamTime() time.Time         { return time.Time{} }

// observed records every outcome.
type observed struct{ got []string }

func (o *observed) Outcome(rule string, out Outcome, code diag.Code, _ time.Duration) {
	s := rule + " " + string(out)
	if code != "" {
		s += " " + string(code)
	}
	o.got = append(o.got, s)
}

func record(topic, key, value string) *kgo.Record {
	return &kgo.Record{Topic: topic, Partition: 2, Offset: 41, Key: []byte(key), Value: []byte(value),
		Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("t-1")}}}
}
