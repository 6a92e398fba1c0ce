package config

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestDirs(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"rules", "teams/a", "teams/b"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	main := filepath.Join(root, "veltrix.yaml")
	for _, tc := range []struct {
		name    string
		include []string
		want    []string
	}{
		{name: "main only", want: []string{root}},
		{name: "include dir", include: []string{"rules/*.yaml", "*.yml"}, want: []string{root, filepath.Join(root, "rules")}},
		{name: "glob in the dir part", include: []string{"teams/*/rules.yaml"}, want: []string{root, filepath.Join(root, "teams/a"), filepath.Join(root, "teams/b")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := (&Config{File: main, Include: tc.include}).Dirs()
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Dirs() = %q, want %q", got, tc.want)
			}
		})
	}
}
