package testdriver

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/state"
	"github.com/veltrix/veltrix/internal/topology"
	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/processors"
)

// loadConfig writes a configuration to a temporary file and loads it.
func loadConfig(t testing.TB, yml string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "veltrix.yaml")
	if err := os.WriteFile(path, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, config.WithEnv(func(string) (string, bool) { return "", false }))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return cfg
}

func build(t testing.TB, yml string, opts ...topology.Option) *topology.Topology {
	t.Helper()
	topo, err := topology.Build(loadConfig(t, yml), opts...)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return topo
}

// countSpec is a stateful step kind for tests: it counts events per key in
// the store "counts" and sets event.count.
func countSpec() *processors.Spec {
	return &processors.Spec{
		Kind: "count",
		Build: func(b processors.Builder, n *yaml.Node, path string) processors.Step {
			if b.Store(n, path, "count") == "" {
				return nil
			}
			return countStep{}
		},
	}
}

type countStep struct{}

func (countStep) Process(t processors.ProcessorContext, ev *processors.Event) (bool, error) {
	s := t.Store("counts")
	v, _, err := s.Get(ev.Key)
	if err != nil {
		return false, err
	}
	var n uint64
	if len(v) == 8 {
		n = binary.BigEndian.Uint64(v)
	}
	n++
	if err := s.Put(ev.Key, binary.BigEndian.AppendUint64(nil, n)); err != nil {
		return false, err
	}
	ev.Value["count"] = float64(n)
	ev.Value["stream_time"] = t.StreamTime().Format(time.RFC3339)
	ev.Touch()
	return true, nil
}

const stateless = `
app: {id: app}
rules:
  - name: fwd
    from: in
    on_error: dlq
    steps:
      - filter: event.n > 0
      - set: {at: now()}
      - to: {topic: out, key: '"k-" + key'}
  - name: strict
    from: strict-in
    on_error: fail
    steps:
      - to: strict-out
      - filter: event.ok
      - to: strict-out2
`

func TestPipeOutputs(t *testing.T) {
	clock := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	d := New(build(t, stateless), WithClock(func() time.Time { return clock }))
	ts := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	in := []Record{
		{Topic: "in", Key: []byte("a"), Value: []byte(`{"n": 1}`), Timestamp: ts},
		{Topic: "in", Key: []byte("b"), Value: []byte(`{"n": 0}`)},
		{Topic: "in", Key: []byte("c"), Value: []byte(`{"n": 2}`), Timestamp: ts.Add(time.Minute)},
		{Topic: "other", Key: []byte("d"), Value: []byte(`{"n": 3}`)},
	}
	for _, r := range in {
		if err := d.Pipe(r); err != nil {
			t.Fatal(err)
		}
	}
	got := d.ReadOutputs()
	if len(got) != 2 {
		t.Fatalf("outputs %v, want 2", got)
	}
	for i, want := range []struct {
		key string
		ts  time.Time
	}{{"k-a", ts}, {"k-c", ts.Add(time.Minute)}} {
		if got[i].Topic != "out" || string(got[i].Key) != want.key || !got[i].Timestamp.Equal(want.ts) {
			t.Errorf("output %d = %v at %v, want out/%s at %v", i, got[i], got[i].Timestamp, want.key, want.ts)
		}
	}
	if d := Match("value", map[string]any{"at": clock.Format(time.RFC3339)}, decode(got[0].Value)); d != nil {
		t.Errorf("now() does not read the injected clock: %v", d)
	}
	if more := d.ReadOutputs(); len(more) != 0 {
		t.Errorf("ReadOutputs again = %v, want nothing new", more)
	}
	if all := d.Outputs(); len(all) != 2 {
		t.Errorf("Outputs = %d records, want 2", len(all))
	}
	if st := d.StreamTime(0); !st.Equal(ts.Add(time.Minute)) {
		t.Errorf("stream time %v, want %v", st, ts.Add(time.Minute))
	}
}

func TestPipeErrors(t *testing.T) {
	d := New(build(t, stateless))
	// on_error dlq: the original record with the error headers.
	if err := d.Pipe(Record{Topic: "in", Key: []byte("x"), Value: []byte("nope"), Headers: nil}); err != nil {
		t.Fatalf("dlq rule returned %v", err)
	}
	out := d.ReadOutputs()
	if len(out) != 1 || out[0].Topic != "app.dlq" || string(out[0].Value) != "nope" {
		t.Fatalf("dlq outputs = %v", out)
	}
	if code, _ := out[0].Header(topology.HeaderErrorCode); code != string(diag.MalformedEvent) {
		t.Errorf("error code header %q, want %s", code, diag.MalformedEvent)
	}
	// on_error fail: Pipe returns the rule's error and the record's outputs
	// are dropped, as an aborted transaction would drop them.
	err := d.Pipe(Record{Topic: "strict-in", Key: []byte("y"), Value: []byte(`{"ok": "yes"}`)})
	var re *topology.RuleError
	if !errors.As(err, &re) || re.Rule != "strict" {
		t.Fatalf("Pipe = %v, want a *topology.RuleError of rule strict", err)
	}
	if out := d.ReadOutputs(); len(out) != 0 {
		t.Errorf("outputs of a failed record were kept: %v", out)
	}
	if err := d.Pipe(Record{Key: []byte("y")}); err == nil {
		t.Error("Pipe without a topic did not fail")
	}
}

