// Package expr compiles and evaluates Veltrix's rule expressions: CEL
// (cel.dev/cel-go) over the variables event, key, headers, timestamp and
// params, plus the function now().
//
// Expressions are parsed and type-checked once, when the topology is built;
// a problem is a *diag.Error (VX3001 syntax, VX3002 type) placed at the line
// and column inside the YAML file. Evaluation takes an interpreter.Activation
// (the processors' Event implements it directly, so no per-event map is
// built) and turns failures into run-time codes: VX5003 for a missing field,
// VX5002 for any other evaluation error, VX5004 for a result of the wrong type.
//
// Variables:
//
//	event      dyn                          the decoded JSON object
//	key        string                       the record key
//	headers    map(string, string)          the record headers (last value wins)
//	timestamp  google.protobuf.Timestamp    the record timestamp
//	params.x   typed per the template param (number: double, int: int,
//	           string/topic/expr: string, bool: bool, duration: duration,
//	           list: list(dyn)), bound to the rule's value as a constant
//
// The event need not be decoded to be read: a LazyMap over the record's
// bytes (see Fields and FromJSON) converts only the fields an expression
// selects and behaves as the decoded map would. AppendJSON writes a result
// as JSON without building the Go value first.
//
// now() returns the processing time from the activation's clock (a late-bound
// function, so a fake clock in tests works). Numbers compare across types
// (event.total > 1000 works although JSON numbers are doubles).
package expr

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"

	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/pkg/jsonval"
)

// Names of the variables and functions expressions see.
const (
	VarEvent     = "event"
	VarKey       = "key"
	VarHeaders   = "headers"
	VarTimestamp = "timestamp"
	VarParams    = "params"
	FuncNow      = "now"
)

// Param is one template parameter bound to its value. Type is one of the
// config.Param* type names; Value has the Go type config.Value documents
// (float64, int64, string, bool, time.Duration, []any).
type Param struct {
	Name  string
	Type  string
	Value any
}

// Env is a CEL environment: the base variables plus, for a template
// instance, its parameters as typed constants. It is immutable and safe for
// concurrent use.
type Env struct {
	cel *cel.Env
}

// baseEnv is built once: creating a CEL environment with the standard
// library costs milliseconds, extending it is cheap.
var baseEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable(VarEvent, cel.DynType),
		cel.Variable(VarKey, cel.StringType),
		cel.Variable(VarHeaders, cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable(VarTimestamp, cel.TimestampType),
		cel.Function(FuncNow, cel.Overload("veltrix_now", nil, cel.TimestampType, cel.LateFunctionBinding())),
		cel.CrossTypeNumericComparisons(true),
	)
})

// NewEnv returns an environment with the given parameters declared as
// params.<name>, typed by their declared type and bound to their value.
func NewEnv(params ...Param) (*Env, error) {
	base, err := baseEnv()
	if err != nil {
		return nil, fmt.Errorf("expr: base environment: %w", err)
	}
	if len(params) == 0 {
		return &Env{cel: base}, nil
	}
	opts := make([]cel.EnvOption, 0, len(params))
	for _, p := range params {
		t, v, err := paramConstant(p)
		if err != nil {
			return nil, fmt.Errorf("expr: param %q: %w", p.Name, err)
		}
		opts = append(opts, cel.Constant(VarParams+"."+p.Name, t, v))
	}
	env, err := base.Extend(opts...)
	if err != nil {
		return nil, fmt.Errorf("expr: params: %w", err)
	}
	return &Env{cel: env}, nil
}

