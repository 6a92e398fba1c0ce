package engine

import (
	"fmt"
	"strings"
	"testing"

	"github.com/veltrix/veltrix/internal/state"
)

func kvs(keys string) []state.KV {
	var out []state.KV
	for _, k := range strings.Fields(keys) {
		out = append(out, state.KV{Key: []byte(k)})
	}
	return out
}

func TestMergeKVs(t *testing.T) {
	for _, tc := range []struct {
		a, b  string
		limit int
		want  string
	}{
		{"", "", 3, "[]"},
		{"a c e", "b d f", 100, "[a b c d e f]"},
		{"a c e", "b d f", 4, "[a b c d]"},
		{"a b c", "", 2, "[a b]"},
		{"", "x y z", 2, "[x y]"},
		{"d e f", "a b c", 3, "[a b c]"},
		{"a", "a", 2, "[a a]"},
	} {
		got := mergeKVs(kvs(tc.a), kvs(tc.b), tc.limit)
		keys := []string{}
		for _, kv := range got {
			keys = append(keys, string(kv.Key))
		}
		if s := fmt.Sprint(keys); s != tc.want || cap(got) > tc.limit {
			t.Errorf("mergeKVs(%q, %q, %d) = %s (cap %d), want %s", tc.a, tc.b, tc.limit, s, cap(got), tc.want)
		}
	}
}
