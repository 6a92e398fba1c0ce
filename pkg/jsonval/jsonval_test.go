package jsonval

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
)

// stdDecode is what the package must agree with: encoding/json into a map.
func stdDecode(data []byte) (map[string]any, error) {
	var m map[string]any
	err := json.Unmarshal(data, &m)
	if err == nil && m == nil {
		err = errNull
	}
	return m, err
}

var errNull = &SyntaxError{msg: "null"}

func TestParse(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
		errHas   string
	}{
		{"empty object", `{}`, true, ""},
		{"spaces", " \t\r\n{ \"a\" : 1 , \"b\":[ ] }\n", true, ""},
		{"nested", `{"a":{"b":{"c":[1,{"d":null}]}},"e":true,"f":false}`, true, ""},
		{"escapes", `{"s":"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00"}`, true, ""},
		{"unicode raw", `{"s":"héllo 世界 😀"}`, true, ""},
		{"invalid utf8 accepted", "{\"s\":\"a\xffb\"}", true, ""},
		{"lone surrogate", `{"s":"\ud800x"}`, true, ""},
		{"numbers", `{"a":0,"b":-0,"c":1.5,"d":-1e10,"e":1E+2,"f":2e-3,"g":12345678901234567890}`, true, ""},
		{"empty input", ``, false, "unexpected end"},
		{"only spaces", `   `, false, "unexpected end"},
		{"null", `null`, false, "not an object"},
		{"array", `[1,2]`, false, "not an object"},
		{"string", `"x"`, false, "not an object"},
		{"number", `5`, false, "not an object"},
		{"truncated", `{"total": 5`, false, "unexpected end"},
		{"trailing", `{} x`, false, "after top-level value"},
		{"two objects", `{}{}`, false, "after top-level value"},
		{"trailing comma", `{"a":1,}`, false, "object key"},
		{"missing colon", `{"a" 1}`, false, "after object key"},
		{"single quotes", `{'a':1}`, false, "object key"},
		{"bad escape", `{"a":"\x"}`, false, "escape"},
		{"bad unicode escape", `{"a":"\u12g4"}`, false, "hexadecimal"},
		{"control char", "{\"a\":\"x\ny\"}", false, "in string literal"},
		{"leading zero", `{"a":01}`, false, "after object key:value pair"},
		{"bare minus", `{"a":-}`, false, "numeric literal"},
		{"dot without digits", `{"a":1.}`, false, "decimal point"},
		{"exponent without digits", `{"a":1e}`, false, "exponent"},
		{"plus sign", `{"a":+1}`, false, "beginning of value"},
		{"number out of range", `{"a":1e400}`, false, "float64"},
		{"huge integer", `{"a":1` + strings.Repeat("0", 400) + `}`, false, "float64"},
		{"tiny number is zero", `{"a":1e-400}`, true, ""},
		{"bad literal", `{"a":tru}`, false, "literal true"},
		{"NaN", `{"a":NaN}`, false, "beginning of value"},
		{"unclosed array", `{"a":[1,2}`, false, "array element"},
		{"bad array inside", `[1,}`, false, "beginning of value"},
		{"deep", strings.Repeat(`{"a":`, MaxDepth) + "1" + strings.Repeat("}", MaxDepth), true, ""},
		{"too deep", strings.Repeat(`[`, MaxDepth) + `{}` + strings.Repeat("]", MaxDepth), false, "max depth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o Object
			err := o.Parse([]byte(tt.in))
			_, stdErr := stdDecode([]byte(tt.in))
			if (err == nil) != (stdErr == nil) {
				t.Fatalf("Parse error %v, encoding/json error %v: they must agree", err, stdErr)
			}
			if (err == nil) != tt.ok {
				t.Fatalf("Parse error %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("error %q does not contain %q", err, tt.errHas)
			}
			if err == nil {
				checkSame(t, []byte(tt.in), &o)
			}
		})
	}
}

