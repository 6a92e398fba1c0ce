package expr

import (
	"testing"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"

	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/pkg/jsonval"
)

// jsonAct is an activation over a parsed object that is also JSONFields.
type jsonAct struct {
	obj  *jsonval.Object
	view *LazyMap
}

func (a *jsonAct) ResolveName(name string) (any, bool) {
	if name == VarEvent {
		return a.view, true
	}
	return nil, false
}
func (a *jsonAct) Parent() interpreter.Activation              { return nil }
func (a *jsonAct) JSONField(name string) (jsonval.Value, bool) { return a.obj.Get(name) }

// newJSONAct parses doc into an activation that reads it lazily, as an
// event's is read.
func newJSONAct(t *testing.T, doc string) *jsonAct {
	t.Helper()
	var obj jsonval.Object
	if err := obj.Parse([]byte(doc)); err != nil {
		t.Fatal(err)
	}
	o := &jsonObject{obj: &obj}
	o.LazyMap.f = o
	return &jsonAct{obj: &obj, view: &o.LazyMap}
}

// celOnly hides JSONFields, so Bool goes through CEL.
type celOnly struct{ a *jsonAct }

func (c celOnly) ResolveName(name string) (any, bool) { return c.a.ResolveName(name) }
func (c celOnly) Parent() interpreter.Activation      { return nil }

// TestFastBool compares Bool's evaluation without CEL with CEL's, on
// objects where the fast path applies and where it must step aside.
func TestFastBool(t *testing.T) {
	exprs := []struct {
		src  string
		fast bool // the expression has a fast form
	}{
		{`event.type == "order.created"`, true},
		{`"order.created" == event.type`, true},
		{`event.type != "x" && event.total >= 100.0`, true},
		{`event.total > 100 || event.total < -1`, true},
		{`10 < event.total`, true},
		{`event.total <= 129.5 && event.total >= 129.5 && event.total == 129.5`, true},
		{`!(event.paid) && event.note == null`, true},
		{`event.paid == false || event.paid != true`, true},
		{`event.type < "p" && event.type > "a"`, true},
		{`event.esc == "é"`, true},
		{`event.big == 9007199254740993`, false},
		{`event.type.size() > 1`, false},
		{`has(event.type)`, false},
		{`event.customer.id == "c"`, false},
	}
	objects := []string{
		`{"type":"order.created","total":129.5,"paid":false,"note":null,"esc":"\u00e9","big":9007199254740993,"customer":{"id":"c"}}`,
		`{"type":"a","total":-5,"paid":true,"note":"n","esc":"e","big":1,"customer":{"id":"d"}}`,
		`{"type":1,"total":"many","paid":"no","note":0,"esc":null,"big":"x","customer":null}`,
		`{"other":1}`,
	}
	env := mustEnv(t)
	for _, e := range exprs {
		p, derr := env.Compile(e.src, diag.Pos{})
		if derr != nil {
			t.Fatal(derr)
		}
		if (p.fast != nil) != e.fast {
			t.Errorf("%s: fast form %v, want %v", e.src, p.fast != nil, e.fast)
		}
		for _, o := range objects {
			a := newJSONAct(t, o)
			if _, decided := p.fast.evalOrNil(a); e.fast && o == objects[0] && !decided {
				t.Errorf("%s on %s: the fast form did not decide", e.src, o)
			}
			got, gotErr := p.Bool(a)
			want, wantErr := p.Bool(celOnly{a})
			if got != want || (gotErr == nil) != (wantErr == nil) {
				t.Errorf("%s on %s: fast %v, %v; CEL %v, %v", e.src, o, got, gotErr, want, wantErr)
				continue
			}
			if gotErr != nil && gotErr.(*diag.Error).Code != wantErr.(*diag.Error).Code {
				t.Errorf("%s on %s: fast error %v; CEL error %v", e.src, o, gotErr, wantErr)
			}
		}
	}
}

