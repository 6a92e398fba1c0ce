package processors_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/topology"
	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/processors"
)

// stateTask is a ProcessorContext with in-memory stores and a settable stream time.
type stateTask struct {
	stream time.Time
	stores map[string]*processors.MemStore
	out    []processors.Output
}

func newStateTask(top *topology.Topology) *stateTask {
	t := &stateTask{stores: map[string]*processors.MemStore{}}
	for _, name := range top.StoreNames() {
		t.stores[name] = processors.NewMemStore()
	}
	return t
}

func (t *stateTask) Emit(o processors.Output) { t.out = append(t.out, o) }
func (t *stateTask) Now() time.Time           { return t.stream }
func (t *stateTask) StreamTime() time.Time    { return t.stream }
func (t *stateTask) Store(name string) processors.Store {
	if s, ok := t.stores[name]; ok {
		return s
	}
	return nil
}

// userKeys returns the store's keys that are not internal, sorted.
func (t *stateTask) userKeys(store string) []string {
	var keys []string
	_ = t.stores[store].Scan(nil, func(k, _ []byte) bool {
		if !processors.IsInternalKey(k) {
			keys = append(keys, string(k))
		}
		return true
	})
	return keys
}

// base is the day every test's clock times are on.
var base = time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)

// at parses "15:04" or "15:04:05" as a time of the base day.
func at(t testing.TB, hm string) time.Time {
	t.Helper()
	layout := "15:04"
	if strings.Count(hm, ":") == 2 {
		layout = "15:04:05"
	}
	d, err := time.Parse(layout, hm)
	if err != nil {
		t.Fatal(err)
	}
	return base.Add(time.Duration(d.Hour())*time.Hour + time.Duration(d.Minute())*time.Minute + time.Duration(d.Second())*time.Second)
}

// input is one record (or, with advance set, a move of stream time).
type input struct {
	topic   string // default "in"
	key     string
	value   string // "<nil>": a tombstone
	at      string // record timestamp, clock time of the base day
	advance string // when set: only move stream time there and punctuate
	// restart: the task is opened again on its stores (after a restart or
	// a rebalance): the task's own stream time starts over, the stores
	// keep what they had.
	restart bool
}

// stateCase runs inputs through a configuration and checks the outputs.
type stateCase struct {
	name   string
	config string // YAML: rules (and templates) as in veltrix.yaml
	inputs []input
	want   []string            // "topic|key|json" (DLQ: "topic|key|code")
	keys   map[string][]string // store -> user keys left at the end
}

// buildConfig builds a topology from a YAML document with rules and
// templates, placed in file "rules.yaml".
func buildConfig(t testing.TB, src string) (*topology.Topology, error) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{App: config.App{ID: "app"}}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "rules" {
			continue
		}
		for j, rn := range root.Content[i+1].Content {
			r := &config.Rule{OnError: config.OnErrorDLQ, Pos: diag.Pos{File: "rules.yaml", Line: rn.Line, Column: rn.Column, Path: fmt.Sprintf("rules[%d]", j)}}
			for k := 0; k+1 < len(rn.Content); k += 2 {
				key, v := rn.Content[k].Value, rn.Content[k+1]
				switch key {
				case "name":
					r.Name = v.Value
				case "from":
					if v.Kind == yaml.ScalarNode {
						r.From = []string{v.Value}
					}
					for _, f := range v.Content {
						r.From = append(r.From, f.Value)
					}
				case "steps":
					r.Steps = v.Content
				case "on_error":
					r.OnError = v.Value
				}
			}
			cfg.Rules = append(cfg.Rules, r)
		}
	}
	return topology.Build(cfg)
}

