package quickstart

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/veltrix/veltrix/internal/testlog"
)

var outRE = regexp.MustCompile(`out (\d+)  dlq (\d+)`)

// The quickstart runs the bundled example end to end: events flow to the
// outputs and malformed ones to the DLQ, and it stops cleanly.
func TestQuickstartShowsEventsFlowing(t *testing.T) {
	out := &testlog.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Rate: 1000, Every: 100 * time.Millisecond, Out: out,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}()
	deadline := time.Now().Add(90 * time.Second)
	for {
		if m := outRE.FindAllStringSubmatch(out.String(), -1); len(m) > 0 {
			last := m[len(m)-1]
			outs, _ := strconv.Atoi(last[1])
			dlq, _ := strconv.Atoi(last[2])
			if outs > 0 && dlq > 0 {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("quickstart stopped early: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no outputs and DLQ records within 90s:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("quickstart returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("quickstart did not stop within 30s of cancellation")
	}
	if !bytes.Contains([]byte(out.String()), []byte("stopped after")) {
		t.Errorf("no summary line:\n%s", out.String())
	}
}
