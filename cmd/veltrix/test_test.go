package main

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/veltrix/veltrix/pkg/diag"
)

// TestTestExamples runs every example test file: all cases pass.
func TestTestExamples(t *testing.T) {
	files, err := filepath.Glob("../../examples/ecommerce/tests/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example tests: %v", err)
	}
	stdout, stderr, code, _ := execute(t, append([]string{"test", "-c", "../../examples/ecommerce/veltrix.yaml"}, files...)...)
	if code != 0 {
		t.Fatalf("exit code %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	m := regexp.MustCompile(`(?m)^(\d+) passed, 0 failed$`).FindStringSubmatch(stdout)
	if m == nil || m[1] == "0" {
		t.Fatalf("no summary with passed cases:\n%s", stdout)
	}
	if n := strings.Count(stdout, "PASS  "); n < len(files) {
		t.Errorf("%d PASS lines for %d files:\n%s", n, len(files), stdout)
	}
}

// TestTestBroken runs a deliberately failing test file: exit 1, a FAIL line
// per failed case, a diff naming the field that differs, the summary.
func TestTestBroken(t *testing.T) {
	stdout, stderr, code, _ := execute(t, "test", "-c", "../../examples/ecommerce/veltrix.yaml", "../../testdata/test/broken.yaml")
	if code != 1 {
		t.Fatalf("exit code %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"PASS  ../../testdata/test/broken.yaml:5  passes\n",
		"FAIL  ../../testdata/test/broken.yaml:8  wrong flag\n",
		`output[0]: value.flag: expected "HIGH", got "high_value"`,
		"FAIL  ../../testdata/test/broken.yaml:11  expects an output that is filtered\n",
		"output[0]: missing",
		"\n1 passed, 2 failed\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "value.total") {
		t.Errorf("a field that matches is reported as a difference:\n%s", stdout)
	}
}

// TestTestFileErrors checks that a malformed test file is a configuration
// error (exit 2) with file:line for every problem, and that a wrong rule
// name is one too.
func TestTestFileErrors(t *testing.T) {
	_, stderr, code, err := execute(t, "test", "-c", "../../examples/ecommerce/veltrix.yaml", "../../testdata/test/malformed.yaml", "../../testdata/test/unknown_rule.yaml")
	if code != 2 {
		t.Fatalf("exit code %d, want 2\nstderr:\n%s", code, stderr)
	}
	var got []string
	for _, e := range diag.AsList(err) {
		got = append(got, string(e.Code)+" "+filepath.Base(e.File)+":"+strconv.Itoa(e.Line))
	}
	want := []string{
		"VX1101 malformed.yaml:4", "VX1101 malformed.yaml:5", "VX1103 malformed.yaml:5",
		"VX1104 malformed.yaml:6", "VX1102 malformed.yaml:7", "VX1104 malformed.yaml:8",
		"VX1104 unknown_rule.yaml:1",
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("problems:\n  got  %q\n  want %q\n%s", got, want, stderr)
	}
	if !strings.Contains(stderr, `did you mean "big-orders"?`) {
		t.Errorf("no did-you-mean for the rule name:\n%s", stderr)
	}
}