// runInputs feeds inputs to the topology, advancing stream time with each
// record timestamp and punctuating after each record; records written to a
// repartition topic are fed back in, as the engine's consumer would.
func runInputs(t testing.TB, top *topology.Topology, task *stateTask, inputs []input) {
	t.Helper()
	reparts := top.Repartitions()
	for _, in := range inputs {
		if in.restart {
			task.stream = time.Time{}
			continue
		}
		if in.advance != "" {
			task.stream = at(t, in.advance)
			if err := top.Punctuate(task); err != nil {
				t.Fatalf("Punctuate: %v", err)
			}
			continue
		}
		topic := in.topic
		if topic == "" {
			topic = "in"
		}
		ts := at(t, in.at)
		if ts.After(task.stream) {
			task.stream = ts
		}
		var value []byte
		if in.value != "<nil>" {
			value = []byte(in.value)
		}
		queue := []*kgo.Record{{Topic: topic, Key: []byte(in.key), Value: value, Timestamp: ts}}
		for len(queue) > 0 {
			rec := queue[0]
			queue = queue[1:]
			before := len(task.out)
			if err := top.Process(task, rec, nil); err != nil {
				t.Fatalf("Process: %v", err)
			}
			if err := top.Punctuate(task); err != nil {
				t.Fatalf("Punctuate: %v", err)
			}
			for _, o := range task.out[before:] {
				if slices.Contains(reparts, o.Topic) {
					queue = append(queue, &kgo.Record{Topic: o.Topic, Key: o.Key, Value: o.Value, Headers: o.Headers, Timestamp: rec.Timestamp})
				}
			}
		}
	}
}

// render formats outputs as "topic|key|canonical json" (DLQ records as
// "topic|key|code").
func render(t testing.TB, outs []processors.Output) []string {
	t.Helper()
	got := make([]string, 0, len(outs))
	for _, o := range outs {
		body := canonical(t, string(o.Value))
		for _, h := range o.Headers {
			if h.Key == topology.HeaderErrorCode {
				body = string(h.Value)
			}
		}
		got = append(got, o.Topic+"|"+string(o.Key)+"|"+body)
	}
	return got
}

func canonical(t testing.TB, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func runStateCases(t *testing.T, cases []stateCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			top, err := buildConfig(t, tc.config)
			if err != nil {
				t.Fatalf("Build:\n%v", err)
			}
			task := newStateTask(top)
			runInputs(t, top, task, tc.inputs)
			got := render(t, task.out)
			want := make([]string, len(tc.want))
			for i, w := range tc.want {
				parts := strings.SplitN(w, "|", 3)
				want[i] = parts[0] + "|" + parts[1] + "|" + canonical(t, parts[2])
			}
			if !slices.Equal(got, want) {
				t.Errorf("outputs:\n got  %s\n want %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
			}
			for store, keys := range tc.keys {
				if got := task.userKeys(store); !slices.Equal(got, keys) {
					t.Errorf("store %s keys = %q, want %q", store, got, keys)
				}
			}
		})
	}
}

