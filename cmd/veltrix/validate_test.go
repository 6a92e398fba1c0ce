package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/veltrix/veltrix/pkg/diag"
)

// corpus is testdata/validate: one bad configuration per kind of problem,
// plus mixtures. Each want entry is "CODE file:line", file relative to
// testdata/validate (or "env NAME" for environment overrides).
var corpus = []struct {
	file string
	env  map[string]string
	want []string
}{
	{file: "unknown_key.yaml", want: []string{"VX1101 unknown_key.yaml:3"}},
	{file: "wrong_type.yaml", want: []string{"VX1102 wrong_type.yaml:3"}},
	{file: "settings_wrong_type.yaml", want: []string{"VX1102 settings_wrong_type.yaml:3", "VX1102 settings_wrong_type.yaml:4"}},
	{file: "enum.yaml", want: []string{"VX1104 enum.yaml:3"}},
	{file: "on_error_enum.yaml", want: []string{"VX1104 on_error_enum.yaml:5"}},
	{file: "missing_required.yaml", want: []string{"VX1103 missing_required.yaml:3"}},
	{file: "yaml_syntax.yaml", want: []string{"VX1002 yaml_syntax.yaml:5"}},
	{file: "include_nothing.yaml", want: []string{"VX1003 include_nothing.yaml:2"}},
	{file: "duplicate_rule.yaml", want: []string{"VX1106 duplicate_rule.yaml:6"}},
	{file: "invalid_topic.yaml", want: []string{"VX1107 invalid_topic.yaml:6"}},
	{file: "env_invalid.yaml", env: map[string]string{"VELTRIX_PROCESSING_COMMIT_INTERVAL": "fast"},
		want: []string{"VX1105 env VELTRIX_PROCESSING_COMMIT_INTERVAL:0"}},
	{file: "tls_ignored.yaml", want: []string{"VX1108 tls_ignored.yaml:3"}},
	{file: "sasl_credentials.yaml", want: []string{"VX1109 sasl_credentials.yaml:5"}},
	{file: "tls_files.yaml", want: []string{"VX1001 tls_files.yaml:4", "VX1103 tls_files.yaml:5"}},
	{file: "unknown_template.yaml", want: []string{"VX2001 unknown_template.yaml:8"}},
	{file: "missing_param.yaml", want: []string{"VX2002 missing_param.yaml:11"}},
	{file: "param_type.yaml", want: []string{"VX2003 param_type.yaml:13"}},
	{file: "unknown_param.yaml", want: []string{"VX2004 unknown_param.yaml:11"}},
	{file: "param_constraint.yaml", want: []string{"VX2005 param_constraint.yaml:13"}},
	{file: "param_pattern.yaml", want: []string{"VX2005 param_pattern.yaml:13"}},
	{file: "template_cycle.yaml", want: []string{"VX2006 template_cycle.yaml:8"}},
	{file: "param_schema.yaml", want: []string{"VX2007 param_schema.yaml:5"}},
	{file: "cel_syntax.yaml", want: []string{"VX3001 cel_syntax.yaml:6"}},
	{file: "cel_type.yaml", want: []string{"VX3002 cel_type.yaml:7"}},
	{file: "unknown_step.yaml", want: []string{"VX3003 unknown_step.yaml:6"}},
	{file: "invalid_step.yaml", want: []string{"VX3004 invalid_step.yaml:6"}},
	{file: "output_loop.yaml", want: []string{"VX3005 output_loop.yaml:7"}},
	{file: "dlq_loop.yaml", want: []string{"VX3005 dlq_loop.yaml:3"}},
	{file: "unreachable_branch.yaml", want: []string{"VX3006 unreachable_branch.yaml:10"}},
	{file: "topic_key_unused.yaml", want: []string{"VX3007 topic_key_unused.yaml:2"}},
	{file: "result_type.yaml", want: []string{"VX3002 result_type.yaml:7"}},
	{file: "include_error/veltrix.yaml", want: []string{"VX3002 include_error/rules/orders.yaml:8"}},
	{file: "mixture_schema.yaml", want: []string{
		"VX1101 mixture_schema.yaml:3", "VX1104 mixture_schema.yaml:5", "VX1102 mixture_schema.yaml:6",
		"VX1106 mixture_schema.yaml:11", "VX1107 mixture_schema.yaml:12",
	}},
	{file: "mixture_templates.yaml", want: []string{
		"VX3005 mixture_templates.yaml:9", "VX2005 mixture_templates.yaml:14", "VX2004 mixture_templates.yaml:14",
		"VX2001 mixture_templates.yaml:17", "VX2002 mixture_templates.yaml:21",
	}},
	{file: "mixture_steps.yaml", want: []string{
		"VX1101 mixture_steps.yaml:3", "VX3001 mixture_steps.yaml:8", "VX3003 mixture_steps.yaml:9",
		"VX3006 mixture_steps.yaml:12", "VX3004 mixture_steps.yaml:14", "VX3005 mixture_steps.yaml:14",
	}},
	{file: "mixture_env.yaml", env: map[string]string{"VELTRIX_PROCESSING_COMMIT_INTERVAL": "fast", "VELTRIX_PROCESSING_MAX_POLL_RECORDS": "-1"},
		want: []string{
			"VX1104 mixture_env.yaml:4",
			"VX1105 env VELTRIX_PROCESSING_COMMIT_INTERVAL:0", "VX1105 env VELTRIX_PROCESSING_MAX_POLL_RECORDS:0",
		}},
}

