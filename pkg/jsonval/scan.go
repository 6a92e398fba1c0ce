// Package jsonval reads JSON objects in place. One validating pass over a
// record's bytes indexes the top-level fields of the object; a field's value
// is decoded only when it is looked up, so a rule that reads two fields of a
// large event pays for those two fields, not for a map of every field.
//
// Validation accepts exactly what encoding/json's Unmarshal into a
// map[string]any accepts (RFC 8259 syntax, nesting up to 10000 levels,
// numbers within float64 range, any bytes in strings but control
// characters), and decoding gives the same Go values (float64 numbers,
// strings with invalid UTF-8 replaced by U+FFFD, the last of duplicate keys
// winning). Encoding helpers (AppendString, AppendFloat) write what
// json.Marshal writes, and Object.AppendPatched writes an object with fields
// replaced, added or removed while copying every other field's bytes as they
// are.
package jsonval

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
	"unsafe"
)

// Kind is the type of a JSON value.
type Kind uint8

// Kinds of JSON values.
const (
	KindInvalid Kind = iota
	KindNull
	KindFalse
	KindTrue
	KindNumber
	KindString
	KindArray
	KindObject
)

var kindNames = [...]string{"invalid", "null", "false", "true", "number", "string", "array", "object"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// MaxDepth is the deepest nesting of arrays and objects accepted, as in
// encoding/json.
const MaxDepth = 10000

// SyntaxError is a document that is not valid JSON, or valid JSON that
// encoding/json would not decode into a map[string]any (another top-level
// kind, a number out of float64 range).
type SyntaxError struct {
	Offset int // byte offset of the problem
	msg    string
}

func (e *SyntaxError) Error() string {
	return e.msg + " (at byte " + strconv.Itoa(e.Offset) + ")"
}

func errAt(off int, format string, args ...any) *SyntaxError {
	return &SyntaxError{Offset: off, msg: fmt.Sprintf(format, args...)}
}

// quoteChar formats a byte as encoding/json does in its messages.
func quoteChar(c byte) string {
	switch c {
	case '\'':
		return `'\''`
	case '"':
		return `'"'`
	}
	s := strconv.Quote(string(rune(c)))
	return "'" + s[1:len(s)-1] + "'"
}

// byte classes inside strings
const (
	cPlain   = iota // printable ASCII other than '"' and '\\'
	cQuote          // '"'
	cEscape         // '\\'
	cControl        // < 0x20
	cHigh           // >= 0x80 (part of a multi-byte or invalid sequence)
)

var strClass = func() (t [256]uint8) {
	for i := range t {
		switch {
		case i < 0x20:
			t[i] = cControl
		case i == '"':
			t[i] = cQuote
		case i == '\\':
			t[i] = cEscape
		case i >= 0x80:
			t[i] = cHigh
		}
	}
	return t
}()

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// skipSpace returns the index of the first byte at or after i that is not
// whitespace. Compact JSON has none, so one comparison settles most calls.
func skipSpace(d []byte, i int) int {
	if i < len(d) && d[i] > ' ' {
		return i
	}
	for i < len(d) && isSpace(d[i]) {
		i++
	}
	return i
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func eof(d []byte) *SyntaxError { return errAt(len(d), "unexpected end of JSON input") }

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// specialBytes returns a mask with the high bit set in the bytes of x (read
// little-endian) that are a quote, a backslash, a control character or
// non-ASCII. Bytes above the first such byte may be flagged wrongly (a
// borrow carries upwards), never the ones below it: the lowest flag is
// exact.
func specialBytes(x uint64) uint64 {
	q := x ^ (lsb * '"')
	b := x ^ (lsb * '\\')
	return (x | (x - lsb*0x20) | (q-lsb)&^q | (b-lsb)&^b) & msb
}

// scanString checks the string starting at d[i] == '"' and returns the index
// after its closing quote and whether its content is plain (ASCII with no
// escapes: its bytes are its value).
func scanString(d []byte, i int) (int, bool, error) {
	plain := true
	i++
	for i < len(d) {
		// Skip plain bytes eight at a time, up to the first other one.
		for i+8 <= len(d) {
			if m := specialBytes(binary.LittleEndian.Uint64(d[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				if d[i] == '"' { // the usual end: no class look-up
					return i + 1, plain, nil
				}
				break
			}
			i += 8
		}
		if i >= len(d) {
			break
		}
		switch strClass[d[i]] {
		case cPlain:
			i++
		case cQuote:
			return i + 1, plain, nil
		case cHigh:
			plain = false
			i++
		case cControl:
			return 0, false, errAt(i, "invalid character %s in string literal", quoteChar(d[i]))
		case cEscape:
			plain = false
			if i+1 >= len(d) {
				return 0, false, eof(d)
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for j := i + 2; j < i+6; j++ {
					if j >= len(d) {
						return 0, false, eof(d)
					}
					if !isHex(d[j]) {
						return 0, false, errAt(j, "invalid character %s in \\u hexadecimal character escape", quoteChar(d[j]))
					}
				}
				i += 6
			default:
				return 0, false, errAt(i+1, "invalid character %s in string escape code", quoteChar(d[i+1]))
			}
		}
	}
	return 0, false, eof(d)
}

// scanNumber checks the number starting at d[i] and returns its end. A
// number that float64 cannot hold (1e400) is an error, as it is for
// encoding/json decoding into an interface.
func scanNumber(d []byte, i int) (int, error) {
	start := i
	if d[i] == '-' {
		i++
		if i >= len(d) {
			return 0, eof(d)
		}
	}
	switch {
	case d[i] == '0':
		i++
	case '1' <= d[i] && d[i] <= '9':
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	default:
		return 0, errAt(i, "invalid character %s in numeric literal", quoteChar(d[i]))
	}
	intDigits := i - start
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) {
			return 0, eof(d)
		}
		if d[i] < '0' || d[i] > '9' {
			return 0, errAt(i, "invalid character %s after decimal point in numeric literal", quoteChar(d[i]))
		}
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	}
	exp := false
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		exp = true
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) {
			return 0, eof(d)
		}
		if d[i] < '0' || d[i] > '9' {
			return 0, errAt(i, "invalid character %s in exponent of numeric literal", quoteChar(d[i]))
		}
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	}
	if exp || intDigits > 300 {
		if _, err := strconv.ParseFloat(unsafeString(d[start:i]), 64); err != nil {
			return 0, errAt(start, "number %s does not fit a float64", clip(d[start:i]))
		}
	}
	return i, nil
}