// checkSame checks that every way of reading o gives what encoding/json
// gives.
func checkSame(t *testing.T, data []byte, o *Object) {
	t.Helper()
	want, err := stdDecode(data)
	if err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	if got := o.Map(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Map() = %#v, want %#v", got, want)
	}
	for k, w := range want {
		v, ok := o.Get(k)
		if !ok {
			t.Fatalf("Get(%q) not found", k)
		}
		// Names the object lacks are not found (whether or not their
		// keyBit is set).
		for _, absent := range []string{k + "_", "_" + k, k[:len(k)/2]} {
			if _, in := want[absent]; !in {
				if _, found := o.Get(absent); found {
					t.Fatalf("Get(%q) found a field the object lacks", absent)
				}
			}
		}
		if got := v.Decode(); !reflect.DeepEqual(got, w) {
			t.Errorf("Get(%q).Decode() = %#v, want %#v", k, got, w)
		}
		if s, isStr := w.(string); isStr && v.Str() != s {
			t.Errorf("Get(%q).Str() = %q, want %q", k, v.Str(), s)
		}
		if f, isNum := w.(float64); isNum && v.Float() != f {
			t.Errorf("Get(%q).Float() = %v, want %v", k, v.Float(), f)
		}
		if _, isMap := w.(map[string]any); isMap {
			sub, err := v.Object()
			if err != nil {
				t.Fatalf("Get(%q).Object(): %v", k, err)
			}
			if got := sub.Map(); !reflect.DeepEqual(got, w) {
				t.Errorf("Get(%q).Object().Map() = %#v, want %#v", k, got, w)
			}
		}
	}
}

func TestGet(t *testing.T) {
	var o Object
	in := `{"type":"order.created","a":1,"a":2,"t\u0079pe2":"x","nested":{"b":"c"},"list":[1,"2"],"n":null}`
	if err := o.Parse([]byte(in)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key   string
		found bool
		kind  Kind
		want  any
	}{
		{"type", true, KindString, "order.created"},
		{"a", true, KindNumber, 2.0}, // the last repeat wins
		{"type2", true, KindString, "x"},
		{"nested", true, KindObject, map[string]any{"b": "c"}},
		{"list", true, KindArray, []any{1.0, "2"}},
		{"n", true, KindNull, nil},
		{"missing", false, KindInvalid, nil},
		{"t\\u0079pe2", false, KindInvalid, nil},
	}
	for _, tt := range tests {
		v, ok := o.Get(tt.key)
		if ok != tt.found || v.Kind != tt.kind || !reflect.DeepEqual(v.Decode(), tt.want) {
			t.Errorf("Get(%q) = %v %v %#v, want %v %v %#v", tt.key, ok, v.Kind, v.Decode(), tt.found, tt.kind, tt.want)
		}
	}
	if o.Len() != 7 {
		t.Errorf("Len() = %d, want 7", o.Len())
	}
	if k, v := o.Field(3); k != "type2" || string(v.Raw) != `"x"` {
		t.Errorf("Field(3) = %q %s", k, v.Raw)
	}
	if k, v, ok := o.PlainField(0); !ok || string(k) != "type" || v.Str() != "order.created" {
		t.Errorf("PlainField(0) = %q %s %v", k, v.Raw, ok)
	}
	if k, _, ok := o.PlainField(3); ok {
		t.Errorf("PlainField(3) = %q, ok for an escaped key", k)
	}
	if _, err := (Value{Kind: KindString, Raw: []byte(`"x"`)}).Object(); err == nil {
		t.Error("Object() of a string succeeded")
	}
}

