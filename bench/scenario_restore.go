package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// restoreStore is the store the restore scenario fills and restores.
const restoreStore = "totals"

// restoreSteps keeps one result per order (the group key defaults to the
// record key, and every order id is distinct), so the store's changelog
// holds one record per input record. The rule has no output: the store is
// all it produces.
const restoreSteps = `      - aggregate: {store: ` + restoreStore + `, count: true, sum: event.total}
`

// restoreSamples is how many keys are read back through the query API after
// the restore, to check the restored values.
const restoreSamples = 1000

// restoreScenario times how long a fresh `veltrix run` instance (empty state
// dir) takes to restore a store from its changelog.
//
// A first instance runs the aggregate rule over cfg.restoreRecords orders with
// distinct keys and is stopped once its group has committed the whole input,
// so the store's changelog holds that many records (each key written once).
// A second instance with the same app id and an empty state dir is then timed
// from process start until /readyz answers 200: start-up, group join, the
// restore of every task and the first poll. Sampled keys are then read back
// through GET /v1/stores/{store}/{key} and checked.
func restoreScenario(ctx context.Context, h *harness) result {
	const name = "restore"
	if h.veltrix == "" {
		return failed(name, fmt.Sprintf("veltrix binary not available: %v", h.buildErr))
	}
	n := h.cfg.restoreRecords
	id := h.scenarioID(name)
	app := "bench-" + id
	defer h.deleteTopics(id)

	in := h.input
	if n != h.cfg.records {
		in = "bench-in-" + id
		if err := h.createTopic(ctx, in); err != nil {
			return failed(name, err.Error())
		}
		if _, err := h.fillOrders(ctx, in, n); err != nil {
			return failed(name, err.Error())
		}
	}

	logf("%s: building a changelog of %d records with a first instance", name, n)
	build, err := h.buildChangelog(ctx, name, app, in)
	if err != nil {
		return failed(name, "building the changelog: "+err.Error())
	}
	changelog := app + "." + restoreStore + ".changelog"
	var offsets int64
	if ends, err := h.adm.ListCommittedOffsets(ctx, changelog); err == nil {
		ends.Each(func(o kadm.ListedOffset) { offsets += o.Offset })
	}
	logf("%s: changelog %s built in %.1fs (%d offsets, records and transaction markers)", name, changelog, build.Seconds(), offsets)

	dir := filepath.Join(h.tmp, app, "restore")
	path, err := h.writeVeltrixConfig(dir, app, filepath.Join(dir, "state"), guaranteeEOS, "127.0.0.1:0", in, restoreSteps)
	if err != nil {
		return failed(name, err.Error())
	}
	logs := &restoreLog{addr: make(chan string, 1)}
	c, err := h.runVeltrix(logs.line, path)
	if err != nil {
		return failed(name, err.Error())
	}
	defer c.stop()

	ready, maxRemaining, base, err := waitReady(ctx, c, logs, h.cfg.timeout)
	if err != nil {
		return failed(name, err.Error())
	}
	took := ready.Sub(c.started)
	logf("%s: ready after %.2fs", name, took.Seconds())

	remaining, err := restoreRemaining(base)
	if err == nil && remaining != 0 {
		err = fmt.Errorf("veltrix_restore_remaining_records is %d after /readyz", remaining)
	}
	if err != nil {
		return failed(name, err.Error())
	}
	avgBytes, err := checkRestored(base, n)
	if err != nil {
		return failed(name, "wrong restored state: "+err.Error())
	}
	cpu, rss := c.stop()

	rps := float64(n) / took.Seconds()
	tasks, taskTime := logs.restored()
	return result{Status: statusOK, Records: n, RecordsPerSec: rps, MBPerSec: rps * avgBytes / 1e6,
		CPUSeconds: cpu, PeakRSSBytes: rss, WallSeconds: took.Seconds(), Method: "start-to-ready", noRatio: true,
		Note: fmt.Sprintf("process start to /readyz 200 in %.2fs; %d tasks restored in %.2fs per the log; "+
			"max remaining gauge seen %d; changelog built by a first instance in %.1fs; %d sampled keys verified",
			took.Seconds(), tasks, taskTime.Seconds(), maxRemaining, build.Seconds(), min(n, restoreSamples))}
}

// buildChangelog runs the restore rule with a first instance over in until
// its group (app) has committed every input offset (exactly once, so the
// changelog records of those offsets are committed too), then stops it.
func (h *harness) buildChangelog(ctx context.Context, name, app, in string) (time.Duration, error) {
	dir := filepath.Join(h.tmp, app, "build")
	path, err := h.writeVeltrixConfig(dir, app, filepath.Join(dir, "state"), guaranteeEOS, "127.0.0.1:0", in, restoreSteps)
	if err != nil {
		return 0, err
	}
	c, err := h.runVeltrix(nil, path)
	if err != nil {
		return 0, err
	}
	defer c.stop()
	ends, err := h.adm.ListEndOffsets(ctx, in)
	if err != nil {
		return 0, fmt.Errorf("list end offsets of %s: %w", in, err)
	}
	var end int64
	ends.Each(func(o kadm.ListedOffset) { end += o.Offset })

	deadline := c.started.Add(h.cfg.timeout)
	lastLog := time.Now()
	var done int64
	for {
		if c.hasExited() {
			return 0, errors.New(c.exitNote())
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("timed out after %s with %d of %d input offsets committed", h.cfg.timeout, done, end)
		}
		if offs, err := h.adm.FetchOffsets(ctx, app); err == nil {
			done = 0
			for _, o := range offs[in] {
				if o.Err == nil {
					done += o.At
				}
			}
		}
		if done >= end {
			break
		}
		if time.Since(lastLog) > 2*time.Second {
			lastLog = time.Now()
			logf("%s: first instance committed %d of %d input offsets (%.0fs)", name, done, end, time.Since(c.started).Seconds())
		}
		time.Sleep(200 * time.Millisecond)
	}
	took := time.Since(c.started)
	c.stop()
	return took, nil
}