// scanLiteral checks true, false or null at d[i].
func scanLiteral(d []byte, i int, lit string) (int, error) {
	for j := 0; j < len(lit); j++ {
		if i+j >= len(d) {
			return 0, eof(d)
		}
		if d[i+j] != lit[j] {
			return 0, errAt(i+j, "invalid character %s in literal %s (expecting %s)", quoteChar(d[i+j]), lit, quoteChar(lit[j]))
		}
	}
	return i + len(lit), nil
}

// scanValue checks the value starting at d[i] (not whitespace) and returns
// its end, kind and, for a string, whether it is plain. depth is the nesting
// depth of the container holding the value.
func scanValue(d []byte, i, depth int) (int, Kind, bool, error) {
	if i >= len(d) {
		return 0, KindInvalid, false, eof(d)
	}
	switch c := d[i]; {
	case c == '"':
		end, plain, err := scanString(d, i)
		return end, KindString, plain, err
	case c == '{':
		end, err := scanObject(d, i, depth+1, nil)
		return end, KindObject, false, err
	case c == '[':
		end, err := scanArray(d, i, depth+1)
		return end, KindArray, false, err
	case c == 't':
		end, err := scanLiteral(d, i, "true")
		return end, KindTrue, false, err
	case c == 'f':
		end, err := scanLiteral(d, i, "false")
		return end, KindFalse, false, err
	case c == 'n':
		end, err := scanLiteral(d, i, "null")
		return end, KindNull, false, err
	case c == '-' || '0' <= c && c <= '9':
		end, err := scanNumber(d, i)
		return end, KindNumber, false, err
	default:
		return 0, KindInvalid, false, errAt(i, "invalid character %s looking for beginning of value", quoteChar(c))
	}
}

