package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// scenarios in the order they run.
func scenarios() []scenario {
	return []scenario{
		{id: "R1", title: "three instances, kill -9 one every 5-15 s, every fifth restart without its state dir", run: runR1},
		{id: "R9", title: "kill -9 and immediate restart: time until the partitions are processed again", run: runR9},
		{id: "R3", title: "SIGSTOP one instance past its session timeout, then SIGCONT (a zombie)", run: runR3},
		{id: "R4", title: "kill -9 and restart the broker five times under load", run: runR4, broker: brokerR4},
		{id: "R2", title: "scale 1->3->1->3 with three input partitions idle", run: runR2},
		{id: "R6", title: "request faults: REQUEST_TIMED_OUT on Produce and TxnOffsetCommit, NOT_COORDINATOR on EndTxn", brokers: "dev", run: runR6},
		{id: "R7", title: "a restore whose fetches stall for over 5 s", run: runR7},
		{id: "R5", title: "a three-node Kafka cluster loses and regains one node under load", brokers: "kafka", run: runR5, broker: brokerR5},
	}
}

// smokeScenarios is what make chaos-smoke runs.
var smokeScenarios = []string{"R1", "R9"}

const defaultSession = 10 * time.Second

// runR1: kill -9 a random instance of three every 5-15 s; every fifth
// restart comes back without its state dir.
func runR1(ctx context.Context, r *run) (string, verdict, error) {
	if err := r.setup(ctx, 3, defaultSession, numPartitions); err != nil {
		return "", verdict{}, err
	}
	kills, wiped := 25, 0
	lo, hi := 5*time.Second, 15*time.Second
	if r.e.smoke {
		kills, lo, hi = 3, 4*time.Second, 8*time.Second
	}
	for k := 1; k <= kills; k++ {
		if err := r.pause(ctx, r.between(lo, hi)); err != nil {
			return "", verdict{}, err
		}
		in := r.insts[r.rng.Intn(len(r.insts))]
		if err := in.kill9(); err != nil {
			return "", verdict{}, err
		}
		how := "with its state"
		// Every fifth restart, and the smoke's last one, is a full restore.
		if k%5 == 0 || (r.e.smoke && k == kills) {
			if err := in.wipe(); err != nil {
				return "", verdict{}, err
			}
			wiped++
			how = "without its state dir"
		}
		if err := in.start(); err != nil {
			return "", verdict{}, err
		}
		r.e.logf("  R1: kill %d/%d: %s, restarted %s (input %d records)", k, kills, in.name, how, r.prod.seq.Load())
	}
	faults := fmt.Sprintf("%d kill -9 (%d restarts without state)", kills, wiped)
	v, err := r.finish(ctx, r.insts)
	return faults, v, err
}

