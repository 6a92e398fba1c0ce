package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestPercentile(t *testing.T) {
	ms := func(xs ...int) []time.Duration {
		d := make([]time.Duration, len(xs))
		for i, x := range xs {
			d[i] = time.Duration(x) * time.Millisecond
		}
		return d
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name string
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", ms(7), 0.99, 7 * time.Millisecond},
		{"p50 of 1..100", ms(hundred...), 0.50, 50 * time.Millisecond},
		{"p99 of 1..100", ms(hundred...), 0.99, 99 * time.Millisecond},
		{"p100 of 1..100", ms(hundred...), 1, 100 * time.Millisecond},
		{"p0 is the minimum", ms(3, 4, 5), 0, 3 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.in, tt.q); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.in, tt.q, got, tt.want)
			}
		})
	}
}

func TestLatencyStatsSorts(t *testing.T) {
	d := []time.Duration{30 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond}
	p50, p99, mx := latencyStats(d)
	if p50 != 20 || p99 != 30 || mx != 30 {
		t.Errorf("latencyStats = %v, %v, %v; want 20, 30, 30", p50, p99, mx)
	}
}

func TestThroughput(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	tests := []struct {
		name       string
		m          measurement
		want       float64
		wantMethod string
	}{
		{"first write", measurement{firstWrite: at(1000), first: at(1200), nFirst: 100, last: at(2000)}, 1000, methodFirstWrite},
		{"no first write", measurement{first: at(1000), nFirst: 200, last: at(2000)}, 800, methodFirstRead},
		{"one batch", measurement{first: at(500), nFirst: 1000, last: at(500)}, 2000, methodWall},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, method := throughput(1000, start, tt.m)
			if got != tt.want || method != tt.wantMethod {
				t.Errorf("throughput = %v (%s), want %v (%s)", got, method, tt.want, tt.wantMethod)
			}
		})
	}
}

func TestAddRatios(t *testing.T) {
	rs := []result{
		{Scenario: "raw-eos", Status: statusOK, RecordsPerSec: 1000, RoundsPerSec: []float64{800, 1000, 1200}},
		{Scenario: "goka-count", Status: statusOK, RecordsPerSec: 100},
		{Scenario: "veltrix-stateless-eos", Baseline: "raw-eos", Status: statusOK, RecordsPerSec: 500, RoundsPerSec: []float64{500, 300, 600}},
		{Scenario: "veltrix-stateless-alo", Baseline: "raw-alo", Status: statusOK, RecordsPerSec: 500},
		{Scenario: "veltrix-aggregate-eos", Baseline: "raw-eos", Status: statusFailed},
		{Scenario: "restore", Status: statusOK, RecordsPerSec: 400, noRatio: true},
	}
	addRatios(rs)
	if rs[5].RatioToRaw != nil || rs[5].RatioToGoka != nil {
		t.Error("restore got a ratio")
	}
	if r := rs[2].RatioToRaw; r == nil || *r != 0.5 {
		t.Errorf("stateless-eos ratio_to_raw = %v, want 0.5", r)
	}
	// Rounds pair up in run order: each with its own round of raw-eos.
	if got, want := rs[2].RoundsRatioToRaw, []float64{0.625, 0.3, 0.5}; !slices.Equal(got, want) {
		t.Errorf("stateless-eos rounds_ratio_to_raw = %v, want %v", got, want)
	}
	if rs[3].RoundsRatioToRaw != nil || rs[0].RoundsRatioToRaw != nil {
		t.Error("a scenario without its baseline's rounds, or a baseline, got ratios by round")
	}
	if r := rs[2].RatioToGoka; r == nil || *r != 5 {
		t.Errorf("stateless-eos ratio_to_goka = %v, want 5", r)
	}
	if rs[3].RatioToRaw != nil {
		t.Errorf("stateless-alo has no raw-alo result, got ratio %v", *rs[3].RatioToRaw)
	}
	if rs[4].RatioToRaw != nil || rs[4].RatioToGoka != nil {
		t.Error("a failed scenario got ratios")
	}
	if rs[1].RatioToGoka != nil {
		t.Error("goka-count got a ratio to itself")
	}
}

