package processors

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
)

// TestAggCodecMatchesEncodingJSON checks that the hand-written codecs of
// aggregate results give exactly what encoding/json gives.
func TestAggCodecMatchesEncodingJSON(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		name string
		j    aggJSON // the result, as encoding/json reads it
		fast bool    // the fast encoders handle it
	}{
		{"count only", aggJSON{Key: "c-000042", Count: 1}, true},
		{"sum", aggJSON{Key: "c-1", Count: 3, Sum: f(1234.56)}, true},
		{"all numbers", aggJSON{Key: "k", Count: 7, Sum: f(-0.5), Min: f(1e-7), Max: f(1e21), Avg: f(123456789.125)}, true},
		{"zero values", aggJSON{Key: "", Count: 0, Sum: f(0), Min: f(math.Copysign(0, -1))}, true},
		{"escapes", aggJSON{Key: "a\"b\\c<d>&e\u2028\x01é\xff", Count: 2, Avg: f(3)}, true},
		{"window", aggJSON{Key: "k", Count: 2, Sum: f(3), WindowStart: "2024-05-01T10:00:00Z", WindowEnd: "2024-05-01T11:00:00Z"}, true},
		{"latest", aggJSON{Key: "k", Count: 1, Latest: json.RawMessage(`{"a":[1,2]}`)}, false},
		{"infinite sum", aggJSON{Key: "k", Count: 1, Sum: f(math.Inf(1))}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.j.state()
			if back := a.json(); !reflect.DeepEqual(back, &tt.j) {
				t.Fatalf("state().json() = %+v, want %+v", back, tt.j)
			}
			m, err := a.value()
			if err != nil {
				t.Fatal(err)
			}
			want, _ := json.Marshal(m)
			got, ok := appendResult(nil, &a)
			if ok != tt.fast || ok && string(got) != string(want) {
				t.Fatalf("appendResult = %s,%v, json.Marshal(value) = %s", got, ok, want)
			}
			// Both stored forms, appendResult's and json.Marshal(a.json()) (what
			// encoding/json stores when appendResult cannot), decode as
			// json.Unmarshal decodes them.
			stored, err := json.Marshal(a.json())
			if err != nil {
				return // not storable, as put reports
			}
			for _, doc := range [][]byte{got, stored} {
				if doc == nil {
					continue
				}
				var j aggJSON
				if err := json.Unmarshal(doc, &j); err != nil {
					t.Fatal(err)
				}
				viaJSON := j.state()
				// With the key known, as an update reads its group's
				// result, and without it.
				for _, key := range []string{a.Key, ""} {
					viaFast := aggState{Key: key}
					if !decodeAggFast(doc, &viaFast) {
						if tt.fast && key != "" {
							t.Fatalf("decodeAggFast refused %s", doc)
						}
						continue
					}
					cmp := viaFast
					if key != "" {
						cmp.Key = viaJSON.Key // a known key is not read
					}
					if !reflect.DeepEqual(viaJSON, cmp) {
						t.Fatalf("decodeAggFast(%s) with key %q = %+v, json.Unmarshal = %+v", doc, key, cmp, viaJSON)
					}
				}
			}
		})
	}
	// Documents the fast decoder leaves to encoding/json.
	for _, doc := range []string{
		`{"Key":"k","count":1}`, `{"key":"k","count":1.5}`, `{"key":null,"count":1}`, `[1]`, `{}`,
		`{"key":"k","count":12345678901234567890}`, `{"key":"k","count":01}`, `{"key":"k", "count":1}`,
		`{"key":"k","count":1,"sum":1e400}`, `{"key":"k","count":1,"sum":1.}`, `{"key":"k","count":1,"sum":+1}`,
		`{"key":"k","count":1,"sum":"1"}`, `{"key":"a\u00e9","count":1}`, `{"key":"k","count":1,"latest":{}}`,
		`{"key":"k","count":1}}`, `{"key":"k","count":1,}`, `{"key":"k","count":1`,
	} {
		var a aggState
		if decodeAggFast([]byte(doc), &a) {
			t.Errorf("decodeAggFast accepted %s as %+v", doc, a)
		}
	}
}