// TestSetValid checks that an object set without reading it reads as the
// parsed one does, through each method that reads fields, and that its
// clone is indexed on its own.
func TestSetValid(t *testing.T) {
	in := []byte(`{"type":"order.created","a":1,"a":2,"nested":{"b":"c"}}`)
	var parsed Object
	if err := parsed.Parse(in); err != nil {
		t.Fatal(err)
	}
	reads := map[string]func(o *Object) any{
		"Get":           func(o *Object) any { v, ok := o.Get("a"); return []any{string(v.Raw), ok} },
		"Len":           func(o *Object) any { return o.Len() },
		"Field":         func(o *Object) any { k, v := o.Field(3); return k + string(v.Raw) },
		"PlainField":    func(o *Object) any { k, v, ok := o.PlainField(0); return []any{string(k), string(v.Raw), ok} },
		"Map":           func(o *Object) any { return o.Map() },
		"AppendPatched": func(o *Object) any { return string(o.AppendPatched(nil, []Edit{{"a", []byte("3")}})) },
		"Clone":         func(o *Object) any { c := o.Clone(); return c.Map() },
	}
	for name, read := range reads {
		var lazy Object
		lazy.SetValid(in)
		if string(lazy.Raw()) != string(in) {
			t.Fatalf("%s: Raw() = %s", name, lazy.Raw())
		}
		if got, want := read(&lazy), read(&parsed); !reflect.DeepEqual(got, want) {
			t.Errorf("%s of a SetValid object = %v, parsed %v", name, got, want)
		}
	}
	// A clone taken before any read is indexed on its own: a later Parse of
	// the original does not change it.
	var o Object
	o.SetValid(in)
	c := o.Clone()
	if err := o.Parse([]byte(`{"z":0}`)); err != nil {
		t.Fatal(err)
	}
	if v, ok := c.Get("type"); !ok || v.Str() != "order.created" {
		t.Errorf("clone Get(type) = %s %v", v.Raw, ok)
	}
	var bad Object
	bad.SetValid([]byte(`{"a":`))
	defer func() {
		if recover() == nil {
			t.Error("reading an invalid SetValid object did not panic")
		}
	}()
	bad.Len()
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\s`, "<a href='x'>&</a>", "\x00\x1f\n\t\r\b\f", "é世😀", "bad\xff\xfeutf8", "\u2028\u2029", "\x7f"} {
		want, _ := json.Marshal(s)
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Errorf("AppendString(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestAppendFloat(t *testing.T) {
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1.5, 129.5, 1e20, 1e21, 1e-6, 1e-7, 123456789.123, math.MaxFloat64, math.SmallestNonzeroFloat64, 5e-324, 1.5e-9} {
		want, _ := json.Marshal(f)
		if got := AppendFloat(nil, f); string(got) != string(want) {
			t.Errorf("AppendFloat(%v) = %s, want %s", f, got, want)
		}
	}
}

func TestAppendPatched(t *testing.T) {
	q := func(s string) []byte { return []byte(s) }
	tests := []struct {
		name, in string
		edits    []Edit
		want     string
	}{
		{"no edits keeps bytes", ` { "a" : 1, "b":{"c" : 2} } `, nil, `{ "a" : 1, "b":{"c" : 2} }`},
		{"adds keep bytes", `{ "a" : 1 }`, []Edit{{"b", q(`2`)}, {"c", q(`3`)}}, `{ "a" : 1 ,"b":2,"c":3}`},
		{"replace drops spaces", `{ "a" : 1 , "b" : 2 }`, []Edit{{"a", q(`3`)}}, `{"a":3,"b":2}`},
		{"add", `{"a":1}`, []Edit{{"b", q(`"x"`)}}, `{"a":1,"b":"x"}`},
		{"add to empty", `{}`, []Edit{{"b", q(`true`)}}, `{"b":true}`},
		{"replace in place", `{"a":1,"b":2,"c":3}`, []Edit{{"b", q(`[1]`)}}, `{"a":1,"b":[1],"c":3}`},
		{"remove", `{"a":1,"b":2,"c":3}`, []Edit{{"b", nil}}, `{"a":1,"c":3}`},
		{"remove first", `{"a":1,"b":2}`, []Edit{{"a", nil}}, `{"b":2}`},
		{"remove missing", `{"a":1}`, []Edit{{"z", nil}}, `{"a":1}`},
		{"last edit wins", `{"a":1}`, []Edit{{"a", q(`2`)}, {"b", q(`3`)}, {"a", nil}, {"b", q(`4`)}}, `{"b":4}`},
		{"set after remove", `{"a":1}`, []Edit{{"a", nil}, {"a", q(`5`)}}, `{"a":5}`},
		{"repeated key replaced once", `{"a":1,"b":0,"a":2}`, []Edit{{"a", q(`9`)}}, `{"a":9,"b":0}`},
		{"escaped key matches", `{"t\u0079pe":"x"}`, []Edit{{"type", q(`"y"`)}}, `{"t\u0079pe":"y"}`},
		{"new key is escaped", `{}`, []Edit{{"a<b", q(`1`)}}, `{"a\u003cb":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o Object
			if err := o.Parse([]byte(tt.in)); err != nil {
				t.Fatal(err)
			}
			got := o.AppendPatched(nil, tt.edits)
			if string(got) != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			if len(got) > o.PatchedLen(tt.edits) {
				t.Errorf("PatchedLen %d < %d", o.PatchedLen(tt.edits), len(got))
			}
			if err := Valid(got); err != nil {
				t.Errorf("output is not valid JSON: %v", err)
			}
		})
	}
}

