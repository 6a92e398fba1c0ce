package testdriver

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/veltrix/veltrix/internal/topology"
)

// FuzzRecordPath sends arbitrary bytes as record values through a stateful
// rule set: nothing panics, and every record is accounted for as exactly one
// output (valid UTF-8 JSON) or one DLQ record with an error code. The seeds
// are testdata/poison. Run longer with make fuzz.
func FuzzRecordPath(f *testing.F) {
	entries, err := os.ReadDir("../testdata/poison")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if b, err := os.ReadFile(filepath.Join("../testdata/poison", e.Name())); err == nil && e.Name() != "README.md" {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"c":"a","n":1.5,"items":[1,2,3]}`))
	f.Add([]byte(`{"c":1e308,"n":"x"}`))
	topo := build(f, `app: {id: app}
rules:
  - name: fz
    from: in
    on_error: dlq
    steps:
      - set: {seen: 'true', first: 'has(event.items) && size(event.items) > 0 ? string(event.items[0]) : ""'}
      - aggregate: {store: s, key: 'has(event.c) ? string(event.c) : "none"', count: true, latest: event.seen}
      - to: out
`)
	clock := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, value []byte) {
		d := New(topo, WithClock(func() time.Time { return clock }))
		if err := d.Pipe(Record{Topic: "in", Key: []byte("k"), Value: value, Timestamp: clock}); err != nil {
			t.Fatalf("Pipe: %v (on_error is dlq)", err)
		}
		outs := d.ReadOutputs()
		if len(outs) != 1 {
			t.Fatalf("%d records out for one in: %v", len(outs), outs)
		}
		switch o := outs[0]; o.Topic {
		case "out":
			if !utf8.Valid(o.Value) || !json.Valid(o.Value) {
				t.Fatalf("output is not valid UTF-8 JSON: %q", o.Value)
			}
		case "app.dlq":
			if c, _ := o.Header(topology.HeaderErrorCode); c == "" {
				t.Fatalf("DLQ record without an error code: %v", o)
			}
		default:
			t.Fatalf("record on unexpected topic %s", o.Topic)
		}
	})
}
