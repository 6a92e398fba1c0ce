package processors_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/veltrix/veltrix/processors"
)

var update = flag.Bool("update", false, "rewrite docs/steps.md from the specs")

// TestDocs keeps docs/steps.md in step with the specs.
func TestDocs(t *testing.T) {
	var b bytes.Buffer
	if err := processors.WriteDocs(&b, processors.Specs()); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "docs", "steps.md")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./processors -run TestDocs -update)", err)
	}
	if !bytes.Equal(got, b.Bytes()) {
		t.Errorf("%s is out of date: run go test ./processors -run TestDocs -update", path)
	}
}
