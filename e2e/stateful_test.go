package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// aggConfig is a config whose one rule keeps count and sum per key.
func aggConfig(t *testing.T, brokers, stateDir string) string {
	return writeAppConfig(t, "e2e-agg", brokers, stateDir, `
  - name: totals
    from: payments
    steps:
      - aggregate: {store: totals, count: true, sum: event.amount}
      - to: totals
`)
}

type truth struct {
	count int64
	sum   float64
}

// payments returns n payment records over keys keys, and the ground truth.
func payments(n, keys int) ([]*kgo.Record, map[string]truth) {
	recs := make([]*kgo.Record, n)
	want := map[string]truth{}
	for i := range n {
		key := fmt.Sprintf("c-%05d", (i*7919)%keys)
		amount := float64(i%97 + 1)
		recs[i] = &kgo.Record{Topic: "payments", Key: []byte(key), Value: fmt.Appendf(nil, `{"amount":%g,"seq":%d}`, amount, i)}
		w := want[key]
		w.count++
		w.sum += amount
		want[key] = w
	}
	return recs, want
}

func produceGo(t *testing.T, brokers string, recs []*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// outputs follows the aggregate's output topic with read_committed and keeps,
// per key, every count emitted: exactly once means each key's counts are
// 1..N, each once.
type outputs struct {
	mu     sync.Mutex
	counts map[string][]int64
	last   map[string]truth
	cancel context.CancelFunc
	done   chan struct{}
}

func followOutputs(t *testing.T, brokers, topic string) *outputs {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AllowAutoTopicCreation(), kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	o := &outputs{counts: map[string][]int64{}, last: map[string]truth{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(o.done)
		defer cl.Close()
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			o.mu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				var v struct {
					Count int64   `json:"count"`
					Sum   float64 `json:"sum"`
				}
				if json.Unmarshal(r.Value, &v) == nil {
					k := string(r.Key)
					o.counts[k] = append(o.counts[k], v.Count)
					o.last[k] = truth{v.Count, v.Sum}
				}
			})
			o.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-o.done })
	return o
}

// complete reports whether every key's latest output equals the truth.
func (o *outputs) complete(want map[string]truth) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for k, w := range want {
		if o.last[k] != w {
			return false
		}
	}
	return true
}

func (o *outputs) total() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, c := range o.counts {
		n += len(c)
	}
	return n
}

func (o *outputs) waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s (%d outputs so far)", timeout, what, o.total())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkExactlyOnce asserts each key's emitted counts are exactly 1..N.
func (o *outputs) checkExactlyOnce(t *testing.T, want map[string]truth) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	bad := 0
	for k, w := range want {
		seen := make([]int, w.count+1)
		ok := int64(len(o.counts[k])) == w.count
		for _, c := range o.counts[k] {
			if c < 1 || c > w.count || seen[c] > 0 {
				ok = false
				break
			}
			seen[c]++
		}
		if !ok {
			if bad < 5 {
				t.Errorf("key %s: emitted counts %v, want each of 1..%d once", k, head64(o.counts[k]), w.count)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d keys were not emitted exactly once per event", bad, len(want))
	}
}

func head64(s []int64) []int64 { return s[:min(len(s), 12)] }

var httpRE = regexp.MustCompile(`msg="http listening" addr=(\S+)`)

func (p *proc) httpAddr(t *testing.T) string {
	t.Helper()
	return p.logged(t, httpRE, "http address")
}

// queryAll asks addr for every key and returns the keys whose answer
// differs from the truth.
func queryAll(t *testing.T, addr, store string, want map[string]truth) []string {
	t.Helper()
	keys := make(chan string)
	var (
		mu    sync.Mutex
		wrong []string
		wg    sync.WaitGroup
	)
	client := &http.Client{Timeout: 10 * time.Second}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				got, err := queryKey(client, addr, store, k)
				if err != nil || got != want[k] {
					mu.Lock()
					wrong = append(wrong, fmt.Sprintf("%s: got %+v (%v), want %+v", k, got, err, want[k]))
					mu.Unlock()
				}
			}
		}()
	}
	for k := range want {
		keys <- k
	}
	close(keys)
	wg.Wait()
	return wrong
}

