package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// The Kafka Streams scenarios run bench/kstreams (a small Kafka Streams
// application of the broker's version, built with Maven) as their own JVM
// process, doing the work of the Veltrix scenario they are named after:
// exactly_once_v2, commit.interval.ms=100, default RocksDB stores, the same
// input and the same output checks.

// kstreamsMain is the application's main class.
const kstreamsMain = "dev.veltrix.bench.BenchStreams"

// needsKStreams reports whether a scenario of this run is a Kafka Streams one.
func (h *harness) needsKStreams() bool {
	for _, s := range h.cfg.scenarios {
		if strings.HasPrefix(s, "kstreams-") {
			return true
		}
	}
	return false
}

// buildKStreams packages bench/kstreams into the temp dir with Maven and
// writes its dependencies' class path there: offline when the local Maven
// repository has everything, else (the first run) resolving from the
// network. A failure leaves the Kafka Streams scenarios failed with its
// reason.
func (h *harness) buildKStreams(ctx context.Context) {
	for _, tool := range []string{"java", "mvn"} {
		if _, err := exec.LookPath(tool); err != nil {
			h.kstreamsErr = fmt.Errorf("the Kafka Streams scenarios need a JDK 17+ and Maven: %s not found", tool)
			logf("WARNING: %v", h.kstreamsErr)
			return
		}
	}
	pom := filepath.Join(h.cfg.repo, "bench", "kstreams", "pom.xml")
	build := filepath.Join(h.tmp, "kstreams-build")
	cpFile := filepath.Join(build, "classpath")
	args := []string{"-B", "-q", "-f", pom, "package", "dependency:build-classpath",
		"-Dbuild.dir=" + build, "-Dmdep.outputFile=" + cpFile}
	logf("building the Kafka Streams application (bench/kstreams) with Maven")
	mvn := func(extra ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, "mvn", append(extra, args...)...)
		cmd.Env = envWithoutPprof()
		return cmd.CombinedOutput()
	}
	if _, err := mvn("-o"); err != nil {
		logf("resolving Kafka Streams with Maven (first use; later runs are offline)")
		if out, err := mvn(); err != nil {
			h.kstreamsErr = fmt.Errorf("mvn package bench/kstreams: %w: %s", err, tail(string(out), 600))
			logf("WARNING: %v", h.kstreamsErr)
			return
		}
	}
	deps, err := os.ReadFile(cpFile)
	if err != nil {
		h.kstreamsErr = fmt.Errorf("kafka streams class path: %w", err)
		return
	}
	jars, _ := filepath.Glob(filepath.Join(build, "*.jar"))
	if len(jars) != 1 {
		h.kstreamsErr = fmt.Errorf("kafka streams build: want one jar in %s, found %d", build, len(jars))
		return
	}
	h.kstreamsCP = jars[0] + string(os.PathListSeparator) + strings.TrimSpace(string(deps))
}

// kstreamsArgs is the java command line of the application in mode
// (stateless or aggregate).
func (h *harness) kstreamsArgs(mode, in, out, group, stateDir string) []string {
	args := append([]string{}, h.cfg.kstreamsJavaOpts...)
	return append(args, "-cp", h.kstreamsCP, kstreamsMain, mode, h.addr, in, out, group, stateDir,
		strconv.Itoa(h.cfg.kstreamsThreads))
}

// startKStreams returns a starter that runs the application in mode. The
// application id is the group name; its state dir is fresh.
func (h *harness) startKStreams(mode string) starter {
	return func(in, out, group string) (*child, error) {
		if h.kstreamsCP == "" {
			err := h.kstreamsErr
			if err == nil {
				err = errors.New("not built")
			}
			return nil, fmt.Errorf("kafka streams application not available: %w", err)
		}
		stateDir := filepath.Join(h.tmp, group, "kstreams-state")
		if err := os.MkdirAll(stateDir, 0o755); err != nil {
			return nil, fmt.Errorf("kafka streams state dir: %w", err)
		}
		return startChild("java", h.kstreamsArgs(mode, in, out, group, stateDir)...)
	}
}

// kstreamsStateless is veltrix-stateless-eos in Kafka Streams: filter +
// mapValues adding "bench":"yes" + to.
func kstreamsStateless(ctx context.Context, h *harness) result {
	r := h.runThroughput(ctx, "kstreams-stateless-eos", h.startKStreams("stateless"),
		newCopyChecker(h.cfg.records, benchMarker))
	if r.Status == statusOK {
		r.Note = "JVM warm-up (JIT) after the first output write is in records/s"
	}
	return r
}

// kstreamsAggregate is veltrix-aggregate-eos in Kafka Streams: groupBy
// customer_id (repartition topic) + aggregate count/sum in RocksDB + to, one
// output per input (record cache off).
func kstreamsAggregate(ctx context.Context, h *harness) result {
	r := h.runThroughput(ctx, "kstreams-aggregate-eos", h.startKStreams("aggregate"),
		newCountChecker(h.custCount, h.custSum, h.cfg.records, true))
	if r.Status == statusOK {
		r.Note = "groupBy customer_id (repartition topic) + aggregate count/sum (RocksDB), every update; JVM warm-up in records/s"
	}
	return r
}

// latencyKStreams is the latency scenario through kstreams-stateless-eos.
func latencyKStreams(ctx context.Context, h *harness) result {
	return h.runLatency(ctx, "kstreams-latency", h.startKStreams("stateless"), benchMarker)
}
