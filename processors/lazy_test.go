package processors_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"cel.dev/cel-go/common/types"
	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/internal/topology"
	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/pkg/expr"
	"github.com/veltrix/veltrix/processors"
)

// decodeStep is a step that is not Lazy: before it, Chain decodes the
// event's Value, so every step after it works on the Go map.
type decodeStep struct{}

func (decodeStep) Process(processors.ProcessorContext, *processors.Event) (bool, error) {
	return true, nil
}

// withDecode is the built-in specs plus "decode" (decodeStep).
func withDecode() topology.Option {
	specs := append(processors.Specs(), &processors.Spec{Kind: "decode", Summary: "decode the value",
		Build: func(processors.Builder, *yaml.Node, string) processors.Step { return decodeStep{} }})
	return topology.WithSpecs(specs)
}

type result struct {
	outcome topology.Outcome
	code    diag.Code
	outs    []processors.Output
}

func run(t *testing.T, steps, value string) result {
	t.Helper()
	top := build(t, steps, withDecode())
	tk := &task{now: time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)}
	var obs outcome
	rec := &kgo.Record{Topic: "in", Key: []byte("k"), Value: []byte(value)}
	if err := top.Process(tk, rec, &obs); err != nil {
		t.Fatal(err)
	}
	return result{obs.outcome, obs.code, tk.out}
}

