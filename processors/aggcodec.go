package processors

import (
	"encoding/json"
	"math"
	"strconv"
	"sync"
	"time"

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
	if a.Latest != nil || !finite(a.Sum) || !finite(a.Min) || !finite(a.Max) || !finite(a.Avg) {
		return dst, false
	}
	dst = append(dst, '{')
	dst = appendNum(dst, `"avg":`, a.Avg)
	if a.Avg != nil {
		dst = append(dst, ',')
	}
	dst = append(dst, `"count":`...)
	dst = strconv.AppendInt(dst, a.Count, 10)
	dst = append(dst, `,"key":`...)
	dst = jsonval.AppendString(dst, a.Key)
	dst = appendNum(dst, `,"max":`, a.Max)
	dst = appendNum(dst, `,"min":`, a.Min)
	dst = appendNum(dst, `,"sum":`, a.Sum)
	if a.WindowStart != "" {
		dst = append(dst, `,"window_end":`...)
		dst = jsonval.AppendString(dst, a.WindowEnd)
		dst = append(dst, `,"window_start":`...)
		dst = jsonval.AppendString(dst, a.WindowStart)
	}
	return append(dst, '}'), true
}

func finite(f *float64) bool { return f == nil || !math.IsNaN(*f) && !math.IsInf(*f, 0) }

// appendNum appends name and *f when f is set.
func appendNum(dst []byte, name string, f *float64) []byte {
	if f == nil {
		return dst
	}
	return jsonval.AppendFloat(append(dst, name...), *f)
}

// objects recycles the index of stored results.
var objects = sync.Pool{New: func() any { return new(jsonval.Object) }}

// decodeAggFast decodes a stored result as json.Unmarshal(v, a) would, for
// the documents appendResult and json.Marshal(a) write (every field of its
// kind, in any order; unknown fields ignored), with its numbers in a.nums.
// ok is false for anything else: the caller then uses encoding/json. a must
// be zero but for Key; with Key set, the stored key is not read (it is the
// same).
func decodeAggFast(v []byte, a *aggState) (ok bool) {
	o := objects.Get().(*jsonval.Object)
	defer objects.Put(o)
	if o.Parse(v) != nil {
		return false
	}
	num := func(fv jsonval.Value, i int) (*float64, bool) {
		if fv.Kind != jsonval.KindNumber {
			return nil, false
		}
		a.nums[i] = fv.Float() // validated by Parse, in float64 range
		return &a.nums[i], true
	}
	key := a.Key
	str := func(fv jsonval.Value) (string, bool) {
		return fv.Str(), fv.Kind == jsonval.KindString
	}
	for i := range o.Len() {
		k, fv, plain := o.PlainField(i)
		if !plain {
			return false
		}
		good := true
		switch string(k) {
		case "key":
			if key == "" {
				a.Key, good = str(fv)
			} else {
				good = fv.Kind == jsonval.KindString
			}
		case "count":
			a.Count, good = parseCount(fv)
		case "sum":
			a.Sum, good = num(fv, 0)
		case "min":
			a.Min, good = num(fv, 1)
		case "max":
			a.Max, good = num(fv, 2)
		case "avg":
			a.Avg, good = num(fv, 3)
		case "window_start":
			a.WindowStart, good = str(fv)
		case "window_end":
			a.WindowEnd, good = str(fv)
		case "latest":
			a.Latest = append(json.RawMessage(nil), fv.Raw...)
		default:
			// encoding/json matches field names case-insensitively.
			return false
		}
		if !good {
			return false
		}
	}
	return true
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
func parseCount(v jsonval.Value) (int64, bool) {
	d := v.Raw
	if v.Kind != jsonval.KindNumber || len(d) == 0 {
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
