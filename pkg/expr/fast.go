package expr

import (
	"math"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/veltrix/veltrix/pkg/jsonval"
)

// JSONFields is an activation whose event's top-level fields can be read as
// JSON values in place (the lazy event). JSONField returns false when a
// field cannot be read that way (it is missing, a step changed it, or the
// event is decoded); the expression is then evaluated by CEL, which gives
// the same result and the same errors in every case.
type JSONFields interface {
	JSONField(name string) (jsonval.Value, bool)
}

// fastExpr is a boolean expression over top-level event fields and
// literals that Bool evaluates without CEL when every field it reads is
// there with the type its comparison needs: event.f == "x",
// event.total >= 100, event.paid, combined with &&, || and !. Anything
// else (a missing field, another type, which CEL answers with an error or
// with heterogeneous equality) is left to CEL.
type fastExpr struct {
	op    string // operators.LogicalAnd, LogicalOr, LogicalNot, a comparison, or "" for a bool field
	l, r  *fastExpr
	field string  // comparison or bool field: the event field
	lit   ref.Val // comparison: types.String, types.Double, types.Bool or types.Null
}

// compileFast returns the fast form of a checked expression, or nil.
func compileFast(checked *cel.Ast) *fastExpr {
	return fastOf(checked.NativeRep().Expr())
}

func fastOf(e celast.Expr) *fastExpr {
	switch e.Kind() {
	case celast.SelectKind:
		if f, ok := eventField(e); ok {
			return &fastExpr{field: f}
		}
	case celast.CallKind:
		c := e.AsCall()
		args := c.Args()
		if c.IsMemberFunction() {
			return nil
		}
		switch fn := c.FunctionName(); fn {
		case operators.LogicalAnd, operators.LogicalOr:
			if len(args) != 2 {
				return nil
			}
			l, r := fastOf(args[0]), fastOf(args[1])
			if l == nil || r == nil {
				return nil
			}
			return &fastExpr{op: fn, l: l, r: r}
		case operators.LogicalNot:
			if len(args) != 1 {
				return nil
			}
			if x := fastOf(args[0]); x != nil {
				return &fastExpr{op: fn, l: x}
			}
		case operators.Equals, operators.NotEquals, operators.Less, operators.LessEquals, operators.Greater, operators.GreaterEquals:
			if len(args) != 2 {
				return nil
			}
			if f, ok := eventField(args[0]); ok {
				if lit, ok := literal(args[1]); ok {
					return &fastExpr{op: fn, field: f, lit: lit}
				}
			}
			if f, ok := eventField(args[1]); ok {
				if lit, ok := literal(args[0]); ok {
					return &fastExpr{op: flip(fn), field: f, lit: lit}
				}
			}
		}
	}
	return nil
}

// flip turns "lit op field" into "field op' lit".
func flip(op string) string {
	switch op {
	case operators.Less:
		return operators.Greater
	case operators.LessEquals:
		return operators.GreaterEquals
	case operators.Greater:
		return operators.Less
	case operators.GreaterEquals:
		return operators.LessEquals
	}
	return op
}

// eventField recognises event.<name> (not has()).
func eventField(e celast.Expr) (string, bool) {
	if e.Kind() != celast.SelectKind {
		return "", false
	}
	s := e.AsSelect()
	if s.IsTestOnly() || s.Operand().Kind() != celast.IdentKind || s.Operand().AsIdent() != VarEvent {
		return "", false
	}
	return s.FieldName(), true
}

// maxExactInt is the largest integer every float64 up to holds exactly.
const maxExactInt = 1 << 53

// literal recognises the literals a fast comparison takes; integers become
// doubles (exactly, or they are not taken), as JSON numbers are doubles.
func literal(e celast.Expr) (ref.Val, bool) {
	if e.Kind() != celast.LiteralKind {
		return nil, false
	}
	switch v := e.AsLiteral().(type) {
	case types.String, types.Bool, types.Null:
		return v, true
	case types.Double:
		if math.IsNaN(float64(v)) {
			return nil, false
		}
		return v, true
	case types.Int:
		if v >= -maxExactInt && v <= maxExactInt {
			return types.Double(float64(v)), true
		}
	}
	return nil, false
}

// eval returns the expression's value, or false when CEL must decide.
func (x *fastExpr) eval(a JSONFields) (result, ok bool) {
	switch x.op {
	case operators.LogicalAnd, operators.LogicalOr:
		l, ok := x.l.eval(a)
		if !ok {
			return false, false
		}
		r, ok := x.r.eval(a)
		if !ok {
			return false, false
		}
		if x.op == operators.LogicalAnd {
			return l && r, true
		}
		return l || r, true
	case operators.LogicalNot:
		v, ok := x.l.eval(a)
		return !v, ok
	case "":
		v, found := a.JSONField(x.field)
		if !found {
			return false, false
		}
		switch v.Kind {
		case jsonval.KindTrue:
			return true, true
		case jsonval.KindFalse:
			return false, true
		}
		return false, false
	}
	v, found := a.JSONField(x.field)
	if !found {
		return false, false
	}
	var c int
	switch lit := x.lit.(type) {
	case types.String:
		if v.Kind != jsonval.KindString {
			return false, false
		}
		c = compareString(v, string(lit))
	case types.Double:
		if v.Kind != jsonval.KindNumber {
			return false, false
		}
		f, l := v.Float(), float64(lit)
		switch {
		case f < l:
			c = -1
		case f > l:
			c = 1
		}
	case types.Bool:
		if v.Kind != jsonval.KindTrue && v.Kind != jsonval.KindFalse {
			return false, false
		}
		if x.op != operators.Equals && x.op != operators.NotEquals {
			return false, false
		}
		if (v.Kind == jsonval.KindTrue) != bool(lit) {
			c = 1
		}
	case types.Null:
		if v.Kind != jsonval.KindNull || (x.op != operators.Equals && x.op != operators.NotEquals) {
			return false, false
		}
	default:
		return false, false
	}
	switch x.op {
	case operators.Equals:
		return c == 0, true
	case operators.NotEquals:
		return c != 0, true
	case operators.Less:
		return c < 0, true
	case operators.LessEquals:
		return c <= 0, true
	case operators.Greater:
		return c > 0, true
	case operators.GreaterEquals:
		return c >= 0, true
	}
	return false, false
}

// compareString compares a JSON string with s, byte by byte (as CEL
// compares strings), without copying a plain string.
func compareString(v jsonval.Value, s string) int {
	if v.Plain() {
		b := v.Raw[1 : len(v.Raw)-1]
		switch { // string(b) in a comparison does not copy
		case string(b) < s:
			return -1
		case string(b) > s:
			return 1
		}
		return 0
	}
	got := v.Str()
	switch {
	case got < s:
		return -1
	case got > s:
		return 1
	}
	return 0
}