func TestAggregate(t *testing.T) {
	runStateCases(t, []stateCase{
		{
			name: "all functions without a window",
			config: `
rules:
  - name: r
    from: in
    steps:
      - aggregate: {store: s, key: event.c, count: true, sum: event.n, min: event.n, max: event.n, avg: event.n, latest: event.tag, repartition: false}
      - to: out`,
			inputs: []input{
				{key: "o1", value: `{"c":"a","n":10,"tag":"x"}`, at: "10:00"},
				{key: "o2", value: `{"c":"a","n":2,"tag":"y"}`, at: "10:01"},
				{key: "o3", value: `{"c":"b","n":-1.5,"tag":{"z":1}}`, at: "10:02"},
				{key: "o4", value: `{"c":"a","n":"many"}`, at: "10:03"},
			},
			want: []string{
				`out|a|{"key":"a","count":1,"sum":10,"min":10,"max":10,"avg":10,"latest":"x"}`,
				`out|a|{"key":"a","count":2,"sum":12,"min":2,"max":10,"avg":6,"latest":"y"}`,
				`out|b|{"key":"b","count":1,"sum":-1.5,"min":-1.5,"max":-1.5,"avg":-1.5,"latest":{"z":1}}`,
				`app.dlq|o4|VX5004`,
			},
			keys: map[string][]string{"s": {"a", "b"}},
		},
		{
			name: "later steps read, change and filter the result",
			config: `
rules:
  - name: r
    from: in
    steps:
      - aggregate: {store: s, key: event.c, count: true, sum: event.n, repartition: false}
      - filter: event.count >= 2 && event.key == "a"
      - set: {big: event.sum > 10.0}
      - drop: [count]
      - to: {topic: out, key: '"k-" + event.key'}`,
			inputs: []input{
				{key: "o1", value: `{"c":"a","n":10}`, at: "10:00"},
				{key: "o2", value: `{"c":"b","n":2}`, at: "10:01"},
				{key: "o3", value: `{"c":"a","n":2.5}`, at: "10:02"},
			},
			want: []string{
				`out|k-a|{"key":"a","sum":12.5,"big":true}`,
			},
		},
		{
			name: "tumbling window edges: an event at the end belongs to the next window",
			config: `
rules:
  - name: r
    from: in
    steps:
      - aggregate: {store: s, window: {tumbling: 1h}}
      - to: out`,
			inputs: []input{
				{key: "k", value: `{}`, at: "10:00"},
				{key: "k", value: `{}`, at: "10:59:59"},
				{key: "k", value: `{}`, at: "11:00"},
			},
			want: []string{
				`out|k|{"key":"k","count":1,"window_start":"2024-05-01T10:00:00Z","window_end":"2024-05-01T11:00:00Z"}`,
				`out|k|{"key":"k","count":2,"window_start":"2024-05-01T10:00:00Z","window_end":"2024-05-01T11:00:00Z"}`,
				`out|k|{"key":"k","count":1,"window_start":"2024-05-01T11:00:00Z","window_end":"2024-05-01T12:00:00Z"}`,
			},
			// With grace 0, stream time 11:00 closed 10:00-11:00: deleted.
			keys: map[string][]string{"s": {"k@2024-05-01T11:00:00.000Z"}},
		},
		{
			name: "on_close with grace, late events to the DLQ, event time from the value",
			config: `
rules:
  - name: r
    from: in
    steps:
      - aggregate: {store: s, key: event.c, sum: event.n, window: {tumbling: 1h, grace: 5m}, emit: on_close, time: event.at, repartition: false}
      - to: out`,
			inputs: []input{
				{key: "1", value: `{"c":"a","n":1,"at":"2024-05-01T10:10:00Z"}`, at: "23:00"},
				{key: "2", value: `{"c":"a","n":2,"at":"2024-05-01T10:50:00Z"}`, at: "23:00"},
				{key: "3", value: `{"c":"a","n":4,"at":"2024-05-01T11:02:00Z"}`, at: "23:00"},
				{key: "4", value: `{"c":"a","n":8,"at":"2024-05-01T10:59:00Z"}`, at: "23:00"},  // within grace
				{key: "5", value: `{"c":"b","n":16,"at":"2024-05-01T11:05:00Z"}`, at: "23:00"}, // closes 10-11
				{key: "6", value: `{"c":"a","n":32,"at":"2024-05-01T10:30:00Z"}`, at: "23:00"}, // late
			},
			want: []string{
				`out|a|{"key":"a","count":3,"sum":11,"window_start":"2024-05-01T10:00:00Z","window_end":"2024-05-01T11:00:00Z"}`,
				`app.dlq|6|VX5005`,
			},
			keys: map[string][]string{"s": {"a@2024-05-01T11:00:00.000Z", "b@2024-05-01T11:00:00.000Z"}},
		},
		{
			name: "on_close closes on the task's stream time",
			config: `
rules:
  - name: r
    from: in
    steps:
      - aggregate: {store: s, max: event.n, window: {tumbling: 10m}, emit: on_close}
      - to: out`,
			inputs: []input{
				{key: "k", value: `{"n":3}`, at: "10:01"},
				{key: "k", value: `{"n":5}`, at: "10:02"},
				{advance: "10:09"},
				{advance: "10:10"},
			},
			want: []string{`out|k|{"key":"k","count":2,"max":5,"window_start":"2024-05-01T10:00:00Z","window_end":"2024-05-01T10:10:00Z"}`},
			keys: map[string][]string{"s": nil},
		},
		{
			name: "a window closed before a restart stays closed (event time is the record timestamp)",
			config: `
rules:
  - name: r
    from: in
    steps:
      - aggregate: {store: s, count: true, window: {tumbling: 10m}, emit: on_close}
      - to: out`,
			inputs: []input{
				{key: "k", value: `{}`, at: "10:01"},
				{key: "k", value: `{}`, at: "10:02"},
				{key: "k", value: `{}`, at: "10:11"},
				{restart: true},
				{key: "k", value: `{}`, at: "10:03"}, // late: its window closed at 10:10
			},
			want: []string{
				`out|k|{"key":"k","count":2,"window_start":"2024-05-01T10:00:00Z","window_end":"2024-05-01T10:10:00Z"}`,
				`app.dlq|k|VX5005`,
			},
			keys: map[string][]string{"s": {"k@2024-05-01T10:10:00.000Z"}},
		},
		{
			name: "hopping windows",
			config: `
rules:
  - name: r
    from: in
    steps:
      - aggregate: {store: s, window: {hopping: {size: 1h, advance: 30m}}, emit: on_close}
      - to: out`,
			inputs: []input{
				{key: "k", value: `{}`, at: "10:10"},
				{key: "k", value: `{}`, at: "10:40"},
				{advance: "12:00"},
			},
			want: []string{
				`out|k|{"key":"k","count":1,"window_start":"2024-05-01T09:30:00Z","window_end":"2024-05-01T10:30:00Z"}`,
				`out|k|{"key":"k","count":2,"window_start":"2024-05-01T10:00:00Z","window_end":"2024-05-01T11:00:00Z"}`,
				`out|k|{"key":"k","count":1,"window_start":"2024-05-01T10:30:00Z","window_end":"2024-05-01T11:30:00Z"}`,
			},
			keys: map[string][]string{"s": nil},
		},
		{
			name: "hopping on_update emits the latest window",
			config: `
rules:
  - name: r
    from: in
    steps:
      - aggregate: {store: s, window: {hopping: {size: 1h, advance: 30m}}}
      - to: out`,
			inputs: []input{{key: "k", value: `{}`, at: "10:40"}},
			want:   []string{`out|k|{"key":"k","count":1,"window_start":"2024-05-01T10:30:00Z","window_end":"2024-05-01T11:30:00Z"}`},
			keys:   map[string][]string{"s": {"k@2024-05-01T10:00:00.000Z", "k@2024-05-01T10:30:00.000Z"}},
		},
		{
			name: "sessions merge when an event bridges them",
			config: `
rules:
  - name: r
    from: in
    steps:
      - aggregate: {store: s, sum: event.n, avg: event.n, window: {session: {gap: 10m}, grace: 10m}, emit: on_close}
      - to: out`,
			inputs: []input{
				{key: "k", value: `{"n":1}`, at: "10:00"},
				{key: "k", value: `{"n":2}`, at: "10:18"},
				{key: "k", value: `{"n":6}`, at: "10:09"},   // within 10m of both
				{key: "k", value: `{"n":100}`, at: "10:40"}, // closes 10:00-10:18 (+ gap + grace)
				{advance: "10:59"},
				{advance: "11:00"},
			},
			want: []string{
				`out|k|{"key":"k","count":3,"sum":9,"avg":3,"window_start":"2024-05-01T10:00:00Z","window_end":"2024-05-01T10:18:00Z"}`,
				`out|k|{"key":"k","count":1,"sum":100,"avg":100,"window_start":"2024-05-01T10:40:00Z","window_end":"2024-05-01T10:40:00Z"}`,
			},
			keys: map[string][]string{"s": nil},
		},
		{
			name: "a late session event",
			config: `
rules:
  - name: r
    from: in
    steps:
      - aggregate: {store: s, window: {session: {gap: 10m}, grace: 1m}, emit: on_close}
      - to: out`,
			inputs: []input{
				{key: "k", value: `{}`, at: "10:00"},
				{key: "j", value: `{}`, at: "10:30"},
				{key: "k", value: `{}`, at: "10:15"},
			},
			want: []string{
				`out|k|{"key":"k","count":1,"window_start":"2024-05-01T10:00:00Z","window_end":"2024-05-01T10:00:00Z"}`,
				`app.dlq|k|VX5005`,
			},
		},
	})
}

