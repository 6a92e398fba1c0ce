package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// env is what every scenario of one invocation shares.
type env struct {
	kind     string // dev or kafka
	bin      string // bin/veltrix
	script   string // deploy/kafka/kafka.sh
	work     string // scratch directory
	seed     int64
	smoke    bool
	named    map[string]bool // the scenarios named with -scenarios
	duration time.Duration   // the load phase of time-based scenarios
	rate     int             // input records per second
	logf     func(format string, args ...any)
	shared   cluster // the Kafka cluster of the scenarios that do not break it
}

// result is one scenario's line of the report.
type result struct {
	id, broker, faults string
	v                  verdict
	elapsed            time.Duration
	skipped            string // why the scenario did not run
	err                error  // the scenario could not run to its verdict
	notes              []string
	failed             bool
	// logTails is the end of each log of a failed scenario: CI keeps the
	// output, not the work dir.
	logTails []string
}

// run is one scenario in progress: its broker, topics, instances and load.
type run struct {
	e      *env
	id     string
	dir    string
	cl     cluster
	t      topics
	adm    *kadm.Client
	admCl  *kgo.Client
	cfg    string
	insts  []*instance
	prod   *producer
	stopP  context.CancelFunc
	pDone  chan struct{}
	rng    *rand.Rand
	notes  []string
	failed bool // a scenario-specific check failed (its note says why)
}

func (r *run) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	r.notes = append(r.notes, s)
	r.e.logf("  %s: %s", r.id, s)
}

func (r *run) fail(format string, args ...any) {
	r.failed = true
	r.note("FAIL: "+format, args...)
}

// setup creates the topics and config, starts n instances, waits until they
// are ready and starts the load. activeParts < numPartitions leaves input
// partitions idle.
func (r *run) setup(ctx context.Context, n int, session time.Duration, activeParts int32) error {
	var err error
	r.admCl, err = kgo.NewClient(kgo.SeedBrokers(strings.Split(r.cl.Addr(), ",")...))
	if err != nil {
		return err
	}
	r.adm = kadm.NewClient(r.admCl)
	if err := createTopics(ctx, r.adm, r.t); err != nil {
		return err
	}
	if r.cfg, err = writeConfig(r.dir, r.t, session); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if _, err := r.addInstance(); err != nil {
			return err
		}
	}
	for _, in := range r.insts {
		if err := in.start(); err != nil {
			return err
		}
	}
	for _, in := range r.insts {
		// An instance that exits while it starts is started again (twice
		// at most), as a supervisor would; the exit is in the report.
		for try := 0; ; try++ {
			err := in.ready(ctx, 90*time.Second)
			if err == nil {
				break
			}
			if in.running() || try == 2 {
				return err
			}
			r.note("%s exited while starting: %q; started again", in.name, in.lastLogLine())
			if err := in.start(); err != nil {
				return err
			}
		}
	}
	r.prod, err = newProducer(r.cl.Addr(), r.t.in, r.e.seed, activeParts)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithCancel(ctx)
	r.stopP, r.pDone = cancel, make(chan struct{})
	go func() { defer close(r.pDone); r.prod.run(pctx, r.e.rate) }()
	return nil
}

func (r *run) addInstance() (*instance, error) {
	in, err := newInstance(fmt.Sprintf("i%d", len(r.insts)+1), r.e.bin, r.cfg, r.dir, r.cl.Addr)
	if err != nil {
		return nil, err
	}
	r.insts = append(r.insts, in)
	return in, nil
}

// pause waits d or until ctx ends.
func (r *run) pause(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// between is a random duration in [lo, hi).
func (r *run) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(r.rng.Int63n(int64(hi-lo)))
}

