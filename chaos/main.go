// Command chaos is Veltrix's fault suite (make chaos, make chaos-smoke). It
// runs the built binary (bin/veltrix) as real processes against the dev
// broker or Apache Kafka (deploy/kafka/kafka.sh), breaks things on purpose
// (kill -9, SIGSTOP, broker crashes, request faults, stalled restores,
// scaling), and then checks every output read_committed against the input:
// each record echoed exactly once, each key's running count and sum equal to
// its prefix sums, each closed window emitted once with its exact count, no
// transaction left open on an output or internal topic, and the group's
// committed offsets at the input's end.
//
// One line per scenario, then a table; the exit status is 1 when any
// scenario failed. See docs/chaos.md.
//
//	go run ./chaos -broker dev -scenarios R1,R9 -seed 7
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run0(os.Args[1:], os.Stdout))
}

func run0(args []string, stdout io.Writer) int {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	brokerKind := fs.String("broker", "dev", "dev (the embedded broker) or kafka (Apache Kafka via deploy/kafka/kafka.sh)")
	only := fs.String("scenarios", "", "comma-separated scenario ids (default: all, or the smoke set with -smoke)")
	duration := fs.Duration("duration", 60*time.Second, "load phase of the time-based scenarios (R2, R6, R7)")
	seed := fs.Int64("seed", time.Now().UnixNano()%1e6, "seed of the workload and the fault schedule")
	smoke := fs.Bool("smoke", false, "the short bounded run: fewer faults, R1 and R9 unless -scenarios says otherwise")
	rate := fs.Int("rate", 400, "input records per second")
	bin := fs.String("bin", "bin/veltrix", "the veltrix binary")
	script := fs.String("kafka-script", "deploy/kafka/kafka.sh", "kafka.sh, for -broker kafka")
	work := fs.String("work", "", "scratch directory (default: a new temporary one, removed after a passing run)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *brokerKind != "dev" && *brokerKind != "kafka" {
		fmt.Fprintf(os.Stderr, "chaos: -broker must be dev or kafka, got %q\n", *brokerKind)
		return 2
	}
	all := scenarios()
	ids := map[string]bool{}
	switch {
	case *only != "":
		for _, id := range strings.Split(*only, ",") {
			ids[strings.ToUpper(strings.TrimSpace(id))] = true
		}
	case *smoke:
		for _, id := range smokeScenarios {
			ids[id] = true
		}
	}
	var chosen []scenario
	for _, s := range all {
		if len(ids) == 0 || ids[s.id] {
			chosen = append(chosen, s)
		}
	}
	for id := range ids {
		if slices.ContainsFunc(all, func(s scenario) bool { return s.id == id }) {
			continue
		}
		fmt.Fprintf(os.Stderr, "chaos: unknown scenario %q (R8 is a Go test: go test ./internal/state -run TestDiskFull)\n", id)
		return 2
	}
	absBin, err := filepath.Abs(*bin)
	if err == nil {
		_, err = os.Stat(absBin)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "chaos: veltrix binary: %v (make build)\n", err)
		return 2
	}
	absScript, _ := filepath.Abs(*script)
	dir := *work
	if dir == "" {
		if dir, err = os.MkdirTemp("", "veltrix-chaos"); err != nil {
			fmt.Fprintln(os.Stderr, "chaos:", err)
			return 2
		}
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	start := time.Now()
	named := map[string]bool{}
	if *only != "" {
		named = ids
	}
	e := &env{kind: *brokerKind, bin: absBin, script: absScript, work: dir, seed: *seed, smoke: *smoke,
		named: named, duration: *duration, rate: *rate,
		logf: func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Since(start).Truncate(time.Second)}, args...)...)
		}}
	if e.smoke && *duration == 60*time.Second {
		e.duration = 15 * time.Second
	}
	e.logf("chaos: broker %s, seed %d, %d records/s, work dir %s", e.kind, e.seed, e.rate, dir)
	var results []result
	for _, s := range chosen {
		e.logf("%s: %s", s.id, s.title)
		res := runScenario(ctx, e, s)
		results = append(results, res)
		fmt.Fprintln(stdout, res.line())
		if ctx.Err() != nil {
			break
		}
	}
	if e.shared != nil {
		e.shared.Close()
	}
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, table(results))
	failed := 0
	for _, r := range results {
		if r.status() == "FAIL" {
			failed++
		}
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "\n%d of %d scenarios FAILED (seed %d; logs under %s)\n", failed, len(results), e.seed, dir)
		return 1
	}
	if *work == "" {
		os.RemoveAll(dir)
	}
	fmt.Fprintf(stdout, "\nall %d scenarios passed (seed %d, %s)\n", len(results), e.seed, time.Since(start).Truncate(time.Second))
	return 0
}

func (r result) status() string {
	switch {
	case r.skipped != "":
		return "skip"
	case r.failed || r.err != nil:
		return "FAIL"
	}
	return "ok"
}

// line is the scenario's one-line summary.
func (r result) line() string {
	if r.skipped != "" {
		return fmt.Sprintf("%-3s %-9s skipped: %s", r.id, r.broker, r.skipped)
	}
	s := fmt.Sprintf("%-3s %-9s faults: %s | records %d, duplicated %d, missing %d, wrong %d | %s | %s",
		r.id, r.broker, r.faults, r.v.records, r.v.duplicated, r.v.missing, r.v.wrong, r.elapsed.Truncate(time.Second), r.status())
	if r.err != nil {
		s += "\n    error: " + r.err.Error()
	}
	for _, n := range r.notes {
		s += "\n    " + n
	}
	for _, p := range r.v.problems {
		s += "\n    " + p
	}
	for _, t := range r.logTails {
		s += "\n    " + t
	}
	return s
}

// table is the closing Markdown table.
func table(rs []result) string {
	var b strings.Builder
	b.WriteString("| scenario | broker | faults | records | duplicated | missing | wrong | time | result |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		if r.skipped != "" {
			fmt.Fprintf(&b, "| %s | %s | skipped: %s | | | | | | skip |\n", r.id, r.broker, r.skipped)
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %d | %d | %s | %s |\n", r.id, r.broker, r.faults,
			r.v.records, r.v.duplicated, r.v.missing, r.v.wrong, r.elapsed.Truncate(time.Second), r.status())
	}
	return b.String()
}
