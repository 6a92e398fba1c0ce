package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Malformed events between good ones go to the DLQ (read with kcat,
// read_committed) with their error code and source in the headers, once
// each; the good ones come out exactly once.
func TestDLQWithKcat(t *testing.T) {
	brokers := startBroker(t, "orders")
	lines, want := events(2_000)
	bad := map[string]string{
		"bad-1": `{"type":`,                 // truncated
		"bad-2": `not json at all`,          // not JSON
		"bad-3": `["an","array"]`,           // not an object
		"bad-4": `{"type":"order.created"}`, // no total: the filter fails
	}
	mixed := make([]string, 0, len(lines)+len(bad))
	i := 0
	for k, v := range bad {
		mixed = append(mixed, lines[i*400:(i+1)*400]...)
		mixed = append(mixed, k+"\t"+v)
		i++
	}
	mixed = append(mixed, lines[i*400:]...)
	kcatProduce(t, brokers, "orders", mixed)

	run := start(t, "run", "-c", writeConfig(t, brokers, t.TempDir()))
	got := kcatReadCommitted(t, brokers, len(want), 2*time.Minute, "orders.high-value")
	dlq, n := kcatHeaders(t, brokers, "e2e.dlq", len(bad), time.Minute)
	run.stop(t)
	checkOutputs(t, got, want)

	if n != len(bad) || len(dlq) != len(bad) {
		t.Fatalf("DLQ holds %d records of %d keys, want %d, one each: %v", n, len(dlq), len(bad), dlq)
	}
	for key, headers := range dlq {
		if _, ok := bad[key]; !ok {
			t.Errorf("unexpected DLQ record %s", key)
		}
		for _, h := range []string{"veltrix.error.code=VX5", "veltrix.rule=big-orders", "veltrix.source.topic=orders", "veltrix.source.offset="} {
			if !strings.Contains(headers, h) {
				t.Errorf("DLQ record %s: headers %q lack %q", key, headers, h)
			}
		}
	}
}

// kcatHeaders reads topic with read_committed until want records are there
// (or the timeout) and returns each record's headers by key, and how many
// records it read.
func kcatHeaders(t *testing.T, brokers, topic string, want int, timeout time.Duration) (map[string]string, int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, "kcat", "-C", "-b", brokers, "-t", topic,
			"-X", "isolation.level=read_committed", "-o", "beginning", "-e", "-q", "-f", "%k\t%h\n").Output()
		cancel()
		got, n := map[string]string{}, 0
		if err == nil {
			for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
				if k, h, ok := strings.Cut(string(line), "\t"); ok {
					got[k] = h
					n++
				}
			}
		}
		if n >= want || time.Now().After(deadline) {
			return got, n
		}
		time.Sleep(300 * time.Millisecond)
	}
}
