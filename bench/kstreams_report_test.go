package main

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func fptr(v float64) *float64 { return &v }

func TestAddKStreamsRatios(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name               string
		rows               []result
		row                int // the row checked
		wantRate           *float64
		wantRSS            *float64
		wantP99            *float64
		wantCell           string
		wantOtherUntouched bool
	}{
		{
			name: "throughput pair",
			rows: []result{
				{Scenario: "veltrix-stateless-eos", KStreams: "kstreams-stateless-eos", Status: statusOK, RecordsPerSec: 300, PeakRSSBytes: 100 * mib},
				{Scenario: "kstreams-stateless-eos", Status: statusOK, RecordsPerSec: 200, PeakRSSBytes: 400 * mib},
			},
			wantRate: fptr(1.5), wantRSS: fptr(0.25), wantCell: "1.50",
		},
		{
			name: "latency pair compares p99, not records/s",
			rows: []result{
				{Scenario: "latency", KStreams: "kstreams-latency", Status: statusOK, RecordsPerSec: 10000, PeakRSSBytes: 50 * mib, P50Ms: fptr(50), P99Ms: fptr(90)},
				{Scenario: "kstreams-latency", Status: statusOK, RecordsPerSec: 10000, PeakRSSBytes: 500 * mib, P50Ms: fptr(60), P99Ms: fptr(120)},
			},
			wantRSS: fptr(0.1), wantP99: fptr(0.75), wantCell: "p99 0.75",
		},
		{
			name: "counterpart failed",
			rows: []result{
				{Scenario: "veltrix-aggregate-eos", KStreams: "kstreams-aggregate-eos", Status: statusOK, RecordsPerSec: 300, PeakRSSBytes: mib},
				{Scenario: "kstreams-aggregate-eos", Status: statusFailed},
			},
			wantCell: "-",
		},
		{
			name: "counterpart not run (dev broker)",
			rows: []result{
				{Scenario: "veltrix-aggregate-eos", KStreams: "kstreams-aggregate-eos", Status: statusOK, RecordsPerSec: 300, PeakRSSBytes: mib},
			},
			wantCell: "-",
		},
		{
			name: "this row failed",
			rows: []result{
				{Scenario: "veltrix-stateless-eos", KStreams: "kstreams-stateless-eos", Status: statusFailed},
				{Scenario: "kstreams-stateless-eos", Status: statusOK, RecordsPerSec: 200, PeakRSSBytes: mib},
			},
			wantCell: "-",
		},
		{
			name: "no counterpart named",
			rows: []result{
				{Scenario: "raw-eos", Status: statusOK, RecordsPerSec: 300, PeakRSSBytes: mib},
				{Scenario: "kstreams-stateless-eos", Status: statusOK, RecordsPerSec: 200, PeakRSSBytes: mib},
			},
			wantCell: "-",
		},
	}
	eq := func(a, b *float64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	show := func(p *float64) any {
		if p == nil {
			return nil
		}
		return *p
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addKStreamsRatios(tt.rows)
			r := tt.rows[tt.row]
			if !eq(r.RatioToKStreams, tt.wantRate) {
				t.Errorf("ratio_to_kstreams = %v, want %v", show(r.RatioToKStreams), show(tt.wantRate))
			}
			if !eq(r.RSSRatioToKStreams, tt.wantRSS) {
				t.Errorf("rss_ratio_to_kstreams = %v, want %v", show(r.RSSRatioToKStreams), show(tt.wantRSS))
			}
			if !eq(r.P99RatioToKStreams, tt.wantP99) {
				t.Errorf("p99_ratio_to_kstreams = %v, want %v", show(r.P99RatioToKStreams), show(tt.wantP99))
			}
			if got := vsKStreams(r); got != tt.wantCell {
				t.Errorf("vs Kafka Streams cell = %q, want %q", got, tt.wantCell)
			}
			for i, o := range tt.rows {
				if i != tt.row && (o.RatioToKStreams != nil || o.RSSRatioToKStreams != nil || o.P99RatioToKStreams != nil) {
					t.Errorf("row %s got a ratio to Kafka Streams", o.Scenario)
				}
			}
		})
	}
}