// evalOrNil is eval on a possibly nil expression.
func (x *fastExpr) evalOrNil(a JSONFields) (bool, bool) {
	if x == nil {
		return false, false
	}
	return x.eval(a)
}

// TestFieldStringAndFloat compares String and Float of event.<field>, read
// in place, with CEL's evaluation of the same expression, on every JSON
// type the field can have.
func TestFieldStringAndFloat(t *testing.T) {
	obj := `{"s":"c-42","esc":"a\"b\u00e9","i":42,"f":129.5,"e":1e3,"neg":-0.25,"big":12345678901234567890,` +
		`"t":true,"n":null,"o":{"id":1},"l":[1]}`
	fields := []string{"s", "esc", "i", "f", "e", "neg", "big", "t", "n", "o", "l", "missing"}
	env := mustEnv(t)
	a := newJSONAct(t, obj)
	for _, f := range fields {
		p, derr := env.Compile("event."+f, diag.Pos{})
		if derr != nil {
			t.Fatal(derr)
		}
		if p.field != f {
			t.Fatalf("event.%s: field %q", f, p.field)
		}
		gotS, gotErr := p.String(a)
		wantS, wantErr := p.String(celOnly{a})
		if gotS != wantS || !sameCode(gotErr, wantErr) {
			t.Errorf("String(event.%s): in place %q, %v; CEL %q, %v", f, gotS, gotErr, wantS, wantErr)
		}
		gotB, gotErr := p.AppendString([]byte("k:"), a)
		if string(gotB) != "k:"+wantS || !sameCode(gotErr, wantErr) {
			t.Errorf("AppendString(event.%s): in place %q, %v; CEL %q, %v", f, gotB, gotErr, wantS, wantErr)
		}
		gotF, gotErr := p.Float(a)
		wantF, wantErr := p.Float(celOnly{a})
		if gotF != wantF || !sameCode(gotErr, wantErr) {
			t.Errorf("Float(event.%s): in place %v, %v; CEL %v, %v", f, gotF, gotErr, wantF, wantErr)
		}
	}
	// Only a bare event field is read in place.
	for _, src := range []string{`event.o.id`, `event.s + "x"`, `key`} {
		p, derr := env.Compile(src, diag.Pos{})
		if derr != nil {
			t.Fatal(derr)
		}
		if p.field != "" {
			t.Errorf("%s: read in place as %q", src, p.field)
		}
	}
}

func sameCode(a, b error) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.(*diag.Error).Code == b.(*diag.Error).Code
}

// TestLiteralIsConstant checks that a literal expression gives CEL's value
// and JSON encoding without evaluating anything per event.
func TestLiteralIsConstant(t *testing.T) {
	env := mustEnv(t)
	for _, src := range []string{`"yes"`, `42`, `-1.5`, `true`, `null`, `b"x"`, `"é\n\"q\""`, `7u`} {
		p, derr := env.Compile(src, diag.Pos{})
		if derr != nil {
			t.Fatal(derr)
		}
		if p.lit == nil {
			t.Errorf("%s: not a constant", src)
			continue
		}
		want, _, err := p.prg.Eval(interpreter.EmptyActivation())
		if err != nil {
			t.Fatal(err)
		}
		wantJSON, err := AppendJSON(nil, want)
		if err != nil {
			t.Fatal(err)
		}
		got, gotJSON, err := p.AppendJSON([]byte("prefix:"), nil)
		if err != nil || got.Equal(want) != types.True || string(gotJSON) != "prefix:"+string(wantJSON) {
			t.Errorf("%s: got %v %s, %v; want %v %s", src, got, gotJSON, err, want, wantJSON)
		}
	}
	for _, src := range []string{`event.x`, `"a" + "b"`, `[1]`} {
		p, derr := env.Compile(src, diag.Pos{})
		if derr != nil {
			t.Fatal(derr)
		}
		if p.lit != nil {
			t.Errorf("%s: taken as the constant %v", src, p.lit)
		}
	}
}