// TestLazyMatchesDecoded runs each rule twice, on the lazily read event and
// on the event decoded into a map first (the behaviour before lazy reading),
// and requires the same outcome and the same outputs as data.
func TestLazyMatchesDecoded(t *testing.T) {
	const order = `{"id":"o-1","type":"order.created","total":129.5,"qty":3,"tags":["a","b"],` +
		`"customer":{"id":"c-1","tier":"gold","address":{"city":"Lyon"}},"note":null,"paid":true,` +
		`"t\u0079pe2":"esc","uni":"h\u00e9llo 😀","dup":1,"dup":2,"html":"<b>&</b>"}`
	tests := []struct{ name, steps, value string }{
		{"filter on fields", `[{filter: 'event.type == "order.created" && event.total >= 100.0'}, {to: out}]`, order},
		{"filter false", `[{filter: 'event.total > 1000.0'}, {to: out}]`, order},
		{"missing field", `[{filter: 'event.nope == 1'}, {to: out}]`, order},
		{"wrong type", `[{filter: 'event.type > 1'}, {to: out}]`, order},
		{"nested", `[{filter: 'event.customer.address.city == "Lyon" && event.customer.tier == "gold"'}, {to: out}]`, order},
		{"nested missing", `[{filter: 'event.customer.nope == 1'}, {to: out}]`, order},
		{"list", `[{filter: 'event.tags[1] == "b" && size(event.tags) == 2 && "a" in event.tags'}, {to: out}]`, order},
		{"has", `[{filter: 'has(event.note) && !has(event.zzz) && has(event.customer.id)'}, {to: out}]`, order},
		{"in and size", `[{filter: '"id" in event && !("x" in event) && size(event) == 12'}, {to: out}]`, order},
		{"null and bool", `[{filter: 'event.note == null && event.paid'}, {to: out}]`, order},
		{"escaped key and unicode", `[{filter: 'event.type2 == "esc" && event.uni == "héllo 😀"'}, {to: out}]`, order},
		{"repeated key", `[{filter: 'event.dup == 2.0'}, {to: out}]`, order},
		{"comprehension", `[{filter: 'event.exists(k, k == "paid") && event.all(k, k != "")'}, {to: out}]`, order},
		{"equality", `[{filter: 'event.customer.address == {"city": "Lyon"}'}, {to: out}]`, order},
		{"int literal vs double", `[{filter: 'event.qty == 3 && event.qty + 1.0 == 4.0'}, {to: out}]`, order},
		{"set new and replace", `[{set: {flag: '"x"', total: 'event.total * 2.0', n: '7', when: 'now()', u: 'uint(1)'}}, {to: out}]`, order},
		{"set then read", `[{set: {n: '1', s: '"v"', ts: now()}}, {filter: 'event.n + 1 == 2 && event.s == "v" && event.ts == "2026-05-06T07:08:09Z"'}, {to: out}]`, order},
		{"set map and list", `[{set: {m: '{"a": event.customer.id, "l": [1, "x", event.tags]}'}}, {to: out}]`, order},
		{"set whole event", `[{set: {copy: 'event'}}, {to: out}]`, order},
		{"set reads before", `[{set: {a: 'event.total', total: '1.0'}}, {to: out}]`, order},
		{"set twice", `[{set: {a: '1'}}, {set: {a: '2', b: 'event.a'}}, {to: out}]`, order},
		{"set nested", `[{set: {customer.tier: '"silver"', x.y: '1'}}, {to: out}]`, order},
		{"set nested under scalar fails", `[{set: {type.x: '1'}}, {to: out}]`, order},
		{"set html and escapes", `[{set: {h: '"<a href=\"x\">&</a>\n\u2028"'}}, {to: out}]`, order},
		{"set NaN fails", `[{set: {bad: 'double("NaN")'}}, {to: out}]`, order},
		{"set repeated key", `[{set: {dup: '3'}}, {to: out}]`, order},
		{"set escaped key", `[{set: {type2: '"new"'}}, {to: out}]`, order},
		{"drop", `[{drop: [id, zzz, tags]}, {filter: '!has(event.id) && !("tags" in event)'}, {to: out}]`, order},
		{"drop nested", `[{drop: [customer.address, id]}, {to: out}]`, order},
		{"drop then set", `[{drop: [id]}, {set: {id: '"new"'}}, {to: out}]`, order},
		{"set then drop", `[{set: {z: '1'}}, {drop: [z, dup]}, {to: out}]`, order},
		{"drop repeated key", `[{drop: [dup]}, {to: out}]`, order},
		{"map", `[{map: {oid: event.id, c.id: event.customer.id}}, {set: {k: '1'}}, {to: out}]`, order},
		{"map whole", `[{map: 'event'}, {to: out}]`, order},
		{"to key and headers", `[{to: {topic: out, key: event.customer.id, headers: {t: event.type}}}]`, order},
		{"route", "[{route: [{when: 'event.total > 1000.0', steps: [{to: a}]}, {when: 'event.customer.tier == \"gold\"', steps: [{set: {r: \"1\"}}, {to: b}]}]}]", order},
		{"several outputs", `[{to: a}, {set: {x: '1'}}, {to: b}, {drop: [x]}, {to: c}]`, order},
		{"empty object", `[{set: {a: '1'}}, {to: out}]`, `{}`},
		{"spaces", `[{set: {a: '1'}}, {to: out}]`, " \n{ \"b\" : [ 1 , 2 ] }\n "},
		{"malformed", `[{to: out}]`, `{"a": 1`},
		{"not an object", `[{to: out}]`, `[1]`},
		{"null", `[{to: out}]`, `null`},
		{"number out of range", `[{to: out}]`, `{"a": 1e999}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lazy := run(t, tt.steps, tt.value)
			decoded := run(t, "[{decode: x}, "+tt.steps[1:], tt.value)
			if lazy.outcome != decoded.outcome || lazy.code != decoded.code {
				t.Fatalf("lazy: %s %s; decoded: %s %s", lazy.outcome, lazy.code, decoded.outcome, decoded.code)
			}
			if len(lazy.outs) != len(decoded.outs) {
				t.Fatalf("lazy: %d outputs; decoded: %d", len(lazy.outs), len(decoded.outs))
			}
			for i := range lazy.outs {
				l, d := lazy.outs[i], decoded.outs[i]
				if l.Topic != d.Topic || string(l.Key) != string(d.Key) || !reflect.DeepEqual(l.Headers, d.Headers) {
					t.Errorf("output %d: lazy %s %s %v; decoded %s %s %v", i, l.Topic, l.Key, l.Headers, d.Topic, d.Key, d.Headers)
				}
				if !jsonEqual(t, l.Value, string(d.Value)) {
					t.Errorf("output %d: lazy %s; decoded %s", i, l.Value, d.Value)
				}
			}
		})
	}
}

// TestLazyKeepsBytes: an unchanged event is its original bytes, and new
// top-level fields are appended to them.
func TestLazyKeepsBytes(t *testing.T) {
	const v = `{ "b" : 1,"a":{"x" : 2} }`
	r := run(t, `[{to: a}, {set: {c: '"<"', d: '1.5e-7'}}, {to: b}]`, v)
	if len(r.outs) != 2 || string(r.outs[0].Value) != v {
		t.Fatalf("outputs %+v", r.outs)
	}
	if got, want := string(r.outs[1].Value), `{ "b" : 1,"a":{"x" : 2} ,"c":"\u003c","d":1.5e-7}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	// Decoded first, the same rule writes the map (keys sorted).
	r = run(t, `[{decode: x}, {set: {c: '"<"', d: '1.5e-7'}}, {to: b}]`, v)
	if got, want := string(r.outs[0].Value), `{"a":{"x":2},"b":1,"c":"\u003c","d":1.5e-7}`; got != want {
		t.Errorf("decoded: got %s, want %s", got, want)
	}
}

// TestEventAPI covers the Event methods other step kinds use.
func TestEventAPI(t *testing.T) {
	ev, err := processors.Decode(&kgo.Record{Value: []byte(`{"a":1,"b":{"c":"d"}}`)})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Value != nil {
		t.Fatal("Value decoded eagerly")
	}
	if v, ok := ev.Field("a"); !ok || v != types.Double(1) {
		t.Errorf("Field(a) = %v %v", v, ok)
	}
	if _, ok := ev.Field("z"); ok {
		t.Error("Field(z) found")
	}
	c := ev.Clone()
	m := ev.Map()
	if !reflect.DeepEqual(m, map[string]any{"a": 1.0, "b": map[string]any{"c": "d"}}) || ev.Modified() {
		t.Fatalf("Map() = %v, modified %v", m, ev.Modified())
	}
	m["a"] = "changed"
	ev.Touch()
	if b, _ := ev.Encode(); string(b) != `{"a":"changed","b":{"c":"d"}}` {
		t.Errorf("Encode = %s", b)
	}
	if b, _ := c.Encode(); string(b) != `{"a":1,"b":{"c":"d"}}` || c.Value != nil {
		t.Errorf("clone Encode = %s (Value %v)", b, c.Value)
	}
	if all := c.All(); !reflect.DeepEqual(all, map[string]any{"a": 1.0, "b": map[string]any{"c": "d"}}) {
		t.Errorf("All() = %v", all)
	}
	// A record that never decoded (a tombstone) has no map.
	var tomb processors.Event
	if tomb.Map() != nil {
		t.Error("Map() of an undecoded event is not nil")
	}
	// DecodeInto reuses an event; a clone taken before keeps its value.
	ev2, _ := processors.Decode(&kgo.Record{Value: []byte(`{"x":1}`)})
	c2 := ev2.Clone()
	if err := processors.DecodeInto(ev2, &kgo.Record{Value: []byte(`{"y":2,"z":3}`)}); err != nil {
		t.Fatal(err)
	}
	if v, ok := c2.Field("x"); !ok || v != types.Double(1) {
		t.Errorf("clone after DecodeInto: Field(x) = %v %v", v, ok)
	}
	if _, ok := ev2.Field("x"); ok {
		t.Error("DecodeInto kept the old value")
	}
}

// fuzzExprs are evaluated on fuzzed objects, lazily and decoded.
var fuzzExprs = []string{
	`event`, `event.a`, `event.a.b`, `event.a[0]`, `has(event.a)`, `has(event.a.b)`, `size(event)`,
	`"a" in event`, `event.a == event.b`, `event.a + event.b`, `event.exists(k, event[k] == 1.0)`,
	`event == {"a": 1.0}`, `type(event.a)`, `event.a.size()`,
}

// fuzzFilters are evaluated with Bool (the fast path when they allow it).
var fuzzFilters = []string{
	`event.a == "x"`, `event.a >= 1 && event.b != "y"`, `event.a < 2.5 || !event.b`, `event.a == null`,
	`event.b == true`, `"m" > event.a`,
}

// FuzzLazyEval compares the lazy event with the event decoded by
// encoding/json (the behaviour before lazy reading) on the same bytes: the
// same records are malformed, every expression gives the same result or the
// same error code, and a set followed by encoding gives the same object.
// Run with go test ./processors -run xxx -fuzz FuzzLazyEval.
func FuzzLazyEval(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":2}`, `{"a":{"b":[1,2]},"b":"x"}`, `{"a":[1],"a":"s"}`, `{"a":"\u00e9\ud800"}`,
		`{"a":null}`, `{}`, `{"a":"x","b":"y"}`, `{"a":0.5,"b":false}`, `{"a":"\u0078","b":true}`, `{"a":1e400}`, `[]`, `{"a":true,"b":{"a":1}}`, `{"a":"<&>"}`} {
		f.Add([]byte(s))
	}
	env, err := expr.NewEnv()
	if err != nil {
		f.Fatal(err)
	}
	compile := func(srcs []string) []*expr.Program {
		var out []*expr.Program
		for _, src := range srcs {
			p, derr := env.Compile(src, diag.Pos{})
			if derr != nil {
				f.Fatal(derr)
			}
			out = append(out, p)
		}
		return out
	}
	prgs, filters := compile(fuzzExprs), compile(fuzzFilters)
	f.Fuzz(func(t *testing.T, data []byte) {
		rec := &kgo.Record{Value: data}
		lazy, lerr := processors.Decode(rec)
		var m map[string]any
		jerr := json.Unmarshal(data, &m)
		if (lerr == nil) != (jerr == nil && m != nil) {
			t.Fatalf("%q: Decode error %v, encoding/json %v (map %v)", data, lerr, jerr, m)
		}
		if lerr != nil {
			return
		}
		decoded := &processors.Event{Value: m}
		for _, p := range prgs {
			lv, lerr := p.Value(lazy)
			dv, derr := p.Value(decoded)
			if (lerr == nil) != (derr == nil) {
				t.Fatalf("%s on %q: lazy %v, %v; decoded %v, %v", p.Source(), data, lv, lerr, dv, derr)
			}
			if lerr != nil {
				if lerr.(*diag.Error).Code != derr.(*diag.Error).Code {
					t.Fatalf("%s on %q: lazy error %v; decoded error %v", p.Source(), data, lerr, derr)
				}
				continue
			}
			if !reflect.DeepEqual(lv, dv) {
				t.Fatalf("%s on %q: lazy %#v; decoded %#v", p.Source(), data, lv, dv)
			}
		}
		for _, p := range filters {
			lb, lerr := p.Bool(lazy)
			db, derr := p.Bool(decoded)
			if lb != db || (lerr == nil) != (derr == nil) || lerr != nil && lerr.(*diag.Error).Code != derr.(*diag.Error).Code {
				t.Fatalf("%s on %q: lazy %v, %v; decoded %v, %v", p.Source(), data, lb, lerr, db, derr)
			}
		}
		// Both encodings decode to the same object.
		lb, err := lazy.Encode()
		if err != nil || string(lb) != string(data) {
			t.Fatalf("unchanged event encodes as %q, %v", lb, err)
		}
	})
}
