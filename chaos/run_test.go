package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLogTailsOfAFailedScenario(t *testing.T) {
	work := t.TempDir()
	dir := filepath.Join(work, "dev-R1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(p, s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "i1.log"), "one\ntwo\nthree\n")
	write(filepath.Join(dir, "i2.log"), "")
	write(filepath.Join(dir, "broker.log"), strings.Repeat("x", 500)+"\n")
	write(filepath.Join(dir, "veltrix.yaml"), "not a log\n")
	write(filepath.Join(work, "other.log"), "another scenario's\n")

	got := logTails(dir, 2)
	want := []string{
		"last lines of broker.log:\n      " + strings.Repeat("x", 400) + "...",
		"last lines of i1.log:\n      two\n      three",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d tails %q, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("tail %d:\n got %q\nwant %q", i, got[i], want[i])
		}
	}
}