const corpusDir = "../../testdata/validate/"

// TestValidateCorpus runs veltrix validate on every bad configuration and
// checks the exit code and the exact list of (code, file, line), in order.
func TestValidateCorpus(t *testing.T) {
	if n := len(corpus); n < 25 {
		t.Fatalf("the corpus has %d cases, want at least 25", n)
	}
	for _, tt := range corpus {
		t.Run(tt.file, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, stderr, code, err := execute(t, "validate", "-c", corpusDir+tt.file)
			if code != 2 {
				t.Fatalf("exit code %d, want 2; stderr:\n%s", code, stderr)
			}
			problems := diag.AsList(err)
			var got []string
			for _, e := range problems {
				got = append(got, fmt.Sprintf("%s %s:%d", e.Code, strings.TrimPrefix(filepath.ToSlash(e.File), corpusDir), e.Line))
				if e.Message == "" || (e.Path == "" && e.Code != diag.YAMLSyntax) {
					t.Errorf("problem without message or path: %+v", e)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems:\n  got  %q\n  want %q\nstderr:\n%s", got, tt.want, stderr)
			}
			if want := fmt.Sprintf("%d problem(s) found", len(tt.want)); !strings.HasSuffix(stderr, want) {
				t.Errorf("stderr does not end with %q:\n%s", want, stderr)
			}
		})
	}
}

