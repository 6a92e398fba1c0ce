// Command bench measures Veltrix against a minimal franz-go loop (the limit of
// the client and broker), against Goka and, on Apache Kafka, against Kafka
// Streams, in one run, on one broker.
//
// It starts one broker process (`veltrix broker`, or with BENCH_BROKER=kafka
// a one-node Apache Kafka from deploy/kafka/kafka.sh), pre-fills an input
// topic with order events, then runs each scenario as its own OS process so that its CPU time
// and peak RSS come from the child's rusage. Every scenario's output is read
// back with read_committed and checked before it is timed. See
// docs/benchmarks.md for the method and how to read the figures.
//
// Environment: BENCH_BROKER (dev or kafka, default dev), BENCH_RECORDS (default 1000000), BENCH_PARTITIONS (6),
// BENCH_SCENARIOS (comma list, default all), BENCH_LATENCY_SECONDS (20),
// BENCH_RESTORE_RECORDS (changelog records of the restore scenario, 1000000),
// BENCH_ROUNDS (rounds of the throughput scenarios, default 3),
// BENCH_TIMEOUT (per scenario, default 120s), BENCH_VELTRIX (a prebuilt
// veltrix binary instead of building ../cmd/veltrix), BENCH_REPO (repo root,
// default ".."), BENCH_RESULTS (default results.json), BENCH_KSTREAMS_THREADS
// (stream threads of the Kafka Streams application, default the CPU count),
// BENCH_KSTREAMS_JAVA_OPTS (JVM options of it, default none).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is the run's configuration, from the environment.
type config struct {
	broker              string // brokerDev or brokerKafka
	records, partitions int
	scenarios           []string
	latencySeconds      int
	restoreRecords      int // changelog records of the restore scenario
	rounds              int // rounds of the repeated scenarios
	latencyRate         int
	timeout             time.Duration
	budget              time.Duration // the whole run; later scenarios fail once it is spent
	repo, veltrixBin    string
	results             string
	runID               string
	kstreamsThreads     int      // num.stream.threads of the Kafka Streams application
	kstreamsJavaOpts    []string // JVM options of the Kafka Streams application
}

// Broker kinds (BENCH_BROKER).
const (
	brokerDev   = "dev"   // `veltrix broker`, the embedded kfake broker
	brokerKafka = "kafka" // Apache Kafka, one node, from deploy/kafka/kafka.sh
)

// brokerLabel names a broker kind in the report.
func brokerLabel(kind string) string {
	if kind == brokerKafka {
		return "Apache Kafka (one node, deploy/kafka/kafka.sh)"
	}
	return "dev broker (veltrix broker)"
}

func envInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(strings.ReplaceAll(v, "_", ""))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive integer", name, v)
	}
	return n, nil
}

func envStr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func loadConfig() (config, error) {
	c := config{latencyRate: 10_000, budget: 14 * time.Minute,
		broker: envStr("BENCH_BROKER", brokerDev),
		repo:   envStr("BENCH_REPO", ".."), veltrixBin: os.Getenv("BENCH_VELTRIX"),
		results:          envStr("BENCH_RESULTS", "results.json"),
		runID:            strconv.FormatInt(time.Now().Unix(), 36),
		kstreamsJavaOpts: strings.Fields(os.Getenv("BENCH_KSTREAMS_JAVA_OPTS"))}
	var err error
	switch c.broker {
	case brokerDev:
	case brokerKafka:
		// Apache Kafka writes every record to disk and the JVM warms up:
		// a run takes longer than on the dev broker.
		c.budget = 40 * time.Minute
	default:
		return c, fmt.Errorf("BENCH_BROKER=%q: want dev or kafka", c.broker)
	}
	if c.kstreamsThreads, err = envInt("BENCH_KSTREAMS_THREADS", runtime.NumCPU()); err != nil {
		return c, err
	}
	if c.records, err = envInt("BENCH_RECORDS", 1_000_000); err != nil {
		return c, err
	}
	if c.partitions, err = envInt("BENCH_PARTITIONS", 6); err != nil {
		return c, err
	}
	if c.latencySeconds, err = envInt("BENCH_LATENCY_SECONDS", 20); err != nil {
		return c, err
	}
	if c.restoreRecords, err = envInt("BENCH_RESTORE_RECORDS", 1_000_000); err != nil {
		return c, err
	}
	if c.rounds, err = envInt("BENCH_ROUNDS", 3); err != nil {
		return c, err
	}
	c.timeout = 120 * time.Second
	if c.broker == brokerKafka {
		c.timeout = 240 * time.Second
	}
	if v := os.Getenv("BENCH_TIMEOUT"); v != "" {
		if c.timeout, err = time.ParseDuration(v); err != nil {
			return c, fmt.Errorf("BENCH_TIMEOUT=%q: %w", v, err)
		}
	}
	known := map[string]bool{}
	for _, s := range allScenarios {
		known[s.name] = true
	}
	if v := os.Getenv("BENCH_SCENARIOS"); v != "" {
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if !known[s] {
				return c, fmt.Errorf("BENCH_SCENARIOS: unknown scenario %q", s)
			}
			c.scenarios = append(c.scenarios, s)
		}
	} else {
		for _, s := range allScenarios {
			if !s.optional && (!s.kafkaOnly || c.broker == brokerKafka) {
				c.scenarios = append(c.scenarios, s.name)
			}
		}
	}
	return c, nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// scenario is one measured configuration.
