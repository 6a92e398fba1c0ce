package expr

import (
	"errors"
	"testing"
	"time"

	"github.com/veltrix/veltrix/pkg/diag"
)

// A nested comprehension over a large array in one event is stopped by the
// cost limit: a per-record VX5007 error, not a task stalled past its
// transaction timeout. A comprehension over a small array, and expressions
// without comprehensions, are not limited.
func TestCostLimit(t *testing.T) {
	env := mustEnv(t)
	big := make([]any, 3_000)
	for i := range big {
		big[i] = float64(i)
	}
	event := map[string]any{"items": big, "small": []any{1.0, 2.0, 3.0}}
	for _, tc := range []struct {
		src  string
		code diag.Code // "" for success
	}{
		{"event.items.all(a, !event.items.exists(b, a + b < 0.0))", diag.ExprCostExceeded},
		{"event.items.map(a, event.items.filter(b, b > a).size()).size() > 0", diag.ExprCostExceeded},
		{"event.small.all(a, event.small.exists(b, a + b > 0.0))", ""},
		{"event.items.size() > 10", ""},
	} {
		t.Run(tc.src, func(t *testing.T) {
			p, derr := env.Compile(tc.src, diag.Pos{File: "f.yaml", Line: 3, Column: 5, Path: "p"})
			if derr != nil {
				t.Fatal(derr)
			}
			start := time.Now()
			_, err := p.Bool(act(t, event, time.Now()))
			var d *diag.Error
			switch {
			case tc.code == "" && err != nil:
				t.Fatalf("error %v, want none", err)
			case tc.code != "" && (!errors.As(err, &d) || d.Code != tc.code):
				t.Fatalf("error %v (after %v), want %s", err, time.Since(start), tc.code)
			}
		})
	}
}
