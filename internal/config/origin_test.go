package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veltrix/veltrix/pkg/diag"
)

func TestOrigins(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "veltrix.yaml")
	yaml := "app:\n  id: shop\nkafka:\n  sasl: {mechanism: PLAIN, username: u, password: pw}\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"VELTRIX_PROCESSING_WORKERS": "3"}
	cfg, err := Load(path, WithEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key, file string
		line      int
		ok        bool
	}{
		{"app.id", "veltrix.yaml", 2, true},
		{"kafka.sasl.password", "veltrix.yaml", 4, true},
		{"processing.workers", "env VELTRIX_PROCESSING_WORKERS", 0, true},
		{"processing.guarantee", "", 0, false},
	} {
		at, ok := cfg.Origin(tc.key)
		if ok != tc.ok || !strings.HasSuffix(at.File, tc.file) || at.Line != tc.line {
			t.Errorf("Origin(%s) = %+v %v, want %s:%d %v", tc.key, at, ok, tc.file, tc.line, tc.ok)
		}
	}
	cfg.SetOrigin("kafka.brokers", "veltrix dev")
	if at, _ := cfg.Origin("kafka.brokers"); at.File != "veltrix dev" {
		t.Errorf("SetOrigin: %+v", at)
	}
	secret := map[string]bool{}
	for _, s := range Settings() {
		if s.Secret() {
			secret[s.Key] = true
		}
		if s.Key == "processing.workers" && cfg.Value(s) != 3 {
			t.Errorf("Value(processing.workers) = %v", cfg.Value(s))
		}
	}
	if !secret["kafka.sasl.password"] || !secret["http.auth_token"] || secret["http.auth_token_file"] || secret["kafka.sasl.username"] {
		t.Errorf("secret settings: %v", secret)
	}
}

func TestFragment(t *testing.T) {
	base := &Config{App: App{ID: "shop"}}
	base.Templates = []*Template{{Name: "keep"}}
	base.Rules = []*Rule{{Name: "a", From: []string{"orders"}}, {Name: "b", From: []string{"orders"}}}
	for _, tc := range []struct {
		name, data string
		rules      []string
		codes      []diag.Code
	}{
		{"one rule replaces its namesake", "name: b\nfrom: payments\nsteps: [{to: out}]\n", []string{"a", "b"}, nil},
		{"rules list adds", "rules:\n  - name: c\n    from: x\n    steps: [{to: out}]\n", []string{"a", "b", "c"}, nil},
		{"unknown key", "rulez: []\n", []string{"a", "b"}, []diag.Code{diag.UnknownKey}},
		{"unknown template", "name: d\nfrom: x\ntemplate: nope\n", []string{"a", "b", "d"}, []diag.Code{diag.UnknownTemplate}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Fragment(base, "pasted", []byte(tc.data))
			if out == nil {
				t.Fatalf("no config: %v", err)
			}
			var names []string
			for _, r := range out.Rules {
				names = append(names, r.Name)
			}
			if strings.Join(names, ",") != strings.Join(tc.rules, ",") {
				t.Errorf("rules %v, want %v", names, tc.rules)
			}
			if got := diag.AsList(err).Codes(); strings.Join(codeStrings(got), ",") != strings.Join(codeStrings(tc.codes), ",") {
				t.Errorf("codes %v, want %v (%v)", got, tc.codes, err)
			}
			for _, e := range diag.AsList(err) {
				if e.File != "pasted" || e.Line == 0 {
					t.Errorf("problem not placed in the pasted text: %v", e)
				}
			}
			if len(base.Rules) != 2 || base.Rules[1].From[0] != "orders" {
				t.Error("Fragment changed its base")
			}
		})
	}
	if out, err := Fragment(base, "pasted", []byte("a: [")); out != nil || !strings.Contains(err.Error(), "VX1002") {
		t.Errorf("bad YAML: %v %v", out, err)
	}
}

func codeStrings(cs []diag.Code) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return out
}
