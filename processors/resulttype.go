package processors

import (
	"slices"

	"cel.dev/cel-go/common/types"
	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/pkg/expr"
)

// Result is what a field needs an expression to return.
type Result int

// Results a field can need.
const (
	// ResultBool: a filter, a route's when, a sequence's first and then.
	ResultBool Result = iota
	// ResultNumber: an aggregate's sum, min, max and avg.
	ResultNumber
	// ResultKey: a key or an id (a string or a number; bytes, bools and
	// timestamps are formatted as text, as at run time).
	ResultKey
	// ResultTime: an event time (a timestamp, an RFC 3339 string or epoch
	// milliseconds).
	ResultTime
	// ResultMap: a new event value (map's expression form).
	ResultMap
)

// fits are the CEL kinds each Result accepts, besides dyn and the like
// (a JSON event field is dyn: only a result whose type is known when the
// expression is checked can be rejected).
var fits = map[Result][]types.Kind{
	ResultBool:   {types.BoolKind},
	ResultNumber: {types.IntKind, types.UintKind, types.DoubleKind},
	ResultKey:    {types.StringKind, types.BytesKind, types.IntKind, types.UintKind, types.DoubleKind, types.BoolKind, types.TimestampKind},
	ResultTime:   {types.TimestampKind, types.StringKind, types.IntKind, types.UintKind, types.DoubleKind},
	ResultMap:    {types.MapKind},
}

// wants says what a Result is, for messages.
var wants = map[Result]string{
	ResultBool:   "a bool",
	ResultNumber: "a number",
	ResultKey:    "a string or a number",
	ResultTime:   "a timestamp, an RFC 3339 string or epoch milliseconds",
	ResultMap:    "a map",
}

// hints says how to fix a result of the wrong type.
var hints = map[Result]string{
	ResultBool:   `compare the value, e.g. event.status == "paid" or size(event.items) > 0`,
	ResultNumber: "use a numeric field (event.total) or convert it: double(event.total)",
	ResultKey:    "use one field as the key (event.customer_id), or join several with +: event.region + \"/\" + event.customer_id",
	ResultTime:   "use a timestamp field or epoch milliseconds (event.created_at), or timestamp(\"...\")",
	ResultMap:    `build the new value as a map with string keys, e.g. {"id": event.id, "total": event.total}`,
}

// maybe are the kinds whose values are only known at run time.
var maybe = []types.Kind{types.DynKind, types.AnyKind, types.TypeParamKind, types.ErrorKind}

// ResultFits reports whether p, compiled from n at path, can return what the
// field (named by what, e.g. "sum") needs. When its checked type cannot
// (a string summed, a list as a key), it records a VX3002 with a hint and
// returns false: every event would fail at run time (VX5004). An expression
// over event fields is dyn and always fits.
func ResultFits(b Builder, n *yaml.Node, path string, p *expr.Program, want Result, what string) bool {
	k := p.OutputType().Kind()
	if slices.Contains(maybe, k) || slices.Contains(fits[want], k) {
		return true
	}
	e := b.Errorf(n, path, diag.ExprType, "%s must return %s, but %q returns %s", what, wants[want], p.Source(), p.OutputType())
	setHint(e, "%s", hints[want])
	if e != nil {
		e.Expected, e.Found = wants[want], p.OutputType().String()
	}
	return false
}
