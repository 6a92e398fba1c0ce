# Veltrix. `make run` starts the quickstart; `make test` runs every test.
GO        ?= go
BIN       := bin/veltrix
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@latest

.PHONY: console-shots all build run test test-dev test-kafka test-short vet lint fuzz bench bench-kafka bench-go clean tools kafka-tools chaos chaos-smoke chaos-run

all: build

COMMIT    := $(shell git rev-parse --short HEAD 2>/dev/null)

build:
	$(GO) build -ldflags "-X main.commit=$(COMMIT)" -o $(BIN) ./cmd/veltrix

## run: the quickstart — embedded broker, example rules, event generator, live progress (Ctrl-C stops).
run: build
	./$(BIN) dev

## test: vet, then every test with the race detector on the dev broker (installs kcat for the
## end-to-end tests), then the Apache Kafka suite (test-kafka) when a JDK and Maven are here.
## bench/ is a module of its own: its tests check the harness's report and output checkers.
test: test-dev
	@if command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory test-kafka; \
	elif [ -n "$$CI" ]; then \
	  echo "CI: the Apache Kafka suite needs a JDK 17+ and Maven (apt-get install -y openjdk-17-jdk-headless maven)"; exit 1; \
	else \
	  echo "Apache Kafka suite skipped: no JDK/Maven here (install openjdk-17-jdk-headless and maven, then run make test-kafka)"; \
	fi

test-dev: tools vet
	$(GO) test -race -timeout 20m ./...
	$(GO) test -count=1 -run 'AllocatesNothing' ./internal/topology ./internal/tracing # allocation counts need the race detector off
	cd bench && $(GO) test -race -timeout 5m ./...

## test-kafka: the packages whose tests talk to a broker (those importing internal/testbroker), on a
## one-node Apache Kafka that deploy/kafka/with-kafka.sh starts and stops; one package at a time.
KAFKA_TEST_PKGS = $$($(GO) list -f '{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... | grep 'internal/testbroker' | grep -v '^[^ ]*/internal/testbroker ' | cut -d' ' -f1)
test-kafka: tools kafka-tools
	deploy/kafka/with-kafka.sh $(GO) test -race -p 1 -timeout 30m $(KAFKA_TEST_PKGS)

kafka-tools:
	@command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1 || { \
	  echo "the Apache Kafka suite needs a JDK 17+ and Maven (Debian/Ubuntu: apt-get install -y openjdk-17-jdk-headless maven)"; exit 1; }

## test-short: a quicker pass (smaller integration volumes).
test-short: tools
	$(GO) test -short -timeout 10m ./...

vet:
	$(GO) vet ./...
	cd bench && $(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || (echo "gofmt needed on:"; gofmt -l .; exit 1)

lint: vet
	$(GO) run $(STATICCHECK) ./...

## tools: the end-to-end tests drive the binary with kcat (librdkafka), an independent Kafka client,
## promtool (Debian's prometheus package) checks the alert rules, and the console test loads the
## console in headless Chromium.
tools:
	@command -v kcat >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing kcat (apt-get)"; apt-get update -qq && apt-get install -y -qq kcat >/dev/null; \
	  else \
	    echo "kcat is required by the end-to-end tests: install it (Debian/Ubuntu: sudo apt-get install -y kcat; macOS: brew install kcat)"; exit 1; \
	  fi; }
	@command -v promtool >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing promtool (apt-get install prometheus)"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	  else \
	    echo "promtool checks deploy/alerts.yml (deploy/monitoring_test.go): install it (Debian/Ubuntu: sudo apt-get install -y prometheus)"; exit 1; \
	  fi; }
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium (apt-get)"; apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "headless Chromium is required by the console test (e2e/console): install it (Debian/Ubuntu: sudo apt-get install -y chromium)"; exit 1; \
	  fi; }

## console-shots: the console test (make run's example, live, in headless Chromium), saving its
## screenshots into docs/console/.
console-shots: build tools
	VELTRIX_CONSOLE_SHOTS=$(CURDIR)/docs/console $(GO) test -count=1 -run TestConsoleInBrowser ./e2e/console

## fuzz: run the config and record-path fuzzers for a bounded time each (not part of CI; their
## seeds run in make test).
FUZZTIME ?= 60s
fuzz:
	$(GO) test ./internal/config -run '^$$' -fuzz FuzzLoadConfig -fuzztime $(FUZZTIME)
	$(GO) test ./testdriver -run '^$$' -fuzz FuzzRecordPath -fuzztime $(FUZZTIME)

## chaos: the fault suite (docs/chaos.md) on the dev broker, then on Apache Kafka when a JDK and
## Maven are here (in CI they must be). Not part of make test. CHAOS_FLAGS adds flags, e.g.
## CHAOS_FLAGS="-scenarios R1,R3 -seed 7". chaos-smoke: the short bounded run CI does after make test.
CHAOS_FLAGS ?=
chaos: build
	$(GO) build -o bin/chaos ./chaos
	@$(MAKE) --no-print-directory chaos-run CHAOS_RUN_FLAGS="$(CHAOS_FLAGS)"

chaos-smoke: build
	$(GO) build -o bin/chaos ./chaos
	@$(MAKE) --no-print-directory chaos-run CHAOS_RUN_FLAGS="-smoke $(CHAOS_FLAGS)"

chaos-run:
	@st=0; rm -f bin/chaos-*.report bin/chaos-*.failed; \
	{ ./bin/chaos -broker dev $(CHAOS_RUN_FLAGS) || echo FAILED >bin/chaos-dev.failed; } | tee bin/chaos-dev.report; \
	if command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1; then \
	  { ./bin/chaos -broker kafka $(CHAOS_RUN_FLAGS) || echo FAILED >bin/chaos-kafka.failed; } | tee bin/chaos-kafka.report; \
	elif [ -n "$$CI" ]; then \
	  echo "CI: the chaos suite on Apache Kafka needs a JDK 17+ and Maven"; st=1; \
	else \
	  echo "chaos on Apache Kafka skipped: no JDK/Maven here (install openjdk-17-jdk-headless and maven)"; \
	fi; \
	for b in dev kafka; do \
	  if [ -f bin/chaos-$$b.failed ]; then st=1; \
	    echo; echo "== chaos on the $$b broker FAILED; its report again:"; cat bin/chaos-$$b.report; fi; \
	done; exit $$st

## bench: the benchmark suite (Veltrix vs raw franz-go vs Goka); prints a table, writes bench/results.json.
## BENCH_BROKER=kafka runs it on a one-node Apache Kafka (deploy/kafka/kafka.sh) and adds Kafka Streams.
BENCH_BROKER ?= dev
bench:
	cd bench && BENCH_BROKER=$(BENCH_BROKER) $(GO) run .

## bench-kafka: the benchmark suite on Apache Kafka, with the Kafka Streams scenarios (bench/kstreams,
## built with Maven; the first run resolves Kafka and Kafka Streams).
bench-kafka: kafka-tools
	$(MAKE) --no-print-directory bench BENCH_BROKER=kafka

## bench-go: Go micro-benchmarks of the hot paths.
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./processors/... ./internal/... ./pkg/... ./testdriver/...

clean:
	rm -rf bin data
