package processors

import (
	"math"
	"strconv"
	"time"
	"unsafe"

	"github.com/veltrix/veltrix/pkg/jsonval"
)

// The aggregate's stored result and its output are JSON, read and written
// once per event: this file holds hand-written codecs for them that give
// exactly the bytes encoding/json gives, falling back to encoding/json for
// what they do not handle (a latest value, a non-finite number, an
// unexpected stored document).

// appendResult appends the encoding of a's output value, json.Marshal of
// the map value() returns (keys sorted), to dst. It is also the stored
// encoding, so that one encoding serves the store and the output. ok is
// false when a needs encoding/json (a latest value or a number that is not
// finite).
func appendResult(dst []byte, a *aggState) (_ []byte, ok bool) {
	if a.Latest != nil {
		return dst, false
	}
	for k := range a.nums {
		if v, ok := a.num(k); ok && (math.IsNaN(v) || math.IsInf(v, 0)) {
			return dst, false
		}
	}
	dst = append(dst, '{')
	dst = appendNum(dst, `"avg":`, a, numAvg)
	if _, ok := a.num(numAvg); ok {
		dst = append(dst, ',')
	}
	dst = append(dst, `"count":`...)
	dst = strconv.AppendInt(dst, a.Count, 10)
	dst = append(dst, `,"key":`...)
	dst = jsonval.AppendString(dst, a.Key)
	dst = appendNum(dst, `,"max":`, a, numMax)
	dst = appendNum(dst, `,"min":`, a, numMin)
	dst = appendNum(dst, `,"sum":`, a, numSum)
	if a.WindowStart != "" {
		dst = append(dst, `,"window_end":`...)
		dst = jsonval.AppendString(dst, a.WindowEnd)
		dst = append(dst, `,"window_start":`...)
		dst = jsonval.AppendString(dst, a.WindowStart)
	}
	return append(dst, '}'), true
}

// appendNum appends name and a's k-th number when a has it.
func appendNum(dst []byte, name string, a *aggState, k int) []byte {
	v, ok := a.num(k)
	if !ok {
		return dst
	}
	return jsonval.AppendFloat(append(dst, name...), v)
}

// decodeAggFast decodes a stored result as json.Unmarshal(v, a) would, in
// one pass over the bytes, for the compact documents appendResult and
// json.Marshal(a) write without a latest value: every field of its kind,
// in any order, numbers within float64 range, strings of printable ASCII
// without escapes. ok is false for anything else (whitespace, escapes, a
// latest value, an unknown field: encoding/json matches names
// case-insensitively): the caller then uses encoding/json. a must be zero
// but for Key; with Key set, the stored key is only skipped (it is the
// same), escapes and all.
func decodeAggFast(v []byte, a *aggState) (ok bool) {
	if len(v) < 2 || v[0] != '{' || v[len(v)-1] != '}' {
		return false
	}
	skipKey := a.Key != ""
	for i := 1; ; {
		name, j, ok := plainString(v, i)
		if !ok || j >= len(v) || v[j] != ':' {
			return false
		}
		i = j + 1
		if i >= len(v) {
			return false
		}
		if v[i] == '"' {
			if string(name) == "key" && skipKey {
				i, ok = skipString(v, i)
				if !ok {
					return false
				}
			} else {
				s, j, ok := plainString(v, i)
				if !ok {
					return false
				}
				i = j
				switch string(name) {
				case "key":
					a.Key = string(s)
				case "window_start":
					a.WindowStart = string(s)
				case "window_end":
					a.WindowEnd = string(s)
				default:
					return false
				}
			}
		} else {
			j := i
			for j < len(v) && v[j] != ',' && v[j] != '}' {
				j++
			}
			num := v[i:j]
			i = j
			if !jsonNumber(num) {
				return false
			}
			switch string(name) {
			case "count":
				a.Count, ok = parseCount(num)
			case "sum":
				ok = a.parseNum(numSum, num)
			case "min":
				ok = a.parseNum(numMin, num)
			case "max":
				ok = a.parseNum(numMax, num)
			case "avg":
				ok = a.parseNum(numAvg, num)
			default:
				return false
			}
			if !ok {
				return false
			}
		}
		switch {
		case i == len(v)-1:
			return v[i] == '}'
		case v[i] != ',':
			return false
		}
		i++
	}
}

// parseNum sets a's k-th number to the JSON number num; ok is false when
// float64 cannot hold it.
func (a *aggState) parseNum(k int, num []byte) (ok bool) {
	f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(num), len(num)), 64)
	if err != nil {
		return false
	}
	a.setNum(k, f)
	return true
}

// plainString reads the string starting at v[i] when it is printable ASCII
// without escapes: its content and the index after its closing quote.
func plainString(v []byte, i int) (s []byte, end int, ok bool) {
	if i >= len(v) || v[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(v); j++ {
		switch c := v[j]; {
		case c == '"':
			return v[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// skipString returns the index after the string starting at v[i] == '"',
// escapes and all.
func skipString(v []byte, i int) (int, bool) {
	for j := i + 1; j < len(v); j++ {
		switch v[j] {
		case '"':
			return j + 1, true
		case '\\':
			j++
		}
	}
	return 0, false
}

// jsonNumber reports whether b is a JSON number:
// -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func jsonNumber(b []byte) bool {
	i := 0
	digits := func() bool {
		n := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i > n
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if !digits() {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	return i == len(b)
}

// windowBounds sets a's window bounds from its window_start/window_end.
func (a *aggState) windowBounds() bool {
	if a.WindowStart == "" {
		return true
	}
	ts, err1 := time.Parse(time.RFC3339Nano, a.WindowStart)
	te, err2 := time.Parse(time.RFC3339Nano, a.WindowEnd)
	if err1 != nil || err2 != nil {
		return false
	}
	a.start, a.end = ts.UnixMilli(), te.UnixMilli()
	return true
}

// parseCount reads an integer number of at most 18 digits.
func parseCount(d []byte) (int64, bool) {
	if len(d) == 0 {
		return 0, false
	}
	neg := d[0] == '-'
	if neg {
		d = d[1:]
	}
	if len(d) == 0 || len(d) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}
