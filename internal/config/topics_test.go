package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/veltrix/veltrix/pkg/diag"
)

// TestTopics checks the topics: section: the keys it declares, and the
// problems of its shape (code and line).
func TestTopics(t *testing.T) {
	cases := []struct {
		name, src string
		keys      []string // "topic=key"
		want      []string // "code line"
	}{
		{"two topics", "topics:\n  orders: {key: event.order_id}\n  payments:\n    key: 'event.order_id'\n", []string{"orders=event.order_id", "payments=event.order_id"}, nil},
		{"none", "topics: {}\n", nil, nil},
		{"unknown key", "topics:\n  orders: {key: event.order_id, partitions: 6}\n", []string{"orders=event.order_id"}, []string{"VX1101 2"}},
		{"not a mapping", "topics:\n  orders: event.order_id\n", nil, []string{"VX1102 2"}},
		{"key not a string", "topics:\n  orders: {key: [a]}\n", nil, []string{"VX1102 2"}},
		{"no key", "topics:\n  orders: {}\n", nil, []string{"VX1103 2"}},
		{"invalid topic name", "topics:\n  'or ders': {key: event.id}\n", nil, []string{"VX1107 2"}},
		{"a list", "topics: [orders]\n", nil, []string{"VX1102 1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "veltrix.yaml")
			writeFile(t, path, tc.src+"rules:\n  - {name: r, from: orders, steps: [{to: out}]}\n")
			cfg, err := Load(path, WithEnv(func(string) (string, bool) { return "", false }))
			var got []string
			for _, e := range diag.AsList(err) {
				got = append(got, fmt.Sprintf("%s %d", e.Code, e.Line))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("problems %q, want %q\n%v", got, tc.want, err)
			}
			var keys []string
			for _, tk := range cfg.Topics {
				keys = append(keys, tk.Topic+"="+tk.Key)
				if tk.KeyNode == nil || tk.KeyPos.Line == 0 || tk.Pos.Path != "topics."+tk.Topic {
					t.Errorf("%s: positions not set: %+v", tk.Topic, tk)
				}
			}
			if !slices.Equal(keys, tc.keys) {
				t.Errorf("keys %q, want %q", keys, tc.keys)
			}
		})
	}
}