const stateful = `
app: {id: app}
rules:
  - name: counter
    from: in
    steps:
      - count: counts
      - to: counts
`

func TestStoresAndPartitions(t *testing.T) {
	topo := build(t, stateful, topology.WithSpecs(append(processors.Specs(), countSpec())))
	d := New(topo, WithPartitions(4))
	keys := []string{"a", "b", "c", "a", "a", "b"}
	ts := DefaultStartTime.Add(time.Hour)
	for i, k := range keys {
		if err := d.Pipe(Record{Topic: "in", Key: []byte(k), Value: []byte(`{}`), Timestamp: ts.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	out := d.Outputs()
	if len(out) != len(keys) {
		t.Fatalf("%d outputs, want %d", len(out), len(keys))
	}
	for _, o := range out {
		if want := state.PartitionFor(o.Key, 4); o.Partition != want {
			t.Errorf("key %s in partition %d, want %d", o.Key, o.Partition, want)
		}
	}
	if d := Match("value", map[string]any{"count": 3}, decode(out[4].Value)); d != nil {
		t.Errorf("third a: %v", d)
	}
	v, ok := d.Get("counts", []byte("a"))
	if !ok || binary.BigEndian.Uint64(v) != 3 {
		t.Errorf("counts[a] = %v, %v; want 3", v, ok)
	}
	pa := state.PartitionFor([]byte("a"), 4)
	if s := d.Store(pa, "counts"); s == nil || s.Len() == 0 {
		t.Errorf("store of partition %d is empty", pa)
	}
	if got := d.StoreKeys("counts"); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("StoreKeys = %v", got)
	}
	if _, ok := d.Get("counts", []byte("z")); ok {
		t.Error("Get of a missing key found one")
	}
	if d.Store(pa, "nope") != nil {
		t.Error("Store of an unused name is not nil")
	}
}

func TestStreamTime(t *testing.T) {
	topo := build(t, stateful, topology.WithSpecs(append(processors.Specs(), countSpec())))
	d := New(topo)
	if !d.StreamTime(0).IsZero() {
		t.Fatal("stream time before any record is not zero")
	}
	// No timestamp: the start time.
	if err := d.Pipe(Record{Topic: "in", Key: []byte("a"), Value: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if got := d.StreamTime(0); !got.Equal(DefaultStartTime) {
		t.Errorf("stream time %v, want the start time %v", got, DefaultStartTime)
	}
	late := DefaultStartTime.Add(time.Hour)
	for _, ts := range []time.Time{late, DefaultStartTime.Add(time.Minute)} { // an out-of-order record does not move it back
		if err := d.Pipe(Record{Topic: "in", Key: []byte("a"), Value: []byte(`{}`), Timestamp: ts}); err != nil {
			t.Fatal(err)
		}
	}
	if got := d.StreamTime(0); !got.Equal(late) {
		t.Errorf("stream time %v, want %v", got, late)
	}
	out := d.Outputs()
	if d := Match("value", map[string]any{"stream_time": late.Format(time.RFC3339)}, decode(out[2].Value)); d != nil {
		t.Errorf("step saw stream time: %v", d)
	}
	if err := d.AdvanceTime(10 * time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, want := d.StreamTime(0), late.Add(10*time.Minute); !got.Equal(want) {
		t.Errorf("after AdvanceTime: %v, want %v", got, want)
	}
	if err := d.AdvanceTime(-time.Second); err == nil {
		t.Error("AdvanceTime backwards did not fail")
	}
	// A task that never saw a record stays at zero.
	if !d.StreamTime(1).IsZero() {
		t.Error("stream time of an unused task moved")
	}
}

func TestWithStartTime(t *testing.T) {
	start := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	d := New(build(t, stateless), WithStartTime(start))
	if err := d.Pipe(Record{Topic: "in", Key: []byte("a"), Value: []byte(`{"n": 1}`)}); err != nil {
		t.Fatal(err)
	}
	if out := d.Outputs(); len(out) != 1 || !out[0].Timestamp.Equal(start) {
		t.Errorf("outputs %v, want one at %v", out, start)
	}
}
