package testlog_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/veltrix/veltrix/internal/testlog"
)

// Writes from several goroutines while String is read (run with -race) all
// arrive whole.
func TestBufferConcurrentWrites(t *testing.T) {
	var b testlog.Buffer
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				fmt.Fprintf(&b, "g%d line %d\n", g, i)
			}
		}()
	}
	for range 10 {
		_ = b.String()
	}
	wg.Wait()
	if n := strings.Count(b.String(), "\n"); n != 400 {
		t.Fatalf("%d lines, want 400", n)
	}
	if !strings.Contains(b.String(), "g3 line 99\n") {
		t.Fatalf("a line is missing: %q", b.String())
	}
}
