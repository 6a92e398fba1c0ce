package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/testbroker"
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
	run.stop(t) // fails the test if the instance had stopped
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

// Every record of testdata/poison, between good records, with a null key and
// a record dated in 2100: the instance stays up, the good records come out
// exactly once, each poison is in the DLQ once with its code, and the
// null-keyed record is processed like any other.
func TestPoisonCorpus(t *testing.T) {
	codes := map[string]string{
		"truncated.json": "VX5001", "deep-nesting.json": "VX5001", "nul-in-string.json": "VX5001",
		"bom.json": "VX5001", "empty.bin": "VX5001", "invalid-utf8.json": "VX5001",
		"not-an-object.json": "VX5001", "number-too-big.json": "VX5001", "trailing-garbage.json": "VX5001",
		"duplicate-and-odd-types.json": "VX5002",
	}
	entries, err := os.ReadDir("../testdata/poison")
	if err != nil {
		t.Fatal(err)
	}
	var brokers string
	if testbroker.Kafka() {
		// Apache Kafka 4 refuses a record dated over an hour ahead
		// (message.timestamp.after.max.ms); a topic that allows it shows
		// Veltrix's own guard.
		brokers = testbroker.New(t, testbroker.WithTopicConfig("orders", 6,
			map[string]string{"message.timestamp.after.max.ms": "9223372036854775807"})).Addr()
	} else {
		brokers = startBroker(t, "orders")
	}
	lines, want := events(1_200)
	good := linesToRecords(lines)
	var recs []*kgo.Record
	expect := map[string]string{} // DLQ key -> code
	for _, e := range entries {
		if e.Name() == "README.md" {
			continue
		}
		code, ok := codes[e.Name()]
		if !ok {
			t.Fatalf("testdata/poison/%s has no expected code here", e.Name())
		}
		value, err := os.ReadFile(filepath.Join("../testdata/poison", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		key := "poison-" + e.Name()
		// 100 good records before each poison: the n-th poison follows
		// good[n*100:(n+1)*100] (README.md takes no slot, so the index
		// of the directory entry would overlap the records after them).
		n := len(expect)
		recs = append(recs, good[n*100:(n+1)*100]...)
		recs = append(recs, &kgo.Record{Topic: "orders", Key: []byte(key), Value: value})
		expect[key] = code
	}
	if len(expect) != len(codes) {
		t.Fatalf("testdata/poison has %d records, the test expects %d", len(expect), len(codes))
	}
	recs = append(recs, good[len(expect)*100:]...)
	// A null key (a filtered order) and an event dated in 2100.
	recs = append(recs,
		&kgo.Record{Topic: "orders", Value: []byte(`{"type":"order.paid","total":5}`)},
		&kgo.Record{Topic: "orders", Key: []byte("poison-2100"), Value: []byte(`{"type":"order.created","total":150}`),
			Timestamp: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)})
	expect["poison-2100"] = "VX5008"
	produceGo(t, brokers, recs)

	run := start(t, "run", "-c", writeConfig(t, brokers, t.TempDir()))
	got := kcatReadCommitted(t, brokers, len(want), 2*time.Minute, "orders.high-value")
	dlq, n := kcatHeaders(t, brokers, "e2e.dlq", len(expect), time.Minute)
	run.stop(t) // fails the test if the instance had stopped
	checkOutputs(t, got, want)
	if n != len(expect) {
		t.Errorf("DLQ holds %d records, want %d (one per poison)", n, len(expect))
	}
	for key, code := range expect {
		if h, ok := dlq[key]; !ok || !strings.Contains(h, "veltrix.error.code="+code) {
			t.Errorf("%s: DLQ headers %.200q, want code %s", key, h, code)
		}
	}
}
