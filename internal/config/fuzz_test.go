package config

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/veltrix/veltrix/pkg/diag"
)

// FuzzLoadConfig runs Load over arbitrary main files: it must not panic or
// hang, and every failure must be a diag.List of coded problems. Includes are
// kept inside the fuzz directory. Run it for a bounded time with
//
//	go test ./internal/config -run '^$' -fuzz FuzzLoadConfig -fuzztime 60s
func FuzzLoadConfig(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	more, _ := filepath.Glob("testdata/*/*/*.yaml")
	for _, s := range append(seeds, more...) {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	codeRE := regexp.MustCompile(`^VX[1-9]\d{3}$`)
	f.Fuzz(func(t *testing.T, data string) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "veltrix.yaml"), data)
		writeFile(t, filepath.Join(dir, "rules.yaml"), "rules: [{name: extra, from: x, steps: [{to: y}]}]\n")
		glob := func(p string) ([]string, error) {
			if !strings.HasPrefix(filepath.Clean(p), dir+string(filepath.Separator)) {
				return nil, nil
			}
			return filepath.Glob(p)
		}
		cfg, err := Load(filepath.Join(dir, "veltrix.yaml"), WithEnv(noEnv), withGlob(glob))
		if err == nil {
			if cfg == nil {
				t.Fatal("nil Config without an error")
			}
			return
		}
		var list diag.List
		if !errors.As(err, &list) || len(list) == 0 {
			t.Fatalf("error %v (%T) is not a non-empty diag.List", err, err)
		}
		for _, e := range list {
			if !codeRE.MatchString(string(e.Code)) || e.Code == diag.Internal || e.Message == "" {
				t.Fatalf("uncoded or internal problem: %+v", e)
			}
		}
	})
}
