package expr

import (
	"errors"
	"testing"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"

	"github.com/veltrix/veltrix/pkg/diag"
)

// act is a test activation: the variables from a map, now() from a fixed time.
func act(t *testing.T, event map[string]any, now time.Time) interpreter.Activation {
	t.Helper()
	a, err := cel.FunctionVars(map[string]any{
		VarEvent:     event,
		VarKey:       "k-1",
		VarHeaders:   map[string]string{"source": "web"},
		VarTimestamp: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}, map[string]cel.LateBoundFunction{
		FuncNow: func(string, ...ref.Val) ref.Val { return types.Timestamp{Time: now} },
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustEnv(t *testing.T, params ...Param) *Env {
	t.Helper()
	env, err := NewEnv(params...)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestCompileErrors(t *testing.T) {
	env := mustEnv(t,
		Param{Name: "threshold", Type: "number", Value: 5000.0},
		Param{Name: "limit", Type: "int", Value: int64(3)},
	)
	at := diag.Pos{File: "rules.yaml", Line: 10, Column: 13, Path: "rules[0].steps[0].filter"}
	tests := []struct {
		name     string
		src      string
		code     diag.Code
		line     int
		col      int
		contains string
	}{
		{"syntax: dangling operator", "event.total >", diag.ExprSyntax, 10, 13 + 13, "syntax error"},
		{"syntax: second line", "event.total > 1 &&\n  )", diag.ExprSyntax, 11, 13 + 2, "syntax error"},
		{"type: string vs number param", `"a" == params.threshold`, diag.ExprType, 10, 13 + 4, "no matching overload"},
		{"type: double plus int", "params.threshold + 1 > 2.0", diag.ExprType, 10, 13 + 17, "no matching overload"},
		{"type: undeclared param", "event.total > params.nope", diag.ExprType, 10, 13 + 14, "undeclared reference"},
		{"type: unknown variable", "order.total > 1", diag.ExprType, 10, 13, "undeclared reference"},
		{"type: headers are strings", "headers.source > 1", diag.ExprType, 10, 13 + 15, "no matching overload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := env.Compile(tt.src, at)
			if err == nil {
				t.Fatalf("Compile(%q) = %v, want error", tt.src, p)
			}
			if err.Code != tt.code || err.Line != tt.line || err.Column != tt.col || err.File != "rules.yaml" || err.Path != at.Path {
				t.Errorf("got %s at %s:%d:%d %s, want %s at rules.yaml:%d:%d %s\n%v", err.Code, err.File, err.Line, err.Column, err.Path, tt.code, tt.line, tt.col, at.Path, err)
			}
			if !contains(err.Message, tt.contains) {
				t.Errorf("message %q does not contain %q", err.Message, tt.contains)
			}
		})
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || len(s) >= len(sub) && (s == sub || indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestEvalBool(t *testing.T) {
	env := mustEnv(t,
		Param{Name: "threshold", Type: "number", Value: 1000.0},
		Param{Name: "n", Type: "int", Value: int64(2)},
		Param{Name: "name", Type: "string", Value: "web"},
		Param{Name: "on", Type: "bool", Value: true},
		Param{Name: "window", Type: "duration", Value: 90 * time.Second},
		Param{Name: "kinds", Type: "list", Value: []any{"a", "b"}},
	)
	now := time.Date(2026, 1, 2, 4, 0, 0, 0, time.UTC)
	event := map[string]any{"total": 1500.0, "count": 3.0, "type": "a", "customer": map[string]any{"tier": "gold"}}
	tests := []struct {
		src  string
		want bool
	}{
		{"event.total > 1000", true}, // double vs int literal
		{"event.total >= params.threshold", true},
		{"event.count == 3", true},        // cross-type equality
		{"event.count < params.n", false}, // double vs int param
		{"params.n * 2 == 4", true},       // int param is an int
		{"headers.source == params.name", true},
		{"params.on && key == 'k-1'", true},
		{"params.window > duration('1m')", true},
		{"event.type in params.kinds", true},
		{"event.customer.tier == 'gold'", true},
		{"timestamp < now()", true},
		{"now() - timestamp > params.window", true},
		{"has(event.missing)", false},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			p, derr := env.Compile(tt.src, diag.Pos{})
			if derr != nil {
				t.Fatal(derr)
			}
			got, err := p.Bool(act(t, event, now))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("%s = %v, want %v", tt.src, got, tt.want)
			}
		})
	}
}

func TestEvalErrors(t *testing.T) {
	env := mustEnv(t)
	event := map[string]any{"total": 10.0, "name": "x"}
	tests := []struct {
		src  string
		bool bool // evaluate with Bool
		code diag.Code
	}{
		{"event.missing > 1", true, diag.MissingField},
		{"event.customer.tier", false, diag.MissingField},
		{"event.total / 0.0 > 1.0 && 1 / 0 == 1", true, diag.EvalError},
		{"event.name + 1", false, diag.EvalError},
		{"event.total", true, diag.ResultType},
		{"event.name", true, diag.ResultType},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			p, derr := env.Compile(tt.src, diag.Pos{File: "f.yaml", Line: 3, Column: 5, Path: "p"})
			if derr != nil {
				t.Fatal(derr)
			}
			var err error
			if tt.bool {
				_, err = p.Bool(act(t, event, time.Now()))
			} else {
				_, err = p.Value(act(t, event, time.Now()))
			}
			var d *diag.Error
			if !errors.As(err, &d) {
				t.Fatalf("error %v is not a *diag.Error", err)
			}
			if d.Code != tt.code || d.Line != 3 || d.Path != "p" {
				t.Errorf("got %s at line %d path %q, want %s at line 3 path p: %v", d.Code, d.Line, d.Path, tt.code, d)
			}
		})
	}
}

func TestValue(t *testing.T) {
	env := mustEnv(t)
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	event := map[string]any{"items": []any{1.0, "b"}, "n": 2.0}
	tests := []struct {
		src  string
		want any
	}{
		{`"x"`, "x"},
		{"1 + 2", int64(3)},
		{"event.n * 1.5", 3.0},
		{"now()", "2026-03-04T05:06:07Z"},
		{"null", nil},
		{"true", true},
		{"duration('90s')", "1m30s"},
		{`{"a": event.n, "b": [1, now()]}`, map[string]any{"a": 2.0, "b": []any{int64(1), "2026-03-04T05:06:07Z"}}},
		{"event.items", []any{1.0, "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			p, derr := env.Compile(tt.src, diag.Pos{})
			if derr != nil {
				t.Fatal(derr)
			}
			got, err := p.Value(act(t, event, now))
			if err != nil {
				t.Fatal(err)
			}
			if !equal(got, tt.want) {
				t.Errorf("%s = %#v, want %#v", tt.src, got, tt.want)
			}
		})
	}
}

func equal(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok || len(a) != len(bm) {
			return false
		}
		for k, v := range a {
			if !equal(v, bm[k]) {
				return false
			}
		}
		return true
	case []any:
		bl, ok := b.([]any)
		if !ok || len(a) != len(bl) {
			return false
		}
		for i := range a {
			if !equal(a[i], bl[i]) {
				return false
			}
		}
		return true
	}
	return a == b
}

func TestString(t *testing.T) {
	env := mustEnv(t)
	for src, want := range map[string]string{`"abc"`: "abc", "42": "42", "1.5": "1.5", "true": "true", "event.id": "o-1"} {
		p, derr := env.Compile(src, diag.Pos{})
		if derr != nil {
			t.Fatal(derr)
		}
		got, err := p.String(act(t, map[string]any{"id": "o-1"}, time.Now()))
		if err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", src, got, err, want)
		}
	}
	p, _ := env.Compile("[1]", diag.Pos{})
	if _, err := p.String(act(t, nil, time.Now())); !errors.Is(err, &diag.Error{Code: diag.ResultType}) {
		t.Errorf("String of a list: %v, want %s", err, diag.ResultType)
	}
}

func TestNewEnvRejectsMismatchedParam(t *testing.T) {
	for _, p := range []Param{
		{Name: "x", Type: "number", Value: "5k"},
		{Name: "x", Type: "int", Value: 1.5},
		{Name: "x", Type: "colour", Value: "red"},
	} {
		if _, err := NewEnv(p); err == nil {
			t.Errorf("NewEnv(%+v) = nil error", p)
		}
	}
}