// paramConstant maps a parameter to its CEL type and value.
func paramConstant(p Param) (*cel.Type, ref.Val, error) {
	bad := func() (*cel.Type, ref.Val, error) {
		return nil, nil, fmt.Errorf("value %v (%T) does not fit type %s", p.Value, p.Value, p.Type)
	}
	switch p.Type {
	case "number":
		switch v := p.Value.(type) {
		case float64:
			return cel.DoubleType, types.Double(v), nil
		case int64:
			return cel.DoubleType, types.Double(float64(v)), nil
		case int:
			return cel.DoubleType, types.Double(float64(v)), nil
		}
	case "int":
		switch v := p.Value.(type) {
		case int64:
			return cel.IntType, types.Int(v), nil
		case int:
			return cel.IntType, types.Int(v), nil
		case float64:
			if v == math.Trunc(v) {
				return cel.IntType, types.Int(int64(v)), nil
			}
		}
	case "string", "topic", "expr":
		if v, ok := p.Value.(string); ok {
			return cel.StringType, types.String(v), nil
		}
	case "bool":
		if v, ok := p.Value.(bool); ok {
			return cel.BoolType, types.Bool(v), nil
		}
	case "duration":
		if v, ok := p.Value.(time.Duration); ok {
			return cel.DurationType, types.Duration{Duration: v}, nil
		}
	case "list":
		if v, ok := p.Value.([]any); ok {
			return cel.ListType(cel.DynType), types.NewDynamicList(types.DefaultTypeAdapter, v), nil
		}
	default:
		return nil, nil, fmt.Errorf("unknown parameter type %q", p.Type)
	}
	return bad()
}

// CostLimit bounds the CEL cost (about one unit per operation) of one
// evaluation of an expression with a comprehension: 1,000,000, a few
// milliseconds of work. Over it, evaluation stops with VX5007.
const CostLimit = 1_000_000

// hasComprehension reports whether e holds a comprehension.
func hasComprehension(e celast.Expr) bool {
	found := false
	celast.PreOrderVisit(e, celast.NewExprVisitor(func(x celast.Expr) {
		if x.Kind() == celast.ComprehensionKind {
			found = true
		}
	}))
	return found
}

// Program is one compiled expression. It is immutable and safe for
// concurrent use.
type Program struct {
	src  string
	pos  diag.Pos
	out  *cel.Type
	prg  cel.Program
	fast *fastExpr // Bool's evaluation without CEL, when the expression allows it
	// field is the event field when the expression is just event.<field>:
	// String and Float read it in place when it has a type they take.
	field string
	// lit is the value of an expression that is a literal ("yes", 42),
	// and litJSON its JSON encoding: nothing is evaluated per event.
	lit     ref.Val
	litJSON []byte
}

// Compile parses and type-checks src. pos is the place of the expression's
// first character in its file (for a quoted YAML scalar, one past the
// quote); lines after the first are placed at pos.Column plus their column,
// which is exact for block scalars (whose lines share one indentation) and a
// best effort otherwise. Errors are VX3001 (syntax) or VX3002 (type), placed
// where CEL found the problem.
func (e *Env) Compile(src string, pos diag.Pos) (*Program, *diag.Error) {
	ast, iss := e.cel.Parse(src)
	if iss.Err() != nil {
		return nil, issueError(diag.ExprSyntax, "syntax error in expression", src, pos, iss)
	}
	checked, iss := e.cel.Check(ast)
	if iss.Err() != nil {
		return nil, issueError(diag.ExprType, "type error in expression", src, pos, iss)
	}
	root := checked.NativeRep().Expr()
	popts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if hasComprehension(root) {
		// Only comprehensions (all, exists, map, filter, ...) can make an
		// expression's cost grow faster than its input; tracking the cost
		// of the others would slow every event for nothing.
		popts = append(popts, cel.CostLimit(CostLimit))
	}
	prg, err := e.cel.Program(checked, popts...)
	if err != nil {
		return nil, pos.At(diag.ExprType, "expression %q cannot be planned: %v", src, err)
	}
	p := &Program{src: src, pos: pos, out: checked.OutputType(), prg: prg, fast: compileFast(checked)}
	p.field, _ = eventField(root)
	if root.Kind() == celast.LiteralKind {
		if enc, err := AppendJSON(nil, root.AsLiteral()); err == nil {
			p.lit, p.litJSON = root.AsLiteral(), enc
		}
	}
	return p, nil
}

