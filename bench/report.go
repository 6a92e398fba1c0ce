package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Result statuses.
const (
	statusOK     = "ok"
	statusFailed = "failed"
)

// result is one scenario's row in the table and in results.json.
type result struct {
	Scenario       string    `json:"scenario"`
	Broker         string    `json:"broker"` // brokerDev or brokerKafka
	Status         string    `json:"status"`
	Records        int       `json:"records"`
	RecordsPerSec  float64   `json:"records_per_sec"`
	MBPerSec       float64   `json:"mb_per_sec"`
	CPUSeconds     float64   `json:"cpu_seconds"`
	PeakRSSBytes   int64     `json:"peak_rss_bytes"`
	P50Ms          *float64  `json:"p50_ms,omitempty"`
	P99Ms          *float64  `json:"p99_ms,omitempty"`
	MaxMs          *float64  `json:"max_ms,omitempty"`
	WallSeconds    float64   `json:"wall_seconds,omitempty"`           // process start until the output was complete
	StartupSeconds float64   `json:"startup_seconds,omitempty"`        // process start until the first output was visible
	Method         string    `json:"method,omitempty"`                 // how records_per_sec was timed (see throughput)
	BrokerCPU      float64   `json:"broker_cpu_seconds,omitempty"`     // the broker's CPU time over the whole scenario
	RoundsPerSec   []float64 `json:"rounds_records_per_sec,omitempty"` // records/s of every round, in run order
	Baseline       string    `json:"baseline,omitempty"`
	RatioToRaw     *float64  `json:"ratio_to_raw,omitempty"`
	// RoundsRatioToRaw is each round's records/s over its baseline's in
	// the same round: rounds run every scenario in turn, so a pair shares
	// the machine's state of the moment, where the median rows may not.
	RoundsRatioToRaw []float64 `json:"rounds_ratio_to_raw,omitempty"`
	RatioToGoka      *float64  `json:"ratio_to_goka,omitempty"`
	// KStreams is the Kafka Streams scenario doing the same work; the
	// ratios to it are this row's records/s (throughput rows), peak RSS
	// and p99 (latency rows) over that row's, where both are ok.
	KStreams           string   `json:"kstreams,omitempty"`
	RatioToKStreams    *float64 `json:"ratio_to_kstreams,omitempty"`
	RSSRatioToKStreams *float64 `json:"rss_ratio_to_kstreams,omitempty"`
	P99RatioToKStreams *float64 `json:"p99_ratio_to_kstreams,omitempty"`
	Note               string   `json:"note,omitempty"`

	// noRatio marks a rate that is not stream throughput (restore), so it
	// gets no ratios.
	noRatio bool
}

func failed(name, note string) result {
	return result{Scenario: name, Status: statusFailed, Note: note}
}

// Throughput methods (result.Method).
const (
	methodFirstWrite = "first-write"
	methodFirstRead  = "first-read"
	methodWall       = "wall"
)

// throughput is records over the time from the processor's first output
// write (seen by a read_uncommitted probe, before any commit) to the moment
// the last output record was read with read_committed. Process start-up and
// group join are left out; the last commit is in. Without a first write it
// falls back to the records after the first read batch over the time from that
// batch to the last one, and with a single batch to records over the time
// since the process started.
func throughput(records int, started time.Time, m measurement) (float64, string) {
	if span := m.last.Sub(m.firstWrite); !m.firstWrite.IsZero() && span > 0 {
		return float64(records) / span.Seconds(), methodFirstWrite
	}
	if span := m.last.Sub(m.first); span > 0 && records > m.nFirst {
		return float64(records-m.nFirst) / span.Seconds(), methodFirstRead
	}
	if wall := m.last.Sub(started); wall > 0 {
		return float64(records) / wall.Seconds(), methodWall
	}
	return 0, methodWall
}

// percentile returns the q-th quantile (0..1) of sorted values by the
// nearest-rank method; 0 for no values.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// latencyStats sorts d in place and returns p50, p99 and max in milliseconds.
func latencyStats(d []time.Duration) (p50, p99, maxMs float64) {
	slices.Sort(d)
	ms := func(x time.Duration) float64 { return float64(x) / float64(time.Millisecond) }
	if len(d) == 0 {
		return 0, 0, 0
	}
	return ms(percentile(d, 0.50)), ms(percentile(d, 0.99)), ms(d[len(d)-1])
}

// medianRound merges a scenario's rounds into its row: a failed round
// fails the scenario (correctness first); otherwise the row is the round
// with the median records/s (of an even count, the lower of the middle
// two), with the highest peak RSS of all rounds, and every round's rate.
func medianRound(rs []result) result {
	for _, r := range rs {
		if r.Status != statusOK {
			return r
		}
	}
	if len(rs) == 1 {
		return rs[0]
	}
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, func(a, b result) int { return cmp.Compare(a.RecordsPerSec, b.RecordsPerSec) })
	m := sorted[(len(sorted)-1)/2]
	for _, r := range rs {
		m.PeakRSSBytes = max(m.PeakRSSBytes, r.PeakRSSBytes)
		m.RoundsPerSec = append(m.RoundsPerSec, r.RecordsPerSec)
	}
	return m
}