// TestBuildErrors checks the problems of bad stateful shapes: code, line and
// path.
func TestStatefulBuildErrors(t *testing.T) {
	cases := []struct {
		name, steps string
		want        []string // "code line path"
	}{
		{"two window kinds", `
- aggregate: {store: s, window: {tumbling: 1h, session: {gap: 5m}}}`, []string{"VX3004 2 rules[0].steps[0].aggregate.window"}},
		{"on_close without window", `
- aggregate: {store: s, emit: on_close}`, []string{"VX3004 2 rules[0].steps[0].aggregate.emit"}},
		{"bad duration", `
- dedupe: {store: s, id: event.id, ttl: soon}`, []string{"VX3004 2 rules[0].steps[0].dedupe.ttl"}},
		{"advance larger than size", `
- aggregate:
    store: s
    window: {hopping: {size: 10m, advance: 1h}}`, []string{"VX3004 4 rules[0].steps[0].aggregate.window.hopping.advance"}},
		{"store declared twice", `
- dedupe: {store: s, id: event.id}
- aggregate: {store: s}`, []string{"VX3004 3 rules[0].steps[1].aggregate.store"}},
		{"store name that cannot name a topic", `
- table: {store: "a b"}`, []string{"VX3004 2 rules[0].steps[0].table.store"}},
		{"join on a missing table", `
- join: {table: customers, as: c}`, []string{"VX3004 2 rules[0].steps[0].join.table"}},
		{"join on a store that is not a table", `
- dedupe: {store: customers, id: event.id}
- join: {table: customers, as: c}`, []string{"VX3004 3 rules[0].steps[1].join.table"}},
		{"sequence then not bool", `
- sequence: {store: s, first: event.a == 1, then: '"paid"'}`, []string{"VX3002 2 rules[0].steps[0].sequence.then"}},
		{"sequence ttl shorter than within", `
- sequence: {store: s, first: event.a == 1, then: event.b == 2, within: 2h, ttl: 1h}`, []string{"VX3004 2 rules[0].steps[0].sequence.ttl"}},
		{"rekey inside a route", `
- route:
    - default: [{rekey: event.c}, {to: out}]`, []string{"VX3004 3 rules[0].steps[0].route[0].default[0].rekey"}},
		{"rekey twice", `
- rekey: event.a
- rekey: event.b
- to: out`, []string{"VX3004 3 rules[0].steps[1].rekey"}},
		{"rekey last", `
- filter: "true"
- rekey: event.a`, []string{"VX3004 3 rules[0].steps[1].rekey"}},
		{"unknown aggregate key", `
- aggregate: {store: s, summ: event.n}`, []string{"VX3004 2 rules[0].steps[0].aggregate.summ"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := buildConfig(t, "rules:\n  - name: r\n    from: in\n    steps: "+indent(tc.steps))
			if err == nil {
				t.Fatal("Build succeeded, want an error")
			}
			list := diag.AsList(err)
			var got []string
			for _, e := range list {
				got = append(got, fmt.Sprintf("%s %d %s", e.Code, e.Line-3, e.Path)) // the snippet's line 2 is line 5
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("errors:\n got  %q\n want %q\n%v", got, tc.want, err)
			}
		})
	}
}

// indent places a step list under "steps:" (it starts on the next line).
func indent(steps string) string {
	return strings.ReplaceAll(steps, "\n", "\n      ")
}