func TestCopyChecker(t *testing.T) {
	rec := func(i int, v string) *kgo.Record { return &kgo.Record{Key: orderKey(i), Value: []byte(v)} }
	tests := []struct {
		name     string
		recs     []*kgo.Record
		complete bool
		wantErr  bool
	}{
		{"all once", []*kgo.Record{rec(0, `{"bench":"yes"}`), rec(1, `{"bench":"yes"}`)}, true, false},
		{"missing", []*kgo.Record{rec(0, `{"bench":"yes"}`)}, false, true},
		{"duplicate", []*kgo.Record{rec(0, `{"bench":"yes"}`), rec(1, `{"bench":"yes"}`), rec(1, `{"bench":"yes"}`)}, true, true},
		{"no marker", []*kgo.Record{rec(0, `{"bench":"yes"}`), rec(1, `{}`)}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCopyChecker(2, benchMarker)
			for _, r := range tt.recs {
				c.add(r)
			}
			if c.complete() != tt.complete {
				t.Errorf("complete = %v, want %v", c.complete(), tt.complete)
			}
			if err := c.verdict(); (err != nil) != tt.wantErr {
				t.Errorf("verdict = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestCountChecker(t *testing.T) {
	want := []int64{2, 1, 0}
	sums := []float64{3.5, 1, 0}
	rec := func(c int, v string) *kgo.Record { return &kgo.Record{Key: []byte(customerKey(c)), Value: []byte(v)} }
	tests := []struct {
		name    string
		exact   bool
		recs    []*kgo.Record
		wantErr bool
	}{
		{"every update", true, []*kgo.Record{rec(0, "1"), rec(1, "1"), rec(0, "2")}, false},
		{"missing update", true, []*kgo.Record{rec(1, "1"), rec(0, "2")}, true},
		{"coalesced ok", false, []*kgo.Record{rec(1, `{"count":1,"sum":1}`), rec(0, `{"count":2,"sum":3.5}`)}, false},
		{"wrong sum", false, []*kgo.Record{rec(1, `{"count":1,"sum":1}`), rec(0, `{"count":2,"sum":4}`)}, true},
		{"count too high", true, []*kgo.Record{rec(0, "1"), rec(1, "1"), rec(0, "3")}, true},
		{"last not final", true, []*kgo.Record{rec(0, "2"), rec(1, "1"), rec(0, "1")}, true},
		{"last sum wrong", false, []*kgo.Record{rec(0, `{"count":2,"sum":3.5}`), rec(1, `{"count":1,"sum":1}`), rec(0, `{"count":2,"sum":3}`)}, true},
		{"aggregate updates", true, []*kgo.Record{rec(0, `{"key":"c-000000","count":1,"sum":1.25}`), rec(1, `{"key":"c-000001","count":1,"sum":1}`), rec(0, `{"key":"c-000000","count":2,"sum":3.5}`)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCountChecker(want, sums, 3, tt.exact)
			for _, r := range tt.recs {
				c.add(r)
			}
			if err := c.verdict(); (err != nil) != tt.wantErr {
				t.Errorf("verdict = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestOrderEvent(t *testing.T) {
	v := orderEvent(nil, 42, 1234)
	if n, ok := sentNs(v); !ok || n != 1234 {
		t.Errorf("sentNs = %d, %v; want 1234", n, ok)
	}
	if l := len(orderEvent(nil, 999_999, 0)); l < 180 || l > 240 {
		t.Errorf("event is %d bytes, want about 200", l)
	}
	if want := fmt.Sprintf(`"customer_id":"%s"`, customerKey(customerOf(42))); !strings.Contains(string(v), want) {
		t.Errorf("event %s lacks %s", v, want)
	}
}

func TestLogField(t *testing.T) {
	line := `time=2025-11-26T10:00:00.000Z level=INFO msg="task restored" partition=3 took=1.25s`
	tests := []struct{ key, want string }{
		{"msg", "task restored"},
		{"took", "1.25s"},
		{"partition", "3"},
		{"addr", ""},
	}
	for _, tt := range tests {
		if got := logField(line, tt.key); got != tt.want {
			t.Errorf("logField(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
	l := &restoreLog{addr: make(chan string, 1)}
	l.line(`time=x level=INFO msg="http listening" addr=127.0.0.1:4321`)
	l.line(line)
	l.line(`time=x level=INFO msg="task restored" partition=4 took=750ms`)
	if a := <-l.addr; a != "127.0.0.1:4321" {
		t.Errorf("addr = %q", a)
	}
	if n, d := l.restored(); n != 2 || d != 2*time.Second {
		t.Errorf("restored = %d, %s; want 2, 2s", n, d)
	}
}

func TestGaugeValue(t *testing.T) {
	text := "# TYPE veltrix_restore_remaining_records gauge\n" +
		"veltrix_restore_remaining_records{store=\"other\"} 7\n" +
		"veltrix_restore_remaining_records{store=\"totals\"} 123456\n"
	series := `veltrix_restore_remaining_records{store="totals"}`
	if v, err := gaugeValue(text, series); err != nil || v != 123456 {
		t.Errorf("gaugeValue = %d, %v; want 123456", v, err)
	}
	if v, err := gaugeValue("", series); err != nil || v != 0 {
		t.Errorf("absent gauge = %d, %v; want 0", v, err)
	}
}

func TestLineWriter(t *testing.T) {
	var lines []string
	w := &lineWriter{fn: func(s string) { lines = append(lines, s) }}
	for _, p := range []string{"a", "b\nc", "\n", "d"} {
		if _, err := w.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(lines, "|") != "ab|c" {
		t.Errorf("lines = %q, want [ab c]", lines)
	}
}

func TestParseVmHWM(t *testing.T) {
	status := "Name:\tveltrix\nVmPeak:\t  900000 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  100000 kB\n"
	if v, ok := parseVmHWM(status); !ok || v != 200<<20 {
		t.Errorf("parseVmHWM = %d, %v; want %d", v, ok, 200<<20)
	}
	if _, ok := parseVmHWM("Name:\tx\n"); ok {
		t.Error("parseVmHWM found VmHWM in a status without it")
	}
}

func TestChildPeakRSS(t *testing.T) {
	if _, ok := vmHWM(os.Getpid()); !ok {
		t.Skip("no /proc/<pid>/status VmHWM on this system")
	}
	ballast := make([]byte, 64<<20) // the harness's RSS must not leak into the child's
	for i := range ballast {
		ballast[i] = 1
	}
	c, err := startChild("sleep", "0.3")
	if err != nil {
		t.Fatal(err)
	}
	<-c.exited
	_, rss := c.stop()
	if rss <= 0 || rss >= 32<<20 {
		t.Errorf("peak RSS of sleep = %d bytes, want a few MiB (not the harness's %d)", rss, len(ballast))
	}
}

func TestParseStatCPU(t *testing.T) {
	stat := "4242 (veltrix br) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0 100 0 0"
	if v, ok := parseStatCPU(stat); !ok || v != 3 {
		t.Errorf("parseStatCPU = %v, %v; want 3 (300 ticks)", v, ok)
	}
	if _, ok := parseStatCPU("garbage"); ok {
		t.Error("parseStatCPU accepted garbage")
	}
	if v, ok := parseStatCPU(mustRead(t, "/proc/self/stat")); !ok || v < 0 {
		t.Errorf("own CPU = %v, %v; want >= 0", v, ok)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("%s: %v", path, err)
	}
	return string(b)
}

func TestMedianRound(t *testing.T) {
	ok := func(rate float64, rss int64) result {
		return result{Scenario: "s", Status: statusOK, RecordsPerSec: rate, CPUSeconds: rate / 1000, PeakRSSBytes: rss}
	}
	tests := []struct {
		name    string
		rounds  []result
		status  string
		rate    float64
		rss     int64
		nRounds int
	}{
		{"one round is itself", []result{ok(5, 10)}, statusOK, 5, 10, 0},
		{"median of three, highest RSS", []result{ok(9, 10), ok(3, 30), ok(5, 20)}, statusOK, 5, 30, 3},
		{"lower middle of two", []result{ok(9, 10), ok(3, 10)}, statusOK, 3, 10, 2},
		{"a failed round fails the scenario", []result{ok(9, 10), failed("s", "wrong count"), ok(5, 10)}, statusFailed, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := medianRound(tt.rounds)
			if got.Status != tt.status || got.RecordsPerSec != tt.rate || got.PeakRSSBytes != tt.rss || len(got.RoundsPerSec) != tt.nRounds {
				t.Fatalf("got %s %v rss %d rounds %v", got.Status, got.RecordsPerSec, got.PeakRSSBytes, got.RoundsPerSec)
			}
			if got.Status == statusOK && got.CPUSeconds != tt.rate/1000 {
				t.Errorf("CPU %v is not the median round's", got.CPUSeconds)
			}
		})
	}
}

func TestParseAggValue(t *testing.T) {
	for _, in := range []string{
		`{"key":"c-000001","count":7,"sum":3412.57}`,
		`{"avg":2.5,"count":2,"key":"c-000001","sum":5}`,
		`{"count":1}`,
		`{"count":-3,"sum":-1.5e3}`,
		`{"count": 2, "sum": 4}`,
		`{"count":2.5,"sum":1}`,
		`{"count":2,"sum":"x"}`,
		`{"count":2,"sum":1`,
		`{"sum":1}`,
		`{"count":1,"sum":1}x`,
	} {
		var want aggValue
		wantOK := json.Unmarshal([]byte(in), &want) == nil
		got, ok := parseAggValue([]byte(in))
		if ok != wantOK || (ok && (got.Count != want.Count || (got.Sum == nil) != (want.Sum == nil) || (got.Sum != nil && *got.Sum != *want.Sum))) {
			t.Errorf("parseAggValue(%s) = %+v, %v; encoding/json gives %+v, %v", in, got, ok, want, wantOK)
		}
	}
}

// TestRawAggregateFields checks the raw aggregate's byte search on the
// harness's own events and that its output reads back as veltrix's does.
func TestRawAggregateFields(t *testing.T) {
	v := orderEvent(nil, 42, 0)
	cust, ok := fieldAfter(v, `"customer_id":"`, `"`)
	if !ok || string(cust) != customerKey(customerOf(42)) {
		t.Errorf("customer_id = %q, %v; want %s", cust, ok, customerKey(customerOf(42)))
	}
	total, ok := fieldAfter(v, `"total":`, ",}")
	if f, err := strconv.ParseFloat(string(total), 64); !ok || err != nil || f != totalOf(42) {
		t.Errorf("total = %q, %v; want %v", total, ok, totalOf(42))
	}
	if _, ok := fieldAfter([]byte(`{"total":1`), `"total":`, ",}"); ok {
		t.Error("an unterminated field was found")
	}
	got, ok := parseAggValue(appendAggValue(nil, "c-000001", 3, 12.5))
	if !ok || got.Count != 3 || got.Sum == nil || *got.Sum != 12.5 {
		t.Errorf("appendAggValue read back as %+v, %v", got, ok)
	}
}
