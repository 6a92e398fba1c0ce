package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/veltrix/veltrix/docs"
)

// outcomeRates are one rule's records by outcome: per second, or totals.
// In is every record the rule saw; Out those it passed on (matched).
type outcomeRates struct {
	In, Out, Filtered, DLQ, Errors float64
}

// snapshot is what the console reads from the metrics at one moment.
type snapshot struct {
	at        time.Time
	totals    map[string]outcomeRates // by rule
	rates     map[string]outcomeRates // by rule, over the window (current only)
	storeKeys map[string]float64
	restoring map[string]float64
	lag       map[lagKey]float64
}

type lagKey struct {
	topic     string
	partition int32
}

// rates keeps recent snapshots of the rule counters so the console shows
// rates over the last rateWindow without a goroutine of its own: a sample
// is taken when a page asks (at most one a second) and when the handler is
// made, so the first page shows the rate since the instance started.
type rates struct {
	g   prometheus.Gatherer
	now func() time.Time

	mu      sync.Mutex
	samples []snapshot // oldest first, within rateWindow of the newest, plus one older
}

const rateWindow = 60 * time.Second

func newRates(g prometheus.Gatherer, now func() time.Time) *rates {
	r := &rates{g: g, now: now}
	r.samples = append(r.samples, r.read())
	return r
}

// read gathers the metrics the console shows.
func (r *rates) read() snapshot {
	s := snapshot{at: r.now(), totals: map[string]outcomeRates{}, storeKeys: map[string]float64{},
		restoring: map[string]float64{}, lag: map[lagKey]float64{}}
	mfs, _ := r.g.Gather() // a partial gather still has what it could read
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch mf.GetName() {
			case "veltrix_rule_records_total":
				v := m.GetCounter().GetValue()
				t := s.totals[labels["rule"]]
				t.In += v
				switch labels["outcome"] {
				case "matched":
					t.Out += v
				case "filtered":
					t.Filtered += v
				case "dlq":
					t.DLQ += v
				case "error":
					t.Errors += v
				}
				s.totals[labels["rule"]] = t
			case "veltrix_state_store_keys":
				s.storeKeys[labels["store"]] = m.GetGauge().GetValue()
			case "veltrix_restore_remaining_records":
				s.restoring[labels["store"]] = m.GetGauge().GetValue()
			case "veltrix_consumer_lag":
				if p, err := strconv.ParseInt(labels["partition"], 10, 32); err == nil {
					s.lag[lagKey{labels["topic"], int32(p)}] = m.GetGauge().GetValue()
				}
			}
		}
	}
	return s
}

// current returns a fresh snapshot with rates over the window it covers.
func (r *rates) current() (snapshot, time.Duration) {
	s := r.read()
	r.mu.Lock()
	defer r.mu.Unlock()
	if last := r.samples[len(r.samples)-1]; s.at.Sub(last.at) >= time.Second {
		r.samples = append(r.samples, s)
	}
	// Keep one sample older than the window as the base of the rates.
	for len(r.samples) > 2 && s.at.Sub(r.samples[1].at) > rateWindow {
		r.samples = r.samples[1:]
	}
	base := r.samples[0]
	window := s.at.Sub(base.at)
	s.rates = map[string]outcomeRates{}
	if window > 0 {
		secs := window.Seconds()
		for rule, t := range s.totals {
			b := base.totals[rule]
			s.rates[rule] = outcomeRates{In: (t.In - b.In) / secs, Out: (t.Out - b.Out) / secs,
				Filtered: (t.Filtered - b.Filtered) / secs, DLQ: (t.DLQ - b.DLQ) / secs, Errors: (t.Errors - b.Errors) / secs}
		}
	}
	return s, window
}

// lags returns the consumer lag gauges now.
func (r *rates) lags() map[lagKey]float64 { return r.read().lag }

// errorDoc is one section of docs/errors.md.
type errorDoc struct {
	ID, Code, Title string
	Blocks          []docBlock
}

type docBlock struct {
	Code bool // a fenced block
	Text string
}

// parseErrorDocs splits the embedded docs/errors.md into its code sections.
func parseErrorDocs() []errorDoc {
	var out []errorDoc
	for _, sec := range strings.Split(docs.Errors, "\n## ")[1:] {
		head, rest, _ := strings.Cut(sec, "\n")
		code, title, ok := strings.Cut(head, ": ")
		if !ok || !strings.HasPrefix(code, "VX") {
			continue
		}
		d := errorDoc{ID: strings.ToLower(code), Code: code, Title: title}
		fenced := false
		var cur []string
		flush := func(code bool) {
			if text := strings.TrimSpace(strings.Join(cur, "\n")); text != "" {
				if !code {
					text = strings.ReplaceAll(text, "**", "")
				}
				d.Blocks = append(d.Blocks, docBlock{Code: code, Text: text})
			}
			cur = cur[:0]
		}
		for _, line := range strings.Split(rest, "\n") {
			switch {
			case strings.HasPrefix(line, "```"):
				flush(fenced)
				fenced = !fenced
			case !fenced && strings.TrimSpace(line) == "":
				flush(false)
			case !fenced && strings.HasPrefix(line, "#"):
				flush(false)
			default:
				cur = append(cur, line)
			}
		}
		flush(fenced)
		out = append(out, d)
	}
	return out
}

func (c *console) errors(_ *http.Request, d *pageData) error {
	d.Body = c.errDocs
	return nil
}