type scenario struct {
	name     string
	baseline string // raw scenario its ratio_to_raw compares with ("" for none)
	kstreams string // Kafka Streams scenario doing the same work ("" for none)
	optional bool   // runs only when named in BENCH_SCENARIOS (a diagnostic)
	// kafkaOnly scenarios are in the default set on Apache Kafka only (they
	// run on the dev broker when named).
	kafkaOnly bool
	once      bool // runs in the first round only (latency, restore)
	run       func(ctx context.Context, h *harness) result
}

// allScenarios in run order; baselines run first.
var allScenarios = []scenario{
	{name: "raw-eos", run: rawScenario("raw-eos")},
	{name: "raw-alo", run: rawScenario("raw-alo")},
	{name: "veltrix-stateless-eos", baseline: "raw-eos", kstreams: "kstreams-stateless-eos", run: veltrixStateless(guaranteeEOS)},
	{name: "kstreams-stateless-eos", kafkaOnly: true, run: kstreamsStateless},
	{name: "veltrix-stateless-alo", baseline: "raw-alo", run: veltrixStateless(guaranteeALO)},
	{name: "veltrix-aggregate-eos", baseline: "raw-eos", kstreams: "kstreams-aggregate-eos", run: veltrixAggregate},
	{name: "kstreams-aggregate-eos", kafkaOnly: true, run: kstreamsAggregate},
	{name: "veltrix-rekey-eos", baseline: "raw-eos", optional: true, run: veltrixRekey},
	{name: "raw-aggregate-eos", baseline: "raw-eos", optional: true, run: rawAggregate},
	{name: "goka-count", run: gokaScenario},
	{name: "latency", kstreams: "kstreams-latency", once: true, run: latencyVeltrix},
	{name: "kstreams-latency", kafkaOnly: true, once: true, run: latencyKStreams},
	{name: "latency-raw-eos", once: true, run: latencyRaw},
	{name: "restore", once: true, run: restoreScenario},
}

func main() {
	child := flag.String("child", "", "internal: run one scenario process (raw-eos, raw-alo, raw-aggregate-eos, goka-count, broker)")
	var ca childArgs
	flag.StringVar(&ca.brokers, "brokers", "", "internal: broker address")
	flag.StringVar(&ca.in, "in", "", "internal: input topic")
	flag.StringVar(&ca.out, "out", "", "internal: output topic")
	flag.StringVar(&ca.group, "group", "", "internal: consumer group")
	flag.StringVar(&ca.dir, "dir", "", "internal: state dir")
	flag.IntVar(&ca.partitions, "partitions", 6, "internal: broker partitions")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *child != "" {
		if err := runChild(ctx, *child, ca); err != nil {
			fmt.Fprintf(os.Stderr, "bench child %s: %v\n", *child, err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func scenarioNamed(name string) scenario {
	for _, s := range allScenarios {
		if s.name == name {
			return s
		}
	}
	return scenario{name: name}
}

// run is the harness: broker, pre-fill, scenarios, report.
func run(ctx context.Context) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	start := time.Now()
	logf("%s; %d records, %d partitions, %d rounds, scenarios %s", brokerLabel(cfg.broker), cfg.records, cfg.partitions, cfg.rounds, strings.Join(cfg.scenarios, ","))
	h, err := newHarness(ctx, cfg)
	if h != nil {
		defer h.close()
	}
	if err != nil {
		return err
	}
	// Each round runs the scenarios in order, so that a scenario and its
	// baseline run close together; a scenario's row is its median round.
	rounds := map[string][]result{}
	for round := 1; round <= cfg.rounds; round++ {
		h.round = round
		for _, name := range cfg.scenarios {
			s := scenarioNamed(name)
			if s.once && round > 1 {
				continue
			}
			var r result
			switch {
			case ctx.Err() != nil:
				r = failed(name, "interrupted")
			case time.Since(start) > cfg.budget:
				r = failed(name, fmt.Sprintf("run budget of %s spent", cfg.budget))
			default:
				logf("=== %s (round %d/%d)", name, round, cfg.rounds)
				cpu0, ok0 := h.brokerCPU()
				r = s.run(ctx, h)
				if cpu1, ok1 := h.brokerCPU(); ok0 && ok1 {
					r.BrokerCPU = cpu1 - cpu0
				}
			}
			r.Scenario, r.Baseline, r.KStreams, r.Broker = name, s.baseline, s.kstreams, cfg.broker
			logf("=== %s: %s %s", name, r.Status, r.Note)
			rounds[name] = append(rounds[name], r)
		}
	}
	var results []result
	for _, name := range cfg.scenarios {
		results = append(results, medianRound(rounds[name]))
	}
	addRatios(results)
	addKStreamsRatios(results)
	printTable(os.Stdout, brokerLabel(cfg.broker), results, h.avgBytes)
	if err := writeJSON(cfg.results, results); err != nil {
		return err
	}
	logf("wrote %s; total %.0fs", cfg.results, time.Since(start).Seconds())
	return nil
}