// issueError turns CEL's first issue into a placed diag.Error; further issues
// are appended to the message.
func issueError(code diag.Code, what, src string, pos diag.Pos, iss *cel.Issues) *diag.Error {
	errs := iss.Errors()
	if len(errs) == 0 {
		return pos.At(code, "%s %q: %v", what, src, iss.Err())
	}
	first := errs[0]
	at := pos
	if line, col := first.Location.Line(), first.Location.Column(); line >= 1 && col >= 0 {
		at.Line = pos.Line + line - 1
		at.Column = pos.Column + col
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Message
	}
	d := at.At(code, "%s %q: %s", what, src, strings.Join(msgs, "; "))
	if code == diag.ExprType && strings.Contains(d.Message, "undeclared reference") {
		d = d.WithHint("expressions see event, key, headers, timestamp, now() and the template's params.<name>")
	}
	if code == diag.ExprType && strings.Contains(d.Message, "no matching overload") {
		d = d.WithHint("the operands have different types; compare values of one type (a number param with a number field)")
	}
	if code == diag.ExprSyntax {
		d = d.WithHint("expressions are CEL (https://cel.dev): e.g. event.total >= 1000 && event.type == \"order.created\"; quote YAML values that start with a quote or contain \": \"")
	}
	return d
}

// Source returns the expression's text.
func (p *Program) Source() string { return p.src }

// Pos returns where the expression was written.
func (p *Program) Pos() diag.Pos { return p.pos }

// OutputType returns the type the checker inferred for the result (dyn when
// it depends on the event).
func (p *Program) OutputType() *cel.Type { return p.out }

// MayReturn reports whether the expression can produce a value of t's kind
// (bool, map, ...): its checked type has that kind or is dyn.
func (p *Program) MayReturn(t *cel.Type) bool {
	k := p.out.Kind()
	return k == t.Kind() || k == types.DynKind || k == types.AnyKind
}

// Eval evaluates the expression over act. A failure is a *diag.Error:
// VX5003 when a field is missing, VX5002 otherwise.
func (p *Program) Eval(act interpreter.Activation) (ref.Val, error) {
	if p.lit != nil {
		return p.lit, nil
	}
	v, _, err := p.prg.Eval(act)
	if err != nil {
		return nil, p.evalError(err)
	}
	return v, nil
}

func (p *Program) evalError(err error) *diag.Error {
	msg := err.Error()
	if strings.Contains(msg, "cost limit exceeded") {
		return p.pos.At(diag.ExprCostExceeded, "%s: evaluation went over the cost limit of %d", p.src, CostLimit).
			WithHint("the expression iterates over too much of this event (nested all/exists/map/filter over large lists); bound it, e.g. check size() first")
	}
	code := diag.EvalError
	if strings.Contains(msg, "no such key") || strings.Contains(msg, "no such attribute") {
		code = diag.MissingField
	}
	return p.pos.At(code, "%s: %s", p.src, msg)
}

// resultError is a VX5004 for a result of the wrong type.
func (p *Program) resultError(want string, v ref.Val) *diag.Error {
	return p.pos.At(diag.ResultType, "%s: must return %s, got %s", p.src, want, v.Type().TypeName())
}

// Bool evaluates an expression that must return a bool (VX5004 otherwise).
//
// A comparison of top-level event fields with literals (event.type ==
// "order.created" && event.total >= 100) is evaluated without CEL when act
// is JSONFields and the fields are there with the compared types.
func (p *Program) Bool(act interpreter.Activation) (bool, error) {
	if p.fast != nil {
		if jf, ok := act.(JSONFields); ok {
			if b, ok := p.fast.eval(jf); ok {
				return b, nil
			}
		}
	}
	v, err := p.Eval(act)
	if err != nil {
		return false, err
	}
	b, ok := v.(types.Bool)
	if !ok {
		return false, p.resultError("bool", v)
	}
	return bool(b), nil
}

// Value evaluates the expression and returns its result as a JSON-compatible
// Go value (nil, bool, int64, uint64, float64, string, []byte,
// map[string]any, []any); timestamps become RFC 3339 strings and durations
// Go duration strings.
func (p *Program) Value(act interpreter.Activation) (any, error) {
	v, err := p.Eval(act)
	if err != nil {
		return nil, err
	}
	out, err := ToJSON(v)
	if err != nil {
		return nil, p.pos.At(diag.ResultType, "%s: %v", p.src, err)
	}
	return out, nil
}

