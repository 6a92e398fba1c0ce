package jsonval

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Value is one JSON value inside a validated document: its bytes (a
// sub-slice of the document, never copied) and its kind. The zero Value is
// KindInvalid.
type Value struct {
	Raw   []byte
	Kind  Kind
	plain bool // a string whose bytes between the quotes are its value
}

// field is one indexed field: offsets into the object's bytes of the key
// (between the quotes, as written) and of the value.
type field struct {
	ks, ke, vs, ve     uint32
	kind               Kind
	keyPlain, valPlain bool
}

// Object is an indexed JSON object: its bytes and the place of each of its
// top-level fields. Parse fills it; after that it is read-only and may be
// copied and shared (copies share the index, until the next Parse).
type Object struct {
	raw    []byte
	fields []field
	lazy   bool // set by SetValid: raw is not indexed yet
	// mixed is false when raw is known to be ASCII: every key and string
	// value is plain and no array or object is inside.
	mixed bool
	// keys has the bit keyBit of every plain key set, and all bits when a
	// key is not plain: Get of a name whose bit is clear finds nothing
	// without reading the fields (a set step adding a field looks up
	// a name the event does not have).
	keys uint64
}

// keyBit is the bit of keys for a plain key of length n starting with the
// byte c.
func keyBit(n int, c byte) uint64 { return 1 << ((uint(n)*5 + uint(c)) & 63) }

// Parse validates data as a JSON object (see the package doc for exactly
// what is accepted) and indexes its top-level fields, reusing o's index
// storage. data is kept, not copied: it must not change while o is used. A
// document that is not an object, malformed or not, is a *SyntaxError.
func (o *Object) Parse(data []byte) error {
	o.raw, o.fields, o.lazy, o.mixed, o.keys = data, o.fields[:0], false, false, 0
	if cap(o.fields) == 0 {
		o.fields = make([]field, 0, 16)
	}
	i := skipSpace(data, 0)
	if i >= len(data) {
		o.raw = nil
		return eof(data)
	}
	if data[i] != '{' {
		o.raw = nil
		// Syntax errors come first, as with encoding/json.
		if err := Valid(data); err != nil {
			return err
		}
		_, k, _, _ := scanValue(data, i, 0)
		return errAt(i, "the value is a JSON %s, not an object", k)
	}
	end, err := scanObject(data, i, 1, o)
	if err == nil {
		if j := skipSpace(data, end); j < len(data) {
			err = errAt(j, "invalid character %s after top-level value", quoteChar(data[j]))
		}
	}
	if err != nil {
		o.raw, o.fields = nil, o.fields[:0]
	}
	return err
}

// SetValid sets the object to data without reading it: data must be a JSON
// object that Parse accepts, such as one this process encoded itself. It is
// indexed when a field is first read, so a document that is only passed on
// costs nothing. data is kept, not copied. Reading the fields of data that
// Parse rejects panics: that is a bug of the caller.
func (o *Object) SetValid(data []byte) {
	o.raw, o.fields, o.lazy = data, o.fields[:0], true
}

// index indexes an object set by SetValid.
func (o *Object) index() {
	if !o.lazy {
		return
	}
	if err := o.Parse(o.raw); err != nil {
		panic(fmt.Sprintf("jsonval: SetValid was given an invalid object: %v", err))
	}
}

// Clone returns a copy with its own index, unaffected by a later Parse of o.
func (o *Object) Clone() Object {
	if o.lazy {
		return Object{raw: o.raw, lazy: true}
	}
	return Object{raw: o.raw, fields: slices.Clone(o.fields), mixed: o.mixed, keys: o.keys}
}

// Raw returns the object's bytes (nil before a successful Parse).
func (o *Object) Raw() []byte { return o.raw }

// Len returns the number of fields, counting repeated keys each time.
func (o *Object) Len() int {
	o.index()
	return len(o.fields)
}

// Field returns the i-th field (0 <= i < Len) in written order.
func (o *Object) Field(i int) (key string, v Value) {
	o.index()
	return o.name(i), o.value(i)
}

// PlainField returns the i-th field with its key as written, without
// allocating; ok is false when the key has escapes (use Field then). key is
// part of the object's bytes: read it, do not keep it.
func (o *Object) PlainField(i int) (key []byte, v Value, ok bool) {
	o.index()
	return o.key(i), o.value(i), o.fields[i].keyPlain
}

func (o *Object) key(i int) []byte { return o.raw[o.fields[i].ks:o.fields[i].ke] }

func (o *Object) value(i int) Value {
	f := &o.fields[i]
	return Value{Raw: o.raw[f.vs:f.ve], Kind: f.kind, plain: f.valPlain}
}

func (o *Object) name(i int) string {
	if o.fields[i].keyPlain {
		return string(o.key(i))
	}
	return unquote(o.key(i))
}

// is reports whether the i-th field's key is name, without allocating for a
// plain key.
func (o *Object) is(i int, name string) bool {
	f := &o.fields[i]
	if f.keyPlain {
		return int(f.ke-f.ks) == len(name) && string(o.raw[f.ks:f.ke]) == name
	}
	return unquote(o.raw[f.ks:f.ke]) == name
}

// Get returns the value of the field name; of repeated keys the last wins,
// as with encoding/json.
func (o *Object) Get(name string) (Value, bool) {
	o.index()
	// is, written out: the call cost a third of a look-up. Most fields
	// differ from name in length, or else in their first byte: both are
	// ruled out before the bytes are compared.
	fields, raw := o.fields, o.raw
	if len(name) == 0 || len(name) > len(raw) {
		return o.getSlow(name)
	}
	n, c := uint32(len(name)), name[0]
	if o.keys&keyBit(len(name), c) == 0 {
		return Value{}, false
	}
	for i := len(fields) - 1; i >= 0; i-- {
		f := &fields[i]
		if !f.keyPlain {
			if unquote(raw[f.ks:f.ke]) != name {
				continue
			}
		} else if f.ke-f.ks != n || raw[f.ks] != c || string(raw[f.ks:f.ke]) != name {
			continue
		}
		return Value{Raw: raw[f.vs:f.ve], Kind: f.kind, plain: f.valPlain}, true
	}
	return Value{}, false
}

// getSlow is Get for an empty name, or one longer than the object.
func (o *Object) getSlow(name string) (Value, bool) {
	for i := len(o.fields) - 1; i >= 0; i-- {
		if o.is(i, name) {
			f := &o.fields[i]
			return Value{Raw: o.raw[f.vs:f.ve], Kind: f.kind, plain: f.valPlain}, true
		}
	}
	return Value{}, false
}

// InvalidUTF8 returns the offset of the first byte of the object that does
// not start a valid UTF-8 sequence, or -1 when the object is valid UTF-8.
// An object whose keys and string values are all plain, with no array or
// object inside, is ASCII: Parse has seen every byte, and this reads none.
func (o *Object) InvalidUTF8() int {
	o.index()
	if !o.mixed {
		return -1
	}
	return InvalidUTF8At(o.raw)
}

// InvalidUTF8At returns the offset of the first byte of b that does not
// start a valid UTF-8 sequence, or -1 when b is valid UTF-8.
func InvalidUTF8At(b []byte) int {
	if utf8.Valid(b) {
		return -1
	}
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}

// Map decodes the whole object as encoding/json would into a map[string]any.
func (o *Object) Map() map[string]any {
	o.index()
	m := make(map[string]any, len(o.fields))
	for i := range o.fields {
		m[o.name(i)] = o.value(i).Decode()
	}
	return m
}

// Object indexes a value of KindObject; any other kind is a *SyntaxError.
func (v Value) Object() (*Object, error) {
	o := &Object{}
	if v.Kind != KindObject {
		return o, errAt(0, "the value is a JSON %s, not an object", v.Kind)
	}
	return o, o.Parse(v.Raw)
}

// Plain reports whether the value is a string whose bytes between the
// quotes are its value (ASCII, no escapes).
func (v Value) Plain() bool { return v.Kind == KindString && v.plain }

// Str returns the value of a string (unescaped; invalid UTF-8 and lone
// surrogates become U+FFFD). It is "" for other kinds.
func (v Value) Str() string {
	if v.Kind != KindString {
		return ""
	}
	s := v.Raw[1 : len(v.Raw)-1]
	if v.plain {
		return string(s)
	}
	return unquote(s)
}

// AppendStr appends Str's result to dst, without an intermediate string
// for a string with no escapes.
func (v Value) AppendStr(dst []byte) []byte {
	if v.Kind == KindString && v.plain {
		return append(dst, v.Raw[1:len(v.Raw)-1]...)
	}
	return append(dst, v.Str()...)
}

// Float returns a number's value (0 for other kinds).
func (v Value) Float() float64 {
	if v.Kind != KindNumber {
		return 0
	}
	f, _ := strconv.ParseFloat(unsafeString(v.Raw), 64)
	return f
}

// Decode returns the value as encoding/json decodes it into an interface:
// nil, bool, float64, string, []any or map[string]any.
func (v Value) Decode() any {
	switch v.Kind {
	case KindTrue:
		return true
	case KindFalse:
		return false
	case KindNumber:
		return v.Float()
	case KindString:
		return v.Str()
	case KindArray, KindObject:
		x, _ := decode(v.Raw, 0)
		return x
	}
	return nil
}

// decode decodes the validated value at d[i] and returns it and its end.
func decode(d []byte, i int) (any, int) {
	switch d[i] {
	case '{':
		m := make(map[string]any)
		i = skipSpace(d, i+1)
		if d[i] == '}' {
			return m, i + 1
		}
		for {
			kend, plain, _ := scanString(d, i)
			var k string
			if plain {
				k = string(d[i+1 : kend-1])
			} else {
				k = unquote(d[i+1 : kend-1])
			}
			i = skipSpace(d, kend) // at ':'
			i = skipSpace(d, i+1)  // at the value
			var v any
			v, i = decode(d, i)
			m[k] = v
			i = skipSpace(d, i)
			if d[i] == '}' {
				return m, i + 1
			}
			i = skipSpace(d, i+1) // after ','
		}
	case '[':
		l := []any{}
		i = skipSpace(d, i+1)
		if d[i] == ']' {
			return l, i + 1
		}
		for {
			var v any
			v, i = decode(d, i)
			l = append(l, v)
			i = skipSpace(d, i)
			if d[i] == ']' {
				return l, i + 1
			}
			i = skipSpace(d, i+1)
		}
	case '"':
		end, plain, _ := scanString(d, i)
		if plain {
			return string(d[i+1 : end-1]), end
		}
		return unquote(d[i+1 : end-1]), end
	case 't':
		return true, i + 4
	case 'f':
		return false, i + 5
	case 'n':
		return nil, i + 4
	default:
		end, _ := scanNumber(d, i)
		f, _ := strconv.ParseFloat(unsafeString(d[i:end]), 64)
		return f, end
	}
}

// unquote decodes the content of a validated string literal as
// encoding/json does.
func unquote(s []byte) string {
	b := make([]byte, 0, len(s)+utf8.UTFMax)
	for r := 0; r < len(s); {
		c := s[r]
		switch {
		case c == '\\':
			switch s[r+1] {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				rr := getu4(s[r:])
				r += 6
				if utf16.IsSurrogate(rr) {
					if rr1 := getu4(s[r:]); rr1 >= 0 {
						if dec := utf16.DecodeRune(rr, rr1); dec != unicode.ReplacementChar {
							r += 6
							b = utf8.AppendRune(b, dec)
							continue
						}
					}
					rr = unicode.ReplacementChar
				}
				b = utf8.AppendRune(b, rr)
				continue
			default: // '"', '\\', '/'
				b = append(b, s[r+1])
			}
			r += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			r += size
			b = utf8.AppendRune(b, rr)
		}
	}
	return string(b)
}

// getu4 decodes \uXXXX at the start of s, or returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// AppendFloat appends f as json.Marshal writes a float64. f must be finite.
func AppendFloat(dst []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string literal, escaped as json.Marshal
// escapes it (HTML-safe: <, > and & as \u003c, \u003e, \u0026; U+2028 and
// U+2029 escaped; invalid UTF-8 as U+FFFD).
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