func scanArray(d []byte, i, depth int) (int, error) {
	if depth > MaxDepth {
		return 0, errAt(i, "exceeded max depth")
	}
	i = skipSpace(d, i+1)
	if i < len(d) && d[i] == ']' {
		return i + 1, nil
	}
	for {
		end, _, _, err := scanValue(d, i, depth)
		if err != nil {
			return 0, err
		}
		i = skipSpace(d, end)
		if i >= len(d) {
			return 0, eof(d)
		}
		switch d[i] {
		case ',':
			i = skipSpace(d, i+1)
		case ']':
			return i + 1, nil
		default:
			return 0, errAt(i, "invalid character %s after array element", quoteChar(d[i]))
		}
	}
}

// scanObject checks the object starting at d[i] == '{' and, when idx is not
// nil, appends its fields to idx.fields.
func scanObject(d []byte, i, depth int, idx *Object) (int, error) {
	if depth > MaxDepth {
		return 0, errAt(i, "exceeded max depth")
	}
	i = skipSpace(d, i+1)
	if i < len(d) && d[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(d) {
			return 0, eof(d)
		}
		if d[i] != '"' {
			return 0, errAt(i, "invalid character %s looking for beginning of object key string", quoteChar(d[i]))
		}
		kend, kplain, err := scanString(d, i)
		if err != nil {
			return 0, err
		}
		kstart := i
		if kend+1 < len(d) && d[kend] == ':' && d[kend+1] > ' ' {
			i = kend + 1 // compact JSON: the colon, then the value
		} else {
			i = skipSpace(d, kend)
			if i >= len(d) {
				return 0, eof(d)
			}
			if d[i] != ':' {
				return 0, errAt(i, "invalid character %s after object key", quoteChar(d[i]))
			}
			i = skipSpace(d, i+1)
		}
		var (
			vend   int
			kind   Kind
			vplain bool
		)
		if i < len(d) && d[i] == '"' { // most values: one call less
			kind = KindString
			vend, vplain, err = scanString(d, i)
		} else {
			vend, kind, vplain, err = scanValue(d, i, depth)
		}
		if err != nil {
			return 0, err
		}
		if idx != nil {
			// Set in place: a field built aside and copied in was read
			// back in wide loads right after its narrow stores (a
			// store-forwarding stall, the costliest line of the scan in
			// a profile).
			idx.fields = append(idx.fields, field{})
			f := &idx.fields[len(idx.fields)-1]
			f.ks, f.ke, f.vs, f.ve = uint32(kstart+1), uint32(kend-1), uint32(i), uint32(vend)
			f.kind, f.keyPlain, f.valPlain = kind, kplain, vplain
			// A key or string that is not plain, or an array or object,
			// may hold non-ASCII bytes (vplain is false for all but
			// plain strings).
			if !kplain || !vplain && kind >= KindString {
				idx.mixed = true
			}
			if kplain && kend-kstart > 2 {
				idx.keys |= keyBit(kend-kstart-2, d[kstart+1])
			} else {
				idx.keys = ^uint64(0)
			}
		}
		if vend+1 < len(d) && d[vend] == ',' && d[vend+1] > ' ' {
			i = vend + 1 // compact JSON: the comma, then the next key
			continue
		}
		i = skipSpace(d, vend)
		if i >= len(d) {
			return 0, eof(d)
		}
		switch d[i] {
		case ',':
			i = skipSpace(d, i+1)
		case '}':
			return i + 1, nil
		default:
			return 0, errAt(i, "invalid character %s after object key:value pair", quoteChar(d[i]))
		}
	}
}

// Valid reports whether data is one JSON value (of any kind) that
// encoding/json would decode into an interface, with nothing but whitespace
// around it.
func Valid(data []byte) error {
	i := skipSpace(data, 0)
	end, _, _, err := scanValue(data, i, 0)
	if err != nil {
		return err
	}
	if i = skipSpace(data, end); i < len(data) {
		return errAt(i, "invalid character %s after top-level value", quoteChar(data[i]))
	}
	return nil
}

// unsafeString views b as a string for reading only; the string must not
// outlive b nor be kept.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// maxQuoted bounds how much of the input an error message quotes.
const maxQuoted = 64

// clip returns b for an error message: whole when short, else its first
// maxQuoted bytes and how many more there are (a 600,000-digit number must
// not make a 600 KB message).
func clip(b []byte) string {
	if len(b) <= maxQuoted {
		return string(b)
	}
	return fmt.Sprintf("%s… (%d bytes)", b[:maxQuoted], len(b))
}
