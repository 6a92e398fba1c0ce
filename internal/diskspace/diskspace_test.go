package diskspace

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestFree(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dir     string
		wantErr bool
	}{
		{"a temporary directory", t.TempDir(), false},
		{"a directory that does not exist", filepath.Join(t.TempDir(), "missing"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			free, err := Free(tc.dir)
			if errors.Is(err, ErrUnsupported) {
				t.Skip("no statfs on this platform")
			}
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Free(%s) = %d, want an error", tc.dir, free)
				}
				return
			}
			if err != nil || free <= 0 {
				t.Fatalf("Free(%s) = %d, %v; want room on the test machine's disk", tc.dir, free, err)
			}
		})
	}
}