// finish stops the load, closes every window, brings back the instances in
// live (resumed and restarted when needed), waits until the group committed
// the whole input and no transaction is open, and verifies the outputs.
func (r *run) finish(ctx context.Context, live []*instance) (verdict, error) {
	r.stopP()
	<-r.pDone
	if err := r.prod.flush(ctx, 2*time.Minute); err != nil {
		r.note("%v", err)
	}
	for _, in := range live {
		if !in.running() {
			r.note("%s was not running at the end: started", in.name)
			if err := in.start(); err != nil {
				return verdict{}, err
			}
		}
	}
	// The records that close the windows come once the group has processed
	// the whole input: after a fault, one of a task's partitions (its input
	// or its repartition partition) may lag, and a record far ahead in
	// event time on the other would make the lagging records late.
	settle := 3 * time.Minute
	start := time.Now()
	if d := waitSettled(ctx, r.adm, r.t, settle); len(d) > 0 {
		r.note("not settled %v after the load, before the closing records: %s", settle, strings.Join(d[:min(len(d), 4)], "; "))
	}
	if err := r.prod.closeWindows(ctx, 2*time.Minute); err != nil {
		r.note("%v", err)
	}
	if d := waitSettled(ctx, r.adm, r.t, settle); len(d) > 0 {
		r.fail("not settled %v after the load: %s", settle, strings.Join(d[:min(len(d), 4)], "; "))
	} else {
		r.e.logf("  %s: settled %.1fs after the load", r.id, time.Since(start).Seconds())
	}
	for _, in := range r.insts {
		if n := in.unexpectedExits(); n > 0 {
			r.note("%s exited on its own %d time(s) (log %s)", in.name, n, in.logPath)
		}
	}
	return verify(ctx, r.cl.Addr(), r.adm, r.t)
}

// close stops every instance and the admin client.
func (r *run) close() {
	for _, in := range r.insts {
		if err := in.stop(); err != nil {
			r.note("%v", err)
		}
	}
	if r.admCl != nil {
		r.admCl.Close()
	}
	if r.prod != nil {
		r.prod.close()
	}
}

// scenario is one fault scenario.
type scenario struct {
	id      string
	title   string
	brokers string // "dev", "kafka" or "" (both)
	// knownBroken says, per broker kind, why the scenario fails there for
	// a reason outside Veltrix: it runs there only when named with
	// -scenarios.
	knownBroken map[string]string
	// broker starts the scenario's own cluster; nil uses a fresh default one.
	broker func(ctx context.Context, e *env, dir string) (cluster, error)
	run    func(ctx context.Context, r *run) (faults string, v verdict, err error)
}

// runScenario runs one scenario in its own directory and cluster.
func runScenario(ctx context.Context, e *env, s scenario) result {
	res := result{id: s.id, broker: e.kind}
	if s.brokers != "" && s.brokers != e.kind {
		res.skipped = s.brokers + " only"
		return res
	}
	if why := s.knownBroken[e.kind]; why != "" && !e.named[s.id] {
		res.skipped = why + " (run it with -scenarios " + s.id + ")"
		return res
	}
	start := time.Now()
	dir := filepath.Join(e.work, e.kind+"-"+s.id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		res.err = err
		return res
	}
	var cl cluster
	switch {
	case s.broker != nil:
		c, err := s.broker(ctx, e, dir)
		if err != nil {
			res.err, res.failed = fmt.Errorf("start broker: %w", err), true
			return res
		}
		defer c.Close()
		cl = c
	case e.kind == "kafka":
		// One cluster for every scenario that does not break the broker
		// (each has its own topics and group): a start takes a while.
		if e.shared == nil {
			c, err := startKafka(ctx, e.script, filepath.Join(e.work, "kafka"), 1)
			if err != nil {
				res.err, res.failed = fmt.Errorf("start broker: %w", err), true
				return res
			}
			e.shared = c
		}
		cl = e.shared
	default:
		c, err := startInProcDev(numPartitions)
		if err != nil {
			res.err, res.failed = fmt.Errorf("start broker: %w", err), true
			return res
		}
		defer c.Close()
		cl = c
	}
	res.broker = cl.Describe()
	r := &run{e: e, id: s.id, dir: dir, cl: cl, t: topicsFor(s.id), rng: rand.New(rand.NewSource(e.seed))}
	defer r.close()
	res.faults, res.v, res.err = s.run(ctx, r)
	res.elapsed = time.Since(start)
	var skip errSkip
	if errors.As(res.err, &skip) {
		res.skipped, res.err = string(skip), nil
		return res
	}
	res.notes = r.notes
	res.failed = r.failed || res.err != nil || !res.v.ok()
	if res.failed {
		res.logTails = logTails(dir, 15)
	}
	return res
}

// logTails is the last n lines of every *.log in a scenario's dir (its
// instances' and a dev broker process's), each headed by its name and
// indented.
func logTails(dir string, n int) []string {
	var out []string
	paths, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			continue
		}
		var t strings.Builder
		fmt.Fprintf(&t, "last lines of %s:", filepath.Base(p))
		for _, l := range strings.Split(tailLines(string(b), n), "\n") {
			if len(l) > 400 {
				l = l[:400] + "..."
			}
			t.WriteString("\n      " + l)
		}
		out = append(out, t.String())
	}
	return out
}