// restoreLog collects what the restoring instance logs: its HTTP address and
// how long each task's restore took.
type restoreLog struct {
	addr chan string

	mu    sync.Mutex
	tasks int
	took  time.Duration
}

// line handles one stderr line (slog's text format).
func (l *restoreLog) line(s string) {
	switch {
	case strings.Contains(s, `msg="http listening"`):
		if a := logField(s, "addr"); a != "" {
			select {
			case l.addr <- a:
			default:
			}
		}
	case strings.Contains(s, `msg="task restored"`):
		d, err := time.ParseDuration(logField(s, "took"))
		if err == nil {
			l.mu.Lock()
			l.tasks++
			l.took += d
			l.mu.Unlock()
		}
	}
}

// restored returns the tasks restored so far and their total restore time.
func (l *restoreLog) restored() (int, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tasks, l.took
}

// logField returns the value of key=value in a slog text line ("" if absent);
// a quoted value is unquoted.
func logField(line, key string) string {
	i := strings.Index(line, " "+key+"=")
	if i < 0 {
		return ""
	}
	v := line[i+len(key)+2:]
	if strings.HasPrefix(v, `"`) {
		if u, err := strconv.QuotedPrefix(v); err == nil {
			s, _ := strconv.Unquote(u)
			return s
		}
		return ""
	}
	if j := strings.IndexByte(v, ' '); j >= 0 {
		v = v[:j]
	}
	return v
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// waitReady waits for the instance's HTTP address, then polls /readyz every
// 10 ms until it answers 200 (and, every 200 ms, the restore gauge, whose
// largest value it returns). It returns when /readyz first answered 200 and
// the base URL.
func waitReady(ctx context.Context, c *child, logs *restoreLog, timeout time.Duration) (time.Time, int64, string, error) {
	deadline := c.started.Add(timeout)
	var base string
	select {
	case a := <-logs.addr:
		base = "http://" + a
	case <-c.exited:
		return time.Time{}, 0, "", errors.New(c.exitNote())
	case <-time.After(time.Until(deadline)):
		return time.Time{}, 0, "", errors.New("no http listening line in the log")
	case <-ctx.Done():
		return time.Time{}, 0, "", ctx.Err()
	}
	var maxRemaining int64
	lastMetrics, lastLog := time.Time{}, time.Now()
	for {
		resp, err := httpClient.Get(base + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Now(), maxRemaining, base, nil
			}
		}
		if time.Since(lastMetrics) >= 200*time.Millisecond {
			lastMetrics = time.Now()
			if r, err := restoreRemaining(base); err == nil {
				maxRemaining = max(maxRemaining, r)
			}
		}
		if time.Since(lastLog) > 2*time.Second {
			lastLog = time.Now()
			tasks, _ := logs.restored()
			logf("restore: not ready yet (%.0fs, %d tasks restored, max remaining seen %d)", time.Since(c.started).Seconds(), tasks, maxRemaining)
		}
		switch {
		case c.hasExited():
			return time.Time{}, 0, "", errors.New(c.exitNote())
		case ctx.Err() != nil:
			return time.Time{}, 0, "", ctx.Err()
		case time.Now().After(deadline):
			return time.Time{}, 0, "", fmt.Errorf("/readyz not 200 after %s", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// restoreRemaining reads veltrix_restore_remaining_records for the store
// from /metrics (0 when the gauge has no sample yet).
func restoreRemaining(base string) (int64, error) {
	resp, err := httpClient.Get(base + "/metrics")
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	return gaugeValue(string(body), `veltrix_restore_remaining_records{store="`+restoreStore+`"}`)
}

// gaugeValue finds the sample named series (with its labels) in a Prometheus
// text exposition; 0 if absent.
func gaugeValue(text, series string) (int64, error) {
	for line := range strings.Lines(text) {
		v, ok := strings.CutPrefix(line, series+" ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0, fmt.Errorf("metrics: %s: %w", series, err)
		}
		return int64(f), nil
	}
	return 0, nil
}

// checkRestored reads evenly spaced keys of the n orders through the query
// API; each must hold count 1 and its order's total. It returns the mean
// stored record size (key + value).
func checkRestored(base string, n int) (float64, error) {
	k := min(n, restoreSamples)
	var size int
	for j := range k {
		i := j * n / k
		key := orderKey(i)
		resp, err := httpClient.Get(base + "/v1/stores/" + restoreStore + "/" + string(key))
		if err != nil {
			return 0, fmt.Errorf("query %s: %w", key, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return 0, fmt.Errorf("query %s: %w", key, err)
		}
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("query %s: %s: %s", key, resp.Status, strings.TrimSpace(string(body)))
		}
		var got struct {
			Value json.RawMessage `json:"value"`
		}
		var v aggValue
		if err := json.Unmarshal(body, &got); err != nil {
			return 0, fmt.Errorf("query %s: %w", key, err)
		}
		if err := json.Unmarshal(got.Value, &v); err != nil {
			return 0, fmt.Errorf("query %s: value %s: %w", key, got.Value, err)
		}
		if v.Count != 1 || v.Sum == nil || !closeTo(*v.Sum, totalOf(i)) {
			return 0, fmt.Errorf("key %s holds %s, want count 1 and sum %.2f", key, got.Value, totalOf(i))
		}
		size += len(key) + len(got.Value)
	}
	return float64(size) / float64(max(k, 1)), nil
}
