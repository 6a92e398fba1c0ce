package processors

import (
	"time"

	"cel.dev/cel-go/common/functions"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"

	"github.com/veltrix/veltrix/pkg/expr"
)

// The Event is the activation of every expression: CEL resolves the few
// variable names it needs straight from the event, so evaluating an
// expression builds no map per event. While the value is read lazily, event
// is a map whose fields are decoded from Raw when selected; key and headers
// are converted only when an expression reads them.
var (
	_ interpreter.FunctionActivation = (*Event)(nil)
	_ expr.Fields                    = (*Event)(nil)
	_ expr.JSONFields                = (*Event)(nil)
)

// The built-in stateless steps read the event only through expressions and
// the Event's methods.
var (
	_ Lazy = (*filterStep)(nil)
	_ Lazy = (*setStep)(nil)
	_ Lazy = (*dropStep)(nil)
	_ Lazy = (*mapStep)(nil)
	_ Lazy = (*routeStep)(nil)
	_ Lazy = (*toStep)(nil)
	_ Lazy = (*logStep)(nil)
)

func (*filterStep) LazyValue() {}
func (*setStep) LazyValue()    {}
func (*dropStep) LazyValue()   {}
func (*mapStep) LazyValue()    {}
func (*routeStep) LazyValue()  {}
func (*toStep) LazyValue()     {}
func (*logStep) LazyValue()    {}

// ResolveName implements interpreter.Activation: event, key, headers and
// timestamp. Template params are constants of the compiled program and never
// reach the activation.
func (e *Event) ResolveName(name string) (any, bool) {
	switch name {
	case expr.VarEvent:
		switch {
		case e.Value != nil:
			return types.NewStringInterfaceMap(types.DefaultTypeAdapter, e.Value), true
		case e.obj.Raw() != nil:
			return &e.view, true
		}
		return types.NullValue, true
	case expr.VarKey:
		return types.String(e.Key), true
	case expr.VarHeaders:
		h := make(map[string]string, len(e.Headers))
		for _, kv := range e.Headers {
			h[kv.Key] = string(kv.Value)
		}
		return types.NewStringStringMap(types.DefaultTypeAdapter, h), true
	case expr.VarTimestamp:
		return types.Timestamp{Time: e.Timestamp}, true
	}
	return nil, false
}

// Parent implements interpreter.Activation; an event has none.
func (e *Event) Parent() interpreter.Activation { return nil }

// ResolveFunction implements interpreter.FunctionActivation: now() reads the
// event's Clock.
func (e *Event) ResolveFunction(name string) (functions.LateBoundOp, bool) {
	if name != expr.FuncNow {
		return nil, false
	}
	return e.now, true
}

func (e *Event) now(string, ...ref.Val) ref.Val {
	if e.Clock == nil {
		return types.Timestamp{Time: time.Now()}
	}
	return types.Timestamp{Time: e.Clock.Now()}
}