func TestKindString(t *testing.T) {
	if KindObject.String() != "object" || Kind(42).String() != "kind(42)" {
		t.Errorf("%s %s", KindObject, Kind(42))
	}
}

// FuzzParse compares Parse, Get and Map with encoding/json on the same
// bytes: the same documents are accepted and they decode to the same values.
// Run with go test ./pkg/jsonval -fuzz FuzzParse.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1}`, `{"id":"o-1","type":"order.created","total":129.5,"items":[{"sku":"s","qty":2}],"customer":{"id":"c"}}`,
		`{"s":"a\"b\\c\u00e9\ud83d\ude00\ud800"}`, "{\"s\":\"\xff\"}", `{"a":1,"a":2}`, `{"a":1e400}`, `{"a":-0.0e-5}`,
		`[1]`, `null`, `{"a":[[[]]],"b":{"c":{}}}`, `{"a" : tru}`, ` {"x":"y"} `, `{"k\u0000":"\t"}`,
		"{\"k\xe9\":1}", "{\"a\":[\"\xe2\x82\"]}", "{\"a\":{\"b\":\"\xc3\xa9\"},\"c\":\"\x80\"}", " {\"\\n\\u00e9\":\"\xf0\x9f\x98\x80\"} ",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var o Object
		err := o.Parse(data)
		want, stdErr := stdDecode(data)
		if (err == nil) != (stdErr == nil) {
			t.Fatalf("%q: Parse error %v, encoding/json error %v", data, err, stdErr)
		}
		if !json.Valid(data) && Valid(data) == nil {
			t.Fatalf("%q: Valid accepts what json.Valid rejects", data)
		}
		if err != nil {
			return
		}
		checkSame(t, data, &o)
		// The UTF-8 check of the indexed object reads only some of its
		// bytes and finds what a check of all of them finds.
		if got, want := o.InvalidUTF8(), InvalidUTF8At(data); got != want {
			t.Fatalf("%q: InvalidUTF8 = %d, want %d", data, got, want)
		}
		// Re-encoding every value as given reproduces the object.
		edits := make([]Edit, 0, len(want))
		for k, v := range want {
			b, _ := json.Marshal(v)
			edits = append(edits, Edit{Key: k, Value: b})
		}
		edits = append(edits, Edit{Key: "added", Value: []byte(`"x"`)})
		out := o.AppendPatched(nil, edits)
		got, err := stdDecode(out)
		if err != nil {
			t.Fatalf("patched %q is invalid: %v", out, err)
		}
		want["added"] = "x"
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("patched %q = %#v, want %#v", out, got, want)
		}
	})
}

// FuzzAppendString compares AppendString with json.Marshal.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a<b>&c", "\x00é\xff\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Fatalf("AppendString(%q) = %s, want %s", s, got, want)
		}
	})
}

func BenchmarkParseGet(b *testing.B) {
	data := []byte(`{"id":"o-123456","type":"order.created","customer_id":"c-4242","total":129.5,"currency":"EUR","items":[{"sku":"sku-1","qty":2,"price":40.25},{"sku":"sku-9","qty":1,"price":49}],"created_at":"2026-01-02T03:04:05Z"}`)
	var o Object
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := o.Parse(data); err != nil {
			b.Fatal(err)
		}
		if v, _ := o.Get("total"); v.Float() != 129.5 {
			b.Fatal(v)
		}
	}
}