// progressAfter polls the group's committed input offsets until every
// partition that has input passed its offset in base; it returns how long
// that took.
func progressAfter(ctx context.Context, adm *kadm.Client, t topics, base map[int32]int64, timeout time.Duration) (time.Duration, []int32, error) {
	start := time.Now()
	for {
		c, err := committedInput(ctx, adm, t)
		if err != nil {
			return 0, nil, err
		}
		var stuck []int32
		for p, at := range base {
			if c[p] <= at {
				stuck = append(stuck, p)
			}
		}
		if len(stuck) == 0 {
			return time.Since(start), nil, nil
		}
		if time.Since(start) > timeout {
			sort.Slice(stuck, func(i, j int) bool { return stuck[i] < stuck[j] })
			return time.Since(start), stuck, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func committedInput(ctx context.Context, adm *kadm.Client, t topics) (map[int32]int64, error) {
	resp, err := adm.FetchOffsetsForTopics(ctx, t.app, t.in)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	for p := int32(0); p < numPartitions; p++ {
		if _, ok := out[p]; !ok {
			out[p] = 0
		}
	}
	return out, nil
}

// restartTimes kills one instance and restarts it at once, n times,
// returning how long after each restart every partition moved again.
func restartTimes(ctx context.Context, r *run, in *instance, n int, env []string, timeout time.Duration) ([]time.Duration, error) {
	var out []time.Duration
	for i := 0; i < n; i++ {
		if err := r.pause(ctx, 5*time.Second); err != nil {
			return nil, err
		}
		if err := in.kill9(); err != nil {
			return nil, err
		}
		base, err := committedInput(ctx, r.adm, r.t)
		if err != nil {
			return nil, err
		}
		in.extraEnv = env
		restarted := time.Now()
		if err := in.start(); err != nil {
			return nil, err
		}
		_, stuck, err := progressAfter(ctx, r.adm, r.t, base, timeout)
		if err != nil {
			return nil, err
		}
		d := time.Since(restarted)
		if len(stuck) > 0 {
			r.note("restart %d: partitions %v not processed within %v", i+1, stuck, timeout)
		}
		out = append(out, d)
		r.e.logf("  R9: restart %d (%s): every partition processed again %.1fs after the restart", i+1, strings.Join(env, " "), d.Seconds())
	}
	return out, nil
}

// runR9: kill -9 and an immediate restart; the restarted static member must
// get its partitions back and process them within 5 s. For comparison, a
// restart under a new app.instance_id, which leaves the dead member to
// time out as a dynamic member's would (static membership cannot be
// switched off: an empty app.instance_id means a stable default).
func runR9(ctx context.Context, r *run) (string, verdict, error) {
	const session = 45 * time.Second // the default, as in production
	if err := r.setup(ctx, 2, session, numPartitions); err != nil {
		return "", verdict{}, err
	}
	n := 3
	if r.e.smoke {
		n = 1
	}
	in := r.insts[1]
	static, err := restartTimes(ctx, r, in, n, nil, 20*time.Second)
	if err != nil {
		return "", verdict{}, err
	}
	worst := slicesMax(static)
	r.note("restart to processing with static membership: %s (max %.1fs, limit 5s)", fmtDurations(static), worst.Seconds())
	if worst > 5*time.Second {
		r.fail("restart to processing took %.1fs (> 5s)", worst.Seconds())
	}
	faults := fmt.Sprintf("%d kill -9 + restart", n)
	if !r.e.smoke {
		dyn, err := restartTimes(ctx, r, in, 1, []string{"VELTRIX_APP_INSTANCE_ID=chaos-r9-new-member"}, session+30*time.Second)
		if err != nil {
			return "", verdict{}, err
		}
		r.note("restart to processing as a new member (the dead one waits out its %v session): %s", session, fmtDurations(dyn))
		faults = fmt.Sprintf("%d kill -9 + restart", n+1)
	}
	v, err := r.finish(ctx, r.insts)
	return faults, v, err
}

func slicesMax(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

func fmtDurations(ds []time.Duration) string {
	var s []string
	for _, d := range ds {
		s = append(s, fmt.Sprintf("%.1fs", d.Seconds()))
	}
	return strings.Join(s, ", ")
}

// runR3: SIGSTOP an instance past its session timeout (and the transaction
// timeout), let the others take its partitions, then SIGCONT: the zombie
// must be fenced and commit nothing.
func runR3(ctx context.Context, r *run) (string, verdict, error) {
	if err := r.setup(ctx, 3, defaultSession, numPartitions); err != nil {
		return "", verdict{}, err
	}
	n := 2
	if r.e.smoke {
		n = 1
	}
	for i := 0; i < n; i++ {
		if err := r.pause(ctx, 5*time.Second); err != nil {
			return "", verdict{}, err
		}
		in := r.insts[i%len(r.insts)]
		if err := in.signal(syscall.SIGSTOP, 0); err != nil {
			return "", verdict{}, err
		}
		stopped := defaultSession + 8*time.Second
		r.e.logf("  R3: %s stopped for %v", in.name, stopped)
		if err := r.pause(ctx, stopped); err != nil {
			return "", verdict{}, err
		}
		if err := in.signal(syscall.SIGCONT, 0); err != nil {
			return "", verdict{}, err
		}
		r.e.logf("  R3: %s continued", in.name)
		if err := r.pause(ctx, 10*time.Second); err != nil {
			return "", verdict{}, err
		}
	}
	v, err := r.finish(ctx, r.insts)
	return fmt.Sprintf("%d SIGSTOP %v + SIGCONT", n, defaultSession+8*time.Second), v, err
}

// brokerR4 is a broker that can be killed: `veltrix broker --data-dir` as a
// process, or a one-node Kafka.
func brokerR4(ctx context.Context, e *env, dir string) (cluster, error) {
	if e.kind == "kafka" {
		return startKafka(ctx, e.script, filepath.Join(dir, "kafka"), 1)
	}
	return startProcDev(ctx, e.bin, filepath.Join(dir, "broker-data"), numPartitions)
}

// runR4: kill -9 the broker and restart it on its data, five times, under
// load.
func runR4(ctx context.Context, r *run) (string, verdict, error) {
	if err := r.setup(ctx, 2, defaultSession, numPartitions); err != nil {
		return "", verdict{}, err
	}
	n := 5
	if r.e.smoke {
		n = 1
	}
	for i := 1; i <= n; i++ {
		if err := r.pause(ctx, r.between(6*time.Second, 12*time.Second)); err != nil {
			return "", verdict{}, err
		}
		if err := r.cl.Kill(ctx, 1); err != nil {
			return "", verdict{}, err
		}
		down := r.between(time.Second, 4*time.Second)
		if err := r.pause(ctx, down); err != nil {
			return "", verdict{}, err
		}
		if err := r.cl.Restart(ctx, 1); err != nil {
			return "", verdict{}, err
		}
		r.e.logf("  R4: broker kill %d/%d, down %.1fs, restarted", i, n, down.Seconds())
	}
	if err := r.pause(ctx, 5*time.Second); err != nil {
		return "", verdict{}, err
	}
	v, err := r.finish(ctx, r.insts)
	return fmt.Sprintf("%d broker kill -9 + restart", n), v, err
}

// runR2: scale 1 -> 3 -> 1 -> 3 instances (clean stops when scaling in),
// with keys only on 9 of the 12 input partitions.
func runR2(ctx context.Context, r *run) (string, verdict, error) {
	if err := r.setup(ctx, 1, defaultSession, 9); err != nil {
		return "", verdict{}, err
	}
	a, err := r.addInstance()
	if err != nil {
		return "", verdict{}, err
	}
	b, err := r.addInstance()
	if err != nil {
		return "", verdict{}, err
	}
	phase := max(r.e.duration/4, 8*time.Second)
	steps := []struct {
		what string
		do   func() error
	}{
		{"scale 1->3", func() error { return firstErr(a.start(), b.start()) }},
		{"scale 3->1", func() error { return firstErr(a.stop(), b.stop()) }},
		{"scale 1->3", func() error { return firstErr(a.start(), b.start()) }},
	}
	for _, s := range steps {
		if err := r.pause(ctx, phase); err != nil {
			return "", verdict{}, err
		}
		if err := s.do(); err != nil {
			return "", verdict{}, err
		}
		r.e.logf("  R2: %s", s.what)
	}
	if err := r.pause(ctx, phase); err != nil {
		return "", verdict{}, err
	}
	v, err := r.finish(ctx, r.insts)
	return "scale 1->3->1->3, 3 idle partitions", v, err
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// runR6 (dev broker in this process): REQUEST_TIMED_OUT on transactional
// Produce and on TxnOffsetCommit, NOT_COORDINATOR on EndTxn, one fault of a
// kind at a time, under load.
func runR6(ctx context.Context, r *run) (string, verdict, error) {
	fake := r.cl.Fake()
	if fake == nil {
		return "", verdict{}, fmt.Errorf("R6 needs the in-process dev broker")
	}
	if err := r.setup(ctx, 2, defaultSession, numPartitions); err != nil {
		return "", verdict{}, err
	}
	txnProduce := func(req kmsg.Request) bool {
		p, ok := req.(*kmsg.ProduceRequest)
		return ok && p.TransactionID != nil
	}
	kinds := []kfake.Fault{
		{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.RequestTimedOut, When: txnProduce},
		{Keys: []kmsg.Key{kmsg.TxnOffsetCommit}, Err: kerr.RequestTimedOut},
		{Keys: []kmsg.Key{kmsg.EndTxn}, Err: kerr.NotCoordinator, TopLevel: true},
	}
	names := []string{"Produce REQUEST_TIMED_OUT", "TxnOffsetCommit REQUEST_TIMED_OUT", "EndTxn NOT_COORDINATOR"}
	hits := make([]int, len(kinds))
	rounds := max(int(r.e.duration/(3*time.Second)), 3)
	for i := 0; i < rounds; i++ {
		k := i % len(kinds)
		h := fake.Fault(kinds[k])
		if err := r.pause(ctx, 3*time.Second); err != nil {
			return "", verdict{}, err
		}
		h.Remove()
		hits[k] += h.Hits()
	}
	var parts []string
	for i, n := range names {
		parts = append(parts, fmt.Sprintf("%d %s", hits[i], n))
	}
	if err := r.pause(ctx, 3*time.Second); err != nil {
		return "", verdict{}, err
	}
	v, err := r.finish(ctx, r.insts)
	return strings.Join(parts, ", "), v, err
}

// runR7: an instance restarts without its state while the broker holds
// every fetch of a changelog for 6 s (three times): the restore must wait
// for the changelog's end, not take a quiet spell for it. On Apache Kafka
// there is no way to stall fetches from outside the broker: skipped there.
func runR7(ctx context.Context, r *run) (string, verdict, error) {
	fake := r.cl.Fake()
	if fake == nil {
		return "", verdict{}, errSkip("Apache Kafka: no way to stall the broker's fetch answers from outside")
	}
	if err := r.setup(ctx, 2, defaultSession, numPartitions); err != nil {
		return "", verdict{}, err
	}
	if err := r.pause(ctx, max(r.e.duration/3, 10*time.Second)); err != nil {
		return "", verdict{}, err
	}
	ids := map[[16]byte]bool{}
	names := map[string]bool{}
	for _, tp := range r.t.internal() {
		if !strings.HasSuffix(tp, ".changelog") {
			continue
		}
		names[tp] = true
		if ti := fake.TopicInfo(tp); ti != nil {
			ids[ti.TopicID] = true
		}
	}
	var stalls atomic.Int32
	const stallFor, maxStalls = 6 * time.Second, 3
	fake.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		f := req.(*kmsg.FetchRequest)
		for _, ft := range f.Topics {
			if (names[ft.Topic] || ids[ft.TopicID]) && stalls.Load() < maxStalls {
				stalls.Add(1)
				fake.SleepControl(func() { time.Sleep(stallFor) })
				break
			}
		}
		return nil, nil, false
	})
	in := r.insts[1]
	if err := in.kill9(); err != nil {
		return "", verdict{}, err
	}
	if err := in.wipe(); err != nil {
		return "", verdict{}, err
	}
	if err := in.start(); err != nil {
		return "", verdict{}, err
	}
	if err := r.pause(ctx, max(r.e.duration/3, 25*time.Second)); err != nil {
		return "", verdict{}, err
	}
	if stalls.Load() == 0 {
		r.fail("no changelog fetch was stalled: the restore did not fetch")
	}
	v, err := r.finish(ctx, r.insts)
	return fmt.Sprintf("kill -9 + restart without state, %d changelog fetches held %v", stalls.Load(), stallFor), v, err
}

// brokerR5 is a three-node Kafka cluster.
func brokerR5(ctx context.Context, e *env, dir string) (cluster, error) {
	return startKafka(ctx, e.script, filepath.Join(dir, "kafka"), 3)
}

// runR5 (Kafka only): kill -9 one node of three under load, restart it,
// twice (another node the second time).
func runR5(ctx context.Context, r *run) (string, verdict, error) {
	if err := r.setup(ctx, 2, defaultSession, numPartitions); err != nil {
		return "", verdict{}, err
	}
	n := 2
	if r.e.smoke {
		n = 1
	}
	for i := 0; i < n; i++ {
		node := 2 + i%2
		if err := r.pause(ctx, 8*time.Second); err != nil {
			return "", verdict{}, err
		}
		if err := r.cl.Kill(ctx, node); err != nil {
			return "", verdict{}, err
		}
		r.e.logf("  R5: node %d killed", node)
		if err := r.pause(ctx, 15*time.Second); err != nil {
			return "", verdict{}, err
		}
		if err := r.cl.Restart(ctx, node); err != nil {
			return "", verdict{}, err
		}
		r.e.logf("  R5: node %d back", node)
	}
	if err := r.pause(ctx, 5*time.Second); err != nil {
		return "", verdict{}, err
	}
	v, err := r.finish(ctx, r.insts)
	return fmt.Sprintf("%d node kill -9 + restart (3 nodes)", n), v, err
}

// errSkip marks a scenario that cannot run on this broker.
type errSkip string

func (e errSkip) Error() string { return string(e) }