// addRatios sets ratio_to_raw (records/s against the scenario's raw baseline)
// and ratio_to_goka (against goka-count) where both sides are ok, and the
// ratios to raw by round where both ran the same rounds.
func addRatios(rs []result) {
	rate := map[string]float64{}
	rounds := map[string][]float64{}
	for _, r := range rs {
		if r.Status == statusOK && r.RecordsPerSec > 0 {
			rate[r.Scenario] = r.RecordsPerSec
			rounds[r.Scenario] = r.RoundsPerSec
		}
	}
	for i := range rs {
		r := &rs[i]
		if r.Status != statusOK || r.RecordsPerSec == 0 || r.P50Ms != nil || r.noRatio {
			continue
		}
		if b, ok := rate[r.Baseline]; ok && r.Baseline != "" {
			v := r.RecordsPerSec / b
			r.RatioToRaw = &v
			if br := rounds[r.Baseline]; len(r.RoundsPerSec) > 1 && len(br) == len(r.RoundsPerSec) && !slices.Contains(br, 0) {
				r.RoundsRatioToRaw = make([]float64, len(br))
				for j := range br {
					r.RoundsRatioToRaw[j] = r.RoundsPerSec[j] / br[j]
				}
			}
		}
		if g, ok := rate["goka-count"]; ok && r.Scenario != "goka-count" {
			v := r.RecordsPerSec / g
			r.RatioToGoka = &v
		}
	}
}

// addKStreamsRatios compares each row that names a Kafka Streams
// counterpart with it, where both are ok: records/s for throughput rows,
// p99 for latency rows, peak RSS for both.
func addKStreamsRatios(rs []result) {
	byName := map[string]result{}
	for _, r := range rs {
		if r.Status == statusOK {
			byName[r.Scenario] = r
		}
	}
	ratio := func(a, b float64) *float64 {
		if a <= 0 || b <= 0 {
			return nil
		}
		v := a / b
		return &v
	}
	for i := range rs {
		r := &rs[i]
		k, ok := byName[r.KStreams]
		if r.Status != statusOK || r.KStreams == "" || !ok {
			continue
		}
		r.RSSRatioToKStreams = ratio(float64(r.PeakRSSBytes), float64(k.PeakRSSBytes))
		if r.P99Ms != nil {
			if k.P99Ms != nil {
				r.P99RatioToKStreams = ratio(*r.P99Ms, *k.P99Ms)
			}
			continue
		}
		r.RatioToKStreams = ratio(r.RecordsPerSec, k.RecordsPerSec)
	}
}

// vsKStreams is the "vs Kafka Streams" cell of a row: its records/s over
// its Kafka Streams counterpart's, or for a latency row "p99 " and its p99
// over the counterpart's.
func vsKStreams(r result) string {
	switch {
	case r.RatioToKStreams != nil:
		return fmt.Sprintf("%.2f", *r.RatioToKStreams)
	case r.P99RatioToKStreams != nil:
		return fmt.Sprintf("p99 %.2f", *r.P99RatioToKStreams)
	}
	return "-"
}

// printTable writes the human-readable table.
func printTable(w io.Writer, broker string, rs []result, avgBytes float64) {
	fmt.Fprintf(w, "\nbroker: %s; records avg %.0f B; records/s from the first output write to the last read_committed record (see docs/benchmarks.md)\n", broker, avgBytes)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tstatus\trecords\trecords/s\tMB/s\tCPU s\tpeak RSS MiB\tp50 ms\tp99 ms\tx raw\tx goka\tvs Kafka Streams\t")
	opt := func(p *float64, format string) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprintf(format, *p)
	}
	for _, r := range rs {
		if r.Status != statusOK {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t\n", r.Scenario, r.Status)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.1f\t%.1f\t%.0f\t%s\t%s\t%s\t%s\t%s\t\n", r.Scenario, r.Status, r.Records,
			r.RecordsPerSec, r.MBPerSec, r.CPUSeconds, float64(r.PeakRSSBytes)/(1<<20),
			opt(r.P50Ms, "%.1f"), opt(r.P99Ms, "%.1f"), opt(r.RatioToRaw, "%.2f"), opt(r.RatioToGoka, "%.2f"), vsKStreams(r))
	}
	_ = tw.Flush()
	for _, r := range rs {
		if r.Note != "" {
			fmt.Fprintf(w, "  %s: %s\n", r.Scenario, r.Note)
		}
		if len(r.RoundsPerSec) > 1 {
			rates := make([]string, len(r.RoundsPerSec))
			for i, v := range r.RoundsPerSec {
				rates[i] = fmt.Sprintf("%.0f", v)
			}
			fmt.Fprintf(w, "  %s: records/s by round %s (the median is shown)\n", r.Scenario, strings.Join(rates, ", "))
		}
		if len(r.RoundsRatioToRaw) > 0 {
			ratios := make([]string, len(r.RoundsRatioToRaw))
			for i, v := range r.RoundsRatioToRaw {
				ratios[i] = fmt.Sprintf("%.3f", v)
			}
			fmt.Fprintf(w, "  %s: x %s by round %s\n", r.Scenario, r.Baseline, strings.Join(ratios, ", "))
		}
		if r.RSSRatioToKStreams != nil {
			fmt.Fprintf(w, "  %s: peak RSS x %s %.2f\n", r.Scenario, r.KStreams, *r.RSSRatioToKStreams)
		}
	}
}

// writeJSON writes the results atomically.
func writeJSON(path string, rs []result) error {
	b, err := json.MarshalIndent(rs, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}