func TestPrintTableKStreamsColumn(t *testing.T) {
	rs := []result{
		{Scenario: "veltrix-stateless-eos", KStreams: "kstreams-stateless-eos", Status: statusOK, Records: 10, RecordsPerSec: 300, PeakRSSBytes: 1 << 20},
		{Scenario: "kstreams-stateless-eos", Status: statusOK, Records: 10, RecordsPerSec: 200, PeakRSSBytes: 4 << 20},
		{Scenario: "kstreams-aggregate-eos", Status: statusFailed, Note: "timed out"},
	}
	addKStreamsRatios(rs)
	var b bytes.Buffer
	printTable(&b, brokerLabel(brokerKafka), rs, 230)
	out := b.String()
	lines := strings.Split(out, "\n")
	row := func(prefix string) []string {
		for _, l := range lines {
			if f := strings.Fields(l); len(f) > 0 && f[0] == prefix {
				return f
			}
		}
		t.Fatalf("no row %s in:\n%s", prefix, out)
		return nil
	}
	for _, want := range []string{"broker: Apache Kafka", "vs Kafka Streams", "veltrix-stateless-eos: peak RSS x kstreams-stateless-eos 0.25"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	tests := []struct {
		scenario, lastCell string
		cells              int
	}{
		{"scenario", "Streams", 21}, // the header, split at its spaces
		{"veltrix-stateless-eos", "1.50", 12},
		{"kstreams-stateless-eos", "-", 12},
		{"kstreams-aggregate-eos", "-", 12},
	}
	for _, tt := range tests {
		f := row(tt.scenario)
		if len(f) != tt.cells || f[len(f)-1] != tt.lastCell {
			t.Errorf("row %s = %q, want %d cells ending %q", tt.scenario, f, tt.cells, tt.lastCell)
		}
	}
}

func TestResultJSONKeepsFieldsAndAddsBroker(t *testing.T) {
	r := result{Scenario: "kstreams-latency", Broker: brokerKafka, Status: statusOK, RecordsPerSec: 10000,
		CPUSeconds: 3.5, PeakRSSBytes: 1 << 28, P50Ms: fptr(52), P99Ms: fptr(104)}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key  string
		want any
	}{
		{"scenario", "kstreams-latency"},
		{"broker", "kafka"},
		{"status", "ok"},
		{"records_per_sec", 10000.0},
		{"cpu_seconds", 3.5},
		{"peak_rss_bytes", float64(1 << 28)},
		{"p50_ms", 52.0},
		{"p99_ms", 104.0},
	}
	for _, tt := range tests {
		if got, ok := m[tt.key]; !ok || got != tt.want {
			t.Errorf("results.json %s = %v (present %v), want %v", tt.key, got, ok, tt.want)
		}
	}
}

func TestKafkaReadyAddr(t *testing.T) {
	tests := []struct {
		name, out, want string
		ok              bool
	}{
		{"last line", "Apache Kafka 4.4.0: 1 node(s), data and logs in /tmp/k\nready 127.0.0.1:24000\n", "127.0.0.1:24000", true},
		{"with Maven's note first", "resolving Apache Kafka 4.4.0 with Maven (first use; later starts are offline)\nready 127.0.0.1:31000", "127.0.0.1:31000", true},
		{"no ready line", "kafka.sh: node 1 exited during start\n", "", false},
		{"empty ready", "ready \n", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := kafkaReadyAddr(tt.out)
			if got != tt.want || ok != tt.ok {
				t.Errorf("kafkaReadyAddr = %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestLoadConfigBroker(t *testing.T) {
	tests := []struct {
		name, broker string
		wantErr      bool
		wantKStreams bool
	}{
		{"default is the dev broker, without Kafka Streams", "", false, false},
		{"dev", "dev", false, false},
		{"kafka adds the Kafka Streams scenarios", "kafka", false, true},
		{"unknown", "redpanda", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("BENCH_BROKER", tt.broker)
			t.Setenv("BENCH_SCENARIOS", "")
			c, err := loadConfig()
			if (err != nil) != tt.wantErr {
				t.Fatalf("loadConfig: %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			want := brokerDev
			if tt.broker != "" {
				want = tt.broker
			}
			if c.broker != want {
				t.Errorf("broker = %q, want %q", c.broker, want)
			}
			for _, name := range []string{"kstreams-stateless-eos", "kstreams-aggregate-eos", "kstreams-latency"} {
				if got := slices.Contains(c.scenarios, name); got != tt.wantKStreams {
					t.Errorf("default scenarios include %s: %v, want %v", name, got, tt.wantKStreams)
				}
			}
			if !slices.Contains(c.scenarios, "veltrix-aggregate-eos") {
				t.Error("default scenarios lack veltrix-aggregate-eos")
			}
		})
	}
}

// TestKStreamsVersionIsTheBrokers keeps Kafka Streams at the version of the
// broker the benchmark and the tests run (deploy/kafka/pom.xml).
func TestKStreamsVersionIsTheBrokers(t *testing.T) {
	version := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`<kafka\.version>([^<]+)</kafka\.version>`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("%s: no <kafka.version>", path)
		}
		return string(m[1])
	}
	broker, streams := version("../deploy/kafka/pom.xml"), version("kstreams/pom.xml")
	if broker != streams {
		t.Errorf("bench/kstreams/pom.xml has Kafka Streams %s, the broker (deploy/kafka/pom.xml) is %s", streams, broker)
	}
}
