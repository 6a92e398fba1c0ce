package config

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the settings table in docs/configuration.md")

const (
	docPath    = "../../docs/configuration.md"
	tableBegin = "<!-- settings:begin (generated from internal/config/types.go: go test ./internal/config -run TestConfigurationDoc -update) -->"
	tableEnd   = "<!-- settings:end -->"
)

// settingsTable renders the reference table from the struct tags.
func settingsTable() string {
	var b strings.Builder
	b.WriteString("| key | type | default | environment | description |\n|---|---|---|---|---|\n")
	for _, s := range Settings() {
		def := "`" + s.Default + "`"
		if s.Default == "" {
			def = "(empty)"
		}
		doc := s.Doc
		if s.Enum != nil {
			doc += "; one of " + enumList(s.Enum)
		}
		if s.Min != "" {
			doc += "; at least " + s.Min
		}
		if s.Max != "" {
			doc += "; at most " + s.Max
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | `%s` | %s |\n", s.Key, s.Type, def, s.Env, strings.ReplaceAll(doc, "|", `\|`))
	}
	return b.String()
}

// TestConfigurationDoc fails when the settings table in docs/configuration.md
// differs from the schema (a key missing, a default or variable name changed).
func TestConfigurationDoc(t *testing.T) {
	data, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	before, rest, ok1 := strings.Cut(doc, tableBegin+"\n")
	table, after, ok2 := strings.Cut(rest, tableEnd)
	if !ok1 || !ok2 {
		t.Fatalf("%s lacks the markers %q and %q", docPath, tableBegin, tableEnd)
	}
	want := settingsTable()
	if table == want {
		return
	}
	if *update {
		if err := os.WriteFile(docPath, []byte(before+tableBegin+"\n"+want+tableEnd+after), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	for line := range strings.SplitSeq(want, "\n") {
		if !strings.Contains(table, line) {
			t.Errorf("%s: missing or different row:\n%s", docPath, line)
		}
	}
	t.Errorf("the settings table is out of date; run go test ./internal/config -run TestConfigurationDoc -update")
}

func TestSettingsSchema(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Settings() {
		if seen[s.Env] {
			t.Errorf("two settings share %s", s.Env)
		}
		seen[s.Env] = true
		if s.Doc == "" {
			t.Errorf("%s has no doc tag", s.Key)
		}
		if want := "VELTRIX_" + strings.ToUpper(strings.ReplaceAll(s.Key, ".", "_")); s.Env != want {
			t.Errorf("%s: env %s, want %s", s.Key, s.Env, want)
		}
	}
	for _, key := range []string{"app.id", "kafka.tls.enabled", "kafka.brokers", "processing.commit_interval", "include"} {
		if !seen["VELTRIX_"+strings.ToUpper(strings.ReplaceAll(key, ".", "_"))] {
			t.Errorf("no setting %s", key)
		}
	}
}
