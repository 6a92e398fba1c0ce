package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Records that would make a record too large to produce never stop the
// pipeline: an output a rule makes larger than kafka.max_record_bytes is a
// VX5006 failure of its record (to the DLQ), an error message quoting a
// 600,000-digit number is cut, and a DLQ record that would not fit (an input
// near the limit) is shortened. The good records around them come out
// exactly once, and each poison is in the DLQ once with its code.
func TestOversizedRecordsGoToTheDLQ(t *testing.T) {
	brokers := startBroker(t, "orders")
	lines, want := events(1_500)
	cfg := writeAppConfig(t, "e2e", brokers, t.TempDir(), `
  - name: big-orders
    from: orders
    on_error: dlq
    steps:
      - filter: event.type == "order.created" && event.total >= 100
      - set: {flag: '"high_value"', cents: int(event.total * 100.0), note_copy: 'has(event.note) ? event.note : ""'}
      - to: orders.high-value
`)
	poison := map[string]struct {
		value string
		code  string
		cut   bool
	}{
		// 600 KB note, copied: the output is 1.2 MB.
		"p-bignote": {fmt.Sprintf(`{"type":"order.created","total":500,"note":%q}`, strings.Repeat("n", 600_000)), "VX5006", false},
		// A number of 600,000 digits.
		"p-bignumber": {`{"type":"order.created","total":1` + strings.Repeat("0", 600_000) + `}`, "VX5", false},
		// Malformed, near the limit: the DLQ record must be shortened.
		"p-nearlimit": {`{"type":"order.created","total":` + strings.Repeat("9", 999_800), "VX5001", true},
	}
	recs := make([]*kgo.Record, 0, len(lines)+len(poison))
	i := 0
	for k, p := range poison {
		recs = append(recs, linesToRecords(lines[i*500:(i+1)*500])...)
		recs = append(recs, &kgo.Record{Topic: "orders", Key: []byte(k), Value: []byte(p.value)})
		i++
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ProducerBatchMaxBytes(1_040_000), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	cl.Close()

	run := start(t, "run", "-c", cfg)
	got := kcatReadCommitted(t, brokers, len(want), 2*time.Minute, "orders.high-value")
	dlq, n := kcatHeaders(t, brokers, "e2e.dlq", len(poison), time.Minute)
	select {
	case err := <-run.done:
		t.Fatalf("veltrix run exited: %v", err)
	default:
	}
	run.stop(t)
	checkOutputs(t, got, want)
	if n != len(poison) {
		t.Fatalf("DLQ holds %d records, want %d (one per poison): %v", n, len(poison), dlq)
	}
	for k, p := range poison {
		h, ok := dlq[k]
		switch {
		case !ok:
			t.Errorf("%s is not in the DLQ", k)
		case !strings.Contains(h, "veltrix.error.code="+p.code):
			t.Errorf("%s: DLQ headers %.300s lack code %s", k, h, p.code)
		case strings.Contains(h, "veltrix.dlq.truncated=") != p.cut:
			t.Errorf("%s: DLQ record shortened: %v, want %v (headers %.300s)", k, !p.cut, p.cut, h)
		case len(h) > 2000:
			t.Errorf("%s: DLQ headers are %d bytes: the error message was not cut", k, len(h))
		}
	}
}

// linesToRecords turns kcat input lines ("key\tvalue") into records of
// topic orders.
func linesToRecords(lines []string) []*kgo.Record {
	out := make([]*kgo.Record, len(lines))
	for i, l := range lines {
		k, v, _ := strings.Cut(l, "\t")
		out[i] = &kgo.Record{Topic: "orders", Key: []byte(k), Value: []byte(v)}
	}
	return out
}