// queryKey reads a key's count and sum from an aggregate store.
func queryKey(client *http.Client, addr, store, key string) (truth, error) {
	resp, err := client.Get("http://" + addr + "/v1/stores/" + store + "/" + key)
	if err != nil {
		return truth{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return truth{}, fmt.Errorf("%s: %s", resp.Status, body)
	}
	var v struct {
		Value struct {
			Count int64   `json:"count"`
			Sum   float64 `json:"sum"`
		} `json:"value"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return truth{}, err
	}
	return truth{v.Value.Count, v.Value.Sum}, nil
}

func TestStatefulExactlyOnceAcrossCrashes(t *testing.T) {
	n, keys := 200_000, 10_000
	if testing.Short() {
		n, keys = 40_000, 2_000
	}
	brokers := startBroker(t, "payments")
	stateDir := filepath.Join(t.TempDir(), "state")
	cfg := aggConfig(t, brokers, stateDir)
	recs, want := payments(n, keys)
	out := followOutputs(t, brokers, "totals")

	// Four incarnations: the first three are killed (SIGKILL: no commit, no
	// abort, no group leave) once they have made progress; the state dir
	// is deleted before the third starts, which must restore from the
	// changelog.
	p := crashRuns(t, brokers, cfg, stateDir, recs, 4, 2, out, func() bool { return out.complete(want) })
	if wrong := queryAll(t, p.httpAddr(t), "totals", want); len(wrong) > 0 {
		t.Errorf("%d keys answered wrong by the query API, e.g. %v", len(wrong), wrong[:min(5, len(wrong))])
	}
	p.stop(t)
	out.checkExactlyOnce(t, want)
}

// crashRuns feeds recs to veltrix (config cfg) in runs incarnations, a
// slice of the records each: every incarnation but the last is killed with
// SIGKILL once the outputs passed a quarter of its slice, and the state dir
// is deleted before incarnation wipeAt (0-based). It returns the last one,
// once done says the outputs are complete.
func crashRuns(t *testing.T, brokers, cfg, stateDir string, recs []*kgo.Record, runs, wipeAt int, out *outputs, done func() bool) *proc {
	t.Helper()
	slice := len(recs) / runs
	for i := range runs {
		end := (i + 1) * slice
		if i == runs-1 {
			end = len(recs)
		}
		produceGo(t, brokers, recs[i*slice:end])
		if i == wipeAt {
			if err := os.RemoveAll(stateDir); err != nil {
				t.Fatal(err)
			}
		}
		p := start(t, "run", "-c", cfg)
		if i == runs-1 {
			out.waitFor(t, "every key's final result", 5*time.Minute, done)
			return p
		}
		target := i*slice + slice/4
		out.waitFor(t, fmt.Sprintf("progress of run %d", i+1), 3*time.Minute, func() bool { return out.total() > target })
		p.kill()
	}
	return nil
}

func TestTwoInstancesShareWorkAndAnswerQueries(t *testing.T) {
	n, keys := 40_000, 2_000
	if testing.Short() {
		n, keys = 10_000, 500
	}
	brokers := startBroker(t, "payments")
	recs, want := payments(n, keys)
	out := followOutputs(t, brokers, "totals")

	produceGo(t, brokers, recs[:n/2])
	a := start(t, "run", "-c", aggConfig(t, brokers, filepath.Join(t.TempDir(), "a")))
	out.waitFor(t, "progress of instance a", 2*time.Minute, func() bool { return out.total() > n/8 })
	b := start(t, "run", "-c", aggConfig(t, brokers, filepath.Join(t.TempDir(), "b")))
	produceGo(t, brokers, recs[n/2:])
	out.waitFor(t, "every key's final aggregate", 3*time.Minute, func() bool { return out.complete(want) })

	// b got a share of the tasks.
	waitLog(t, b, "partitions assigned", 1, time.Minute)

	// Every key, asked of either instance, is answered (by its owner).
	for name, p := range map[string]*proc{"a": a, "b": b} {
		addr := p.httpAddr(t)
		deadline := time.Now().Add(time.Minute)
		for {
			wrong := queryAll(t, addr, "totals", want)
			if len(wrong) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("instance %s: %d keys answered wrong, e.g. %v", name, len(wrong), wrong[:min(5, len(wrong))])
			}
			time.Sleep(500 * time.Millisecond) // the group may still be settling
		}
	}

	// a leaves: b takes its tasks over, restores them, and answers for all.
	a.stop(t)
	waitLog(t, b, "partitions assigned", 2, time.Minute)
	addr := b.httpAddr(t)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		wrong := queryAll(t, addr, "totals", want)
		if len(wrong) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a left, b answered %d keys wrong, e.g. %v", len(wrong), wrong[:min(5, len(wrong))])
		}
		time.Sleep(500 * time.Millisecond)
	}
	b.stop(t)
	out.checkExactlyOnce(t, want)
}

// waitLog waits until p's log holds msg at least n times.
func waitLog(t *testing.T, p *proc, msg string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for strings.Count(p.stderr.String(), msg) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%q not logged %d times within %v:\n%s", msg, n, timeout, tail(p.stderr.String(), 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
