package configwatch

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// A burst of writes to a YAML file gives one call; a file of another kind
// gives none.
func TestWatchCallsOncePerBurstOfYAMLChanges(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls atomic.Int32
	if err := Watch(ctx, []string{dir}, func() { calls.Add(1) }); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("notes.txt", "x")
	for i := range 5 {
		write("veltrix.yaml", string(rune('a'+i)))
	}
	deadline := time.Now().Add(10 * time.Second)
	for calls.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no call after the YAML file changed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(3 * Quiet) // a second call would come within this
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d calls after one burst of writes, want 1", n)
	}
}

func TestWatchMissingDirectory(t *testing.T) {
	if err := Watch(context.Background(), []string{filepath.Join(t.TempDir(), "nope")}, func() {}); err == nil {
		t.Fatal("watching a missing directory succeeded")
	}
}
