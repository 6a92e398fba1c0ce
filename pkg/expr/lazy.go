package expr

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"

	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/pkg/jsonval"
)

// Fields is a JSON object as a LazyMap reads it: one field at a time, or
// all at once.
type Fields interface {
	// Field returns the field name as a CEL value (see FromJSON), or false
	// when the object has no such field.
	Field(name string) (ref.Val, bool)
	// All returns every field as JSON-compatible Go values, in a map the
	// caller may keep.
	All() map[string]any
}

// LazyMap is a CEL map(string, dyn) over a JSON object whose fields are
// converted one at a time, when an expression selects them (event.total
// converts total and nothing else). Operations that need the whole map
// (size, iteration, equality, conversion, a non-string key) build the full
// map once, from Fields.All, and use it from then on; Reset drops it.
//
// It behaves as the map types.NewStringInterfaceMap gives for the decoded
// object, so an expression cannot tell the two apart.
type LazyMap struct {
	f    Fields
	full traits.Mapper
}

var (
	_ traits.Mapper = (*LazyMap)(nil)
	_ traits.Zeroer = (*LazyMap)(nil)
)

// NewLazyMap returns a map over f.
func NewLazyMap(f Fields) *LazyMap { return &LazyMap{f: f} }

// Reset makes m read f, dropping a full map built before (call it when the
// object behind f changes).
func (m *LazyMap) Reset(f Fields) { m.f, m.full = f, nil }

func (m *LazyMap) materialise() traits.Mapper {
	if m.full == nil {
		m.full = types.NewStringInterfaceMap(types.DefaultTypeAdapter, m.f.All())
	}
	return m.full
}

// FindStringKey is CEL's fast path for event.name: no key value is built.
func (m *LazyMap) FindStringKey(name string) (any, bool) { return m.f.Field(name) }

// Find implements traits.Mapper.
func (m *LazyMap) Find(key ref.Val) (ref.Val, bool) {
	if s, ok := key.(types.String); ok {
		return m.f.Field(string(s))
	}
	return m.materialise().Find(key)
}

// Contains implements traits.Container.
func (m *LazyMap) Contains(key ref.Val) ref.Val {
	if s, ok := key.(types.String); ok {
		_, found := m.f.Field(string(s))
		return types.Bool(found)
	}
	return m.materialise().Contains(key)
}

// Get implements traits.Indexer: a missing key is an error value.
func (m *LazyMap) Get(key ref.Val) ref.Val {
	if v, found := m.Find(key); found {
		return v
	}
	return m.materialise().Get(key)
}

// Iterator implements traits.Iterable.
func (m *LazyMap) Iterator() traits.Iterator { return m.materialise().Iterator() }

// Size implements traits.Sizer.
func (m *LazyMap) Size() ref.Val { return m.materialise().Size() }

// IsZeroValue implements traits.Zeroer.
func (m *LazyMap) IsZeroValue() bool {
	if z, ok := m.materialise().(traits.Zeroer); ok {
		return z.IsZeroValue()
	}
	return m.materialise().Size() == types.IntZero
}

// ConvertToNative implements ref.Val.
func (m *LazyMap) ConvertToNative(t reflect.Type) (any, error) {
	return m.materialise().ConvertToNative(t)
}

// ConvertToType implements ref.Val.
func (m *LazyMap) ConvertToType(t ref.Type) ref.Val {
	if t == types.MapType {
		return m
	}
	return m.materialise().ConvertToType(t)
}

// Equal implements ref.Val.
func (m *LazyMap) Equal(other ref.Val) ref.Val { return m.materialise().Equal(other) }

// Type implements ref.Val.
func (m *LazyMap) Type() ref.Type { return types.MapType }

// Value implements ref.Val.
func (m *LazyMap) Value() any { return m.materialise().Value() }

// jsonObject is a nested JSON object read lazily.
type jsonObject struct {
	LazyMap
	obj *jsonval.Object
}

func (o *jsonObject) Field(name string) (ref.Val, bool) {
	v, ok := o.obj.Get(name)
	if !ok {
		return nil, false
	}
	return FromJSON(v), true
}

func (o *jsonObject) All() map[string]any { return o.obj.Map() }

// FromJSON converts one JSON value to a CEL value as the decoded Go value
// would convert: strings to string, numbers to double, objects to a lazy
// map(string, dyn), arrays to list(dyn).
func FromJSON(v jsonval.Value) ref.Val {
	switch v.Kind {
	case jsonval.KindString:
		return types.String(v.Str())
	case jsonval.KindNumber:
		return types.Double(v.Float())
	case jsonval.KindTrue:
		return types.True
	case jsonval.KindFalse:
		return types.False
	case jsonval.KindObject:
		obj, err := v.Object()
		if err != nil {
			return types.NewErr("%v", err)
		}
		o := &jsonObject{obj: obj}
		o.LazyMap.f = o
		return o
	case jsonval.KindArray:
		return types.DefaultTypeAdapter.NativeToValue(v.Decode())
	}
	return types.NullValue
}

// AppendJSON appends v's JSON encoding: the encoding json.Marshal gives the
// value ToJSON returns (so an error is what ToJSON would return), written
// without building that value for scalars.
func AppendJSON(dst []byte, v ref.Val) ([]byte, error) {
	switch v := v.(type) {
	case types.Null:
		return append(dst, "null"...), nil
	case types.Bool:
		return strconv.AppendBool(dst, bool(v)), nil
	case types.Int:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case types.Uint:
		return strconv.AppendUint(dst, uint64(v), 10), nil
	case types.Double:
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return dst, fmt.Errorf("%v is not a JSON number", f)
		}
		return jsonval.AppendFloat(dst, f), nil
	case types.String:
		return jsonval.AppendString(dst, string(v)), nil
	case types.Timestamp:
		return jsonval.AppendString(dst, v.Time.UTC().Format(time.RFC3339Nano)), nil
	case types.Duration:
		return jsonval.AppendString(dst, v.Duration.String()), nil
	}
	x, err := ToJSON(v)
	if err != nil {
		return dst, err
	}
	b, err := json.Marshal(x)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// AppendJSON evaluates the expression and appends its result's JSON
// encoding to dst (see Program.Value for how results map to JSON). It
// returns the result as well, for callers that keep it.
func (p *Program) AppendJSON(dst []byte, act interpreter.Activation) (ref.Val, []byte, error) {
	if p.lit != nil {
		return p.lit, append(dst, p.litJSON...), nil
	}
	v, err := p.Eval(act)
	if err != nil {
		return nil, dst, err
	}
	out, err := AppendJSON(dst, v)
	if err != nil {
		return nil, dst, p.pos.At(diag.ResultType, "%s: %v", p.src, err)
	}
	return v, out, nil
}

// AsJSON returns v as it reads back after a round trip through JSON-
// compatible Go values (ToJSON, then CEL's native conversion): timestamps
// and durations become strings, maps and lists are copied; other scalars are
// returned as they are. A value ToJSON rejects is returned unchanged.
func AsJSON(v ref.Val) ref.Val {
	switch v.(type) {
	case types.Null, types.Bool, types.Int, types.Uint, types.Double, types.String, types.Bytes:
		return v
	}
	x, err := ToJSON(v)
	if err != nil {
		return v
	}
	return types.DefaultTypeAdapter.NativeToValue(x)
}