// String evaluates an expression whose result is used as text (a key or a
// header): strings and bytes as they are, numbers and bools formatted,
// anything else VX5004.
//
// An expression that is just event.<field> reads a string, number or bool
// field in place when act is JSONFields, with the same result as CEL.
func (p *Program) String(act interpreter.Activation) (string, error) {
	if v, ok := p.jsonField(act); ok {
		switch v.Kind {
		case jsonval.KindString:
			return v.Str(), nil
		case jsonval.KindNumber:
			return strconv.FormatFloat(v.Float(), 'g', -1, 64), nil
		case jsonval.KindTrue, jsonval.KindFalse:
			return strconv.FormatBool(v.Kind == jsonval.KindTrue), nil
		}
	}
	v, err := p.Eval(act)
	if err != nil {
		return "", err
	}
	switch v := v.(type) {
	case types.String:
		return string(v), nil
	case types.Bytes:
		return string(v), nil
	case types.Int:
		return strconv.FormatInt(int64(v), 10), nil
	case types.Uint:
		return strconv.FormatUint(uint64(v), 10), nil
	case types.Double:
		return strconv.FormatFloat(float64(v), 'g', -1, 64), nil
	case types.Bool:
		return strconv.FormatBool(bool(v)), nil
	case types.Timestamp:
		return v.Time.UTC().Format(time.RFC3339Nano), nil
	}
	return "", p.resultError("a string", v)
}

// AppendString appends String's result to dst; a string field read in
// place is copied once, with no string in between.
func (p *Program) AppendString(dst []byte, act interpreter.Activation) ([]byte, error) {
	if v, ok := p.jsonField(act); ok && v.Kind == jsonval.KindString {
		return v.AppendStr(dst), nil
	}
	s, err := p.String(act)
	return append(dst, s...), err
}

// Float evaluates an expression that must return a finite number (VX5004
// otherwise). Like String, it reads a number field in place.
func (p *Program) Float(act interpreter.Activation) (float64, error) {
	var f float64
	if v, ok := p.jsonField(act); ok && v.Kind == jsonval.KindNumber {
		f = v.Float()
	} else {
		v, err := p.Eval(act)
		if err != nil {
			return 0, err
		}
		switch v := v.(type) {
		case types.Double:
			f = float64(v)
		case types.Int:
			f = float64(v)
		case types.Uint:
			f = float64(v)
		default:
			return 0, p.resultError("a number", v)
		}
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, p.pos.At(diag.ResultType, "%s: %v is not a number", p.src, f)
	}
	return f, nil
}

// jsonField returns the field an event.<field> expression reads, when act
// can give it in place.
func (p *Program) jsonField(act interpreter.Activation) (jsonval.Value, bool) {
	if p.field == "" {
		return jsonval.Value{}, false
	}
	jf, ok := act.(JSONFields)
	if !ok {
		return jsonval.Value{}, false
	}
	return jf.JSONField(p.field)
}

// ToJSON converts a CEL value to a JSON-compatible Go value (see
// Program.Value). Maps and lists are copied, never shared with the input.
func ToJSON(v ref.Val) (any, error) {
	switch v := v.(type) {
	case types.Null:
		return nil, nil
	case types.Bool:
		return bool(v), nil
	case types.Int:
		return int64(v), nil
	case types.Uint:
		return uint64(v), nil
	case types.Double:
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%v is not a JSON number", f)
		}
		return f, nil
	case types.String:
		return string(v), nil
	case types.Bytes:
		return []byte(v), nil
	case types.Timestamp:
		return v.Time.UTC().Format(time.RFC3339Nano), nil
	case types.Duration:
		return v.Duration.String(), nil
	case traits.Mapper:
		m := make(map[string]any)
		for it := v.Iterator(); it.HasNext() == types.True; {
			k := it.Next()
			ks, ok := k.(types.String)
			if !ok {
				return nil, fmt.Errorf("map key %v is not a string", k)
			}
			val, err := ToJSON(v.Get(k))
			if err != nil {
				return nil, err
			}
			m[string(ks)] = val
		}
		return m, nil
	case traits.Lister:
		n, _ := v.Size().(types.Int)
		l := make([]any, 0, int(n))
		for it := v.Iterator(); it.HasNext() == types.True; {
			val, err := ToJSON(it.Next())
			if err != nil {
				return nil, err
			}
			l = append(l, val)
		}
		return l, nil
	case *types.Err:
		return nil, v
	}
	return nil, fmt.Errorf("a %s value has no JSON form", v.Type().TypeName())
}
