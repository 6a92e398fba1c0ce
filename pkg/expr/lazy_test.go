package expr

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"

	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/pkg/jsonval"
)

func TestAppendJSON(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("x", 3600))
	vals := []ref.Val{
		types.NullValue, types.True, types.False, types.Int(-42), types.Uint(math.MaxUint64),
		types.Double(129.5), types.Double(1e21), types.Double(1e-7), types.Double(0),
		types.String("a<b>&\"c\"\n\u2028é\xff"), types.Bytes("raw"),
		types.Timestamp{Time: at}, types.Duration{Duration: 90 * time.Second},
		types.NewStringInterfaceMap(types.DefaultTypeAdapter, map[string]any{"b": 1.0, "a": []any{"x", true}}),
		types.NewDynamicList(types.DefaultTypeAdapter, []any{1, "2", nil}),
	}
	for _, v := range vals {
		x, err := ToJSON(v)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(x)
		got, err := AppendJSON([]byte("prefix:"), v)
		if err != nil || string(got) != "prefix:"+string(want) {
			t.Errorf("AppendJSON(%v) = %s, %v; want %s", v, got, err, want)
		}
	}
	for _, v := range []ref.Val{types.Double(math.NaN()), types.Double(math.Inf(1)), types.IntType} {
		if _, err := AppendJSON(nil, v); err == nil {
			t.Errorf("AppendJSON(%v) succeeded", v)
		}
	}
}

// fields is a Fields over a decoded map.
type fields map[string]any

func (f fields) Field(name string) (ref.Val, bool) {
	v, ok := f[name]
	if !ok {
		return nil, false
	}
	return types.DefaultTypeAdapter.NativeToValue(v), true
}

func (f fields) All() map[string]any { return f }

// TestLazyMap compares a LazyMap with the map CEL builds from the decoded
// object, expression by expression.
func TestLazyMap(t *testing.T) {
	obj := map[string]any{"a": 1.0, "s": "x", "o": map[string]any{"b": true}, "l": []any{1.0, "y"}, "n": nil}
	var jo jsonval.Object
	if err := jo.Parse([]byte(`{"a":1,"s":"x","o":{"b":true},"l":[1,"y"],"n":null}`)); err != nil {
		t.Fatal(err)
	}
	nested := FromJSON(jsonval.Value{Kind: jsonval.KindObject, Raw: []byte(`{"a":1,"s":"x","o":{"b":true},"l":[1,"y"],"n":null}`)})
	exprs := []string{
		`event.a`, `event.s`, `event.o.b`, `event.l[1]`, `event.n`, `has(event.a)`, `has(event.zz)`, `"o" in event`,
		`size(event)`, `event.exists(k, k == "s")`, `event == {"a": 1.0, "s": "x", "o": {"b": true}, "l": [1.0, "y"], "n": null}`,
		`event["s"]`, `event.zz`, `event[1]`, `type(event) == map`, `event.map(k, k).size()`, `event.o == {"b": true}`,
	}
	env := mustEnv(t)
	for _, src := range exprs {
		p, derr := env.Compile(src, diag.Pos{})
		if derr != nil {
			t.Fatal(derr)
		}
		want, wantErr := p.Value(act(t, obj, time.Now()))
		for name, ev := range map[string]any{"LazyMap": NewLazyMap(fields(obj)), "FromJSON": nested} {
			got, err := p.Value(actWith(t, ev))
			if (err == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %s = %#v, %v; want %#v, %v", name, src, got, err, want, wantErr)
			}
			if err != nil && err.(*diag.Error).Code != wantErr.(*diag.Error).Code {
				t.Errorf("%s: %s: code %s, want %s", name, src, err.(*diag.Error).Code, wantErr.(*diag.Error).Code)
			}
		}
	}
	m := NewLazyMap(fields(obj))
	if m.Type() != types.MapType || m.ConvertToType(types.MapType) != m || m.IsZeroValue() {
		t.Error("LazyMap type methods")
	}
	if v, err := m.ConvertToNative(reflect.TypeFor[map[string]any]()); err != nil || !reflect.DeepEqual(v, obj) {
		t.Errorf("ConvertToNative = %v, %v", v, err)
	}
	m.Reset(fields{})
	if !m.IsZeroValue() || m.Size() != types.IntZero {
		t.Error("Reset did not drop the old map")
	}
}

func actWith(t *testing.T, event any) *evalAct { t.Helper(); return &evalAct{event: event} }

// evalAct is an activation with only event and now().
type evalAct struct{ event any }

func (a *evalAct) ResolveName(name string) (any, bool) {
	if name == VarEvent {
		return a.event, true
	}
	return nil, false
}

func (a *evalAct) Parent() interpreter.Activation { return nil }

func TestAsJSON(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if v := AsJSON(types.Timestamp{Time: at}); v != types.String("2026-01-02T03:04:05Z") {
		t.Errorf("AsJSON(timestamp) = %v", v)
	}
	if v := AsJSON(types.Int(3)); v != types.Int(3) {
		t.Errorf("AsJSON(3) = %v", v)
	}
}
