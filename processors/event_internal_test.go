package processors

import (
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

type fixedClock struct{}

func (fixedClock) Now() time.Time { return time.Unix(1, 0) }

// TestDecodeIntoResets: an Event reused by DecodeInto, after a rule changed
// it in every way it can, is the Event a fresh Decode gives, but for the
// storage DecodeInto keeps on purpose.
func TestDecodeIntoResets(t *testing.T) {
	first := &kgo.Record{Topic: "a", Partition: 1, Offset: 2, Key: []byte("k"), Value: []byte(`{"x":1}`),
		Headers: []kgo.RecordHeader{{Key: "h"}}, Timestamp: time.Unix(5, 0)}
	second := &kgo.Record{Topic: "b", Offset: 9, Value: []byte(`{"y":"z"}`), Timestamp: time.Unix(7, 0)}

	var ev Event
	if err := DecodeInto(&ev, first); err != nil {
		t.Fatal(err)
	}
	ev.Clock = fixedClock{}
	ev.edit("n", nil, []byte(`2`))
	if _, err := ev.Encode(); err != nil {
		t.Fatal(err)
	}
	ev.SetValue(map[string]any{"m": 1.0}, []byte(`{"m":1}`))
	if err := DecodeInto(&ev, second); err != nil {
		t.Fatal(err)
	}
	fresh, err := Decode(second)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.edits)+len(ev.vals)+len(ev.enc) != 0 {
		t.Fatalf("edits left over: %v %v %q", ev.edits, ev.vals, ev.enc)
	}
	if got, want := ev.obj.Raw(), fresh.obj.Raw(); string(got) != string(want) {
		t.Fatalf("obj = %s, want %s", got, want)
	}
	a, b := ev, *fresh
	for _, e := range []*Event{&a, &b} {
		e.obj, e.slab, e.edits, e.vals, e.enc = fresh.obj, nil, nil, nil, nil
		e.view = fresh.view
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("reused Event\n%+v\nwant\n%+v", a, b)
	}
}