// TestValidateCorpusFilesListed keeps the table and the directory in step:
// every configuration in the corpus has a row.
func TestValidateCorpusFilesListed(t *testing.T) {
	files, err := filepath.Glob(corpusDir + "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, corpusDir+"include_error/veltrix.yaml")
	for _, f := range files {
		name := strings.TrimPrefix(filepath.ToSlash(f), corpusDir)
		if !slices.ContainsFunc(corpus, func(c struct {
			file string
			env  map[string]string
			want []string
		}) bool {
			return c.file == name
		}) {
			t.Errorf("%s has no row in the corpus table", name)
		}
	}
}

// TestValidateJSON checks --format json: a JSON array on stdout with code,
// file, line, column, path, message and hint of every problem.
func TestValidateJSON(t *testing.T) {
	stdout, stderr, code, _ := execute(t, "validate", "--format", "json", "-c", corpusDir+"mixture_templates.yaml")
	if code != 2 {
		t.Fatalf("exit code %d, want 2; stderr:\n%s", code, stderr)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("stdout is not a JSON array: %v\n%s", err, stdout)
	}
	if len(got) != 5 {
		t.Fatalf("%d problems, want 5:\n%s", len(got), stdout)
	}
	for _, p := range got {
		for _, k := range []string{"code", "file", "line", "column", "path", "message", "hint"} {
			if _, ok := p[k]; !ok {
				t.Errorf("problem without %s: %v", k, p)
			}
		}
	}
	first := got[1]
	if first["code"] != "VX2005" || first["line"] != float64(14) || first["column"] != float64(23) || first["path"] != "rules[0].with.threshold" {
		t.Errorf("second problem = %v, want VX2005 at 14:23 rules[0].with.threshold", first)
	}

	stdout, _, code, _ = execute(t, "validate", "--format", "json", "-c", "../../examples/ecommerce/veltrix.yaml")
	if code != 0 || strings.TrimSpace(stdout) != "[]" {
		t.Errorf("valid config: exit %d, stdout %q; want 0 and []", code, stdout)
	}
}

// TestValidateText checks the text form of one problem: place, code, path,
// message and hint, as an operator reads it.
func TestValidateText(t *testing.T) {
	_, stderr, _, _ := execute(t, "validate", "-c", corpusDir+"unknown_key.yaml")
	want := corpusDir + `unknown_key.yaml:3:3 VX1101 app.stat_dir: unknown key "stat_dir"` + "\n  hint: did you mean \"state_dir\"?"
	if !strings.HasPrefix(stderr, want) {
		t.Errorf("stderr:\n%s\nwant prefix:\n%s", stderr, want)
	}
}

// TestValidateWarnings: a warning (SASL PLAIN without TLS, VX1111) is printed
// with its code and the word warning, is in the JSON array with severity
// "warning", and leaves the exit code 0; with an error as well, the exit code
// is 2 and the count names the errors only.
func TestValidateWarnings(t *testing.T) {
	dir := t.TempDir()
	plain := "kafka:\n  sasl: {mechanism: PLAIN, username: u, password: p}\nrules:\n  - {name: r, from: orders, steps: [{to: out}]}\n"
	ok, bad := filepath.Join(dir, "ok.yaml"), filepath.Join(dir, "bad.yaml")
	writeTestFile(t, ok, plain)
	writeTestFile(t, bad, plain+"processing: {guarantee: twice}\n")

	_, stderr, code, _ := execute(t, "validate", "-c", ok)
	if code != 0 || !strings.Contains(stderr, ok+":2:21 warning VX1111 kafka.sasl.mechanism: ") || !strings.Contains(stderr, "valid (1 rules") || !strings.Contains(stderr, "1 warning(s)") {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 0, the warning VX1111 at 2:21 and the valid line naming 1 warning", code, stderr)
	}
	if strings.Contains(stderr, ": p}") {
		t.Errorf("the output shows the password:\n%s", stderr)
	}

	stdout, _, code, _ := execute(t, "validate", "--format", "json", "-c", ok)
	var got []diag.Error
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("stdout is not a JSON array: %v\n%s", err, stdout)
	}
	if code != 0 || len(got) != 1 || got[0].Code != diag.PlaintextCredentials || got[0].Severity != diag.SeverityWarning {
		t.Errorf("json: exit %d, %+v; want exit 0 and one VX1111 warning", code, got)
	}

	_, stderr, code, _ = execute(t, "validate", "-c", bad)
	if code != 2 || !strings.Contains(stderr, "warning VX1111") || !strings.HasSuffix(stderr, "1 problem(s) found") {
		t.Errorf("with an error: exit %d, stderr:\n%s\nwant exit 2, the warning and 1 problem", code, stderr)
	}
}

// TestValidateRepartitions: a step grouping by a key its topic does not
// declare is valid (exit 0), with an information line VX3008 naming the
// added repartition; declaring the topic's key removes it.
func TestValidateRepartitions(t *testing.T) {
	dir := t.TempDir()
	rule := "rules:\n  - name: revenue\n    from: orders\n    steps:\n      - aggregate: {store: revenue, key: event.customer_id, sum: event.total}\n      - to: out\n"
	undeclared, declared := filepath.Join(dir, "undeclared.yaml"), filepath.Join(dir, "declared.yaml")
	writeTestFile(t, undeclared, "app: {id: shop}\n"+rule)
	writeTestFile(t, declared, "app: {id: shop}\ntopics:\n  orders: {key: event.customer_id}\n"+rule)

	_, stderr, code, _ := execute(t, "validate", "-c", undeclared)
	want := undeclared + `:6:42 info VX3008 rules[0].steps[0].aggregate.key: rule "revenue": aggregate revenue groups by event.customer_id`
	if code != 0 || !strings.Contains(stderr, want) || !strings.Contains(stderr, "shop.revenue.repartition") || !strings.Contains(stderr, "valid (1 rules") {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 0 and %q", code, stderr, want)
	}
	_, stderr, code, _ = execute(t, "validate", "-c", declared)
	if code != 0 || strings.Contains(stderr, "VX3008") || strings.Contains(stderr, "repartition") {
		t.Errorf("declared key: exit %d, stderr:\n%s\nwant exit 0 and no repartition", code, stderr)
	}
	stdout, _, code, _ := execute(t, "describe", "-c", undeclared)
	if code != 0 || !strings.Contains(stdout, "repartition by event.customer_id for aggregate revenue") {
		t.Errorf("describe: exit %d, stdout:\n%s", code, stdout)
	}
}

func writeTestFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
