# Veltrix. `make run` starts the quickstart; `make test` runs every test.
GO        ?= go
BIN       := bin/veltrix
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@latest

.PHONY: all build run test test-short vet lint fuzz bench bench-go clean tools

all: build

COMMIT    := $(shell git rev-parse --short HEAD 2>/dev/null)

build:
	$(GO) build -ldflags "-X main.commit=$(COMMIT)" -o $(BIN) ./cmd/veltrix

## run: the quickstart — embedded broker, example rules, event generator, live progress (Ctrl-C stops).
run: build
	./$(BIN) dev

## test: vet, then every test with the race detector (installs kcat for the end-to-end tests);
## bench/ is a module of its own: its tests check the harness's report and output checkers.
test: tools vet
	$(GO) test -race -timeout 20m ./...
	cd bench && $(GO) test -race -timeout 5m ./...

## test-short: a quicker pass (smaller integration volumes).
test-short: tools
	$(GO) test -short -timeout 10m ./...

vet:
	$(GO) vet ./...
	cd bench && $(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || (echo "gofmt needed on:"; gofmt -l .; exit 1)

lint: vet
	$(GO) run $(STATICCHECK) ./...

## tools: the end-to-end tests drive the binary with kcat (librdkafka), an independent Kafka client.
tools:
	@command -v kcat >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing kcat (apt-get)"; apt-get update -qq && apt-get install -y -qq kcat >/dev/null; \
	  else \
	    echo "kcat is required by the end-to-end tests: install it (Debian/Ubuntu: sudo apt-get install -y kcat; macOS: brew install kcat)"; exit 1; \
	  fi; }

## fuzz: run the config fuzzer for a bounded time (not part of CI).
FUZZTIME ?= 60s
fuzz:
	$(GO) test ./config -run '^$$' -fuzz FuzzLoadConfig -fuzztime $(FUZZTIME)

## bench: the benchmark suite (Veltrix vs raw franz-go vs Goka); prints a table, writes bench/results.json.
bench:
	cd bench && $(GO) run .

## bench-go: Go micro-benchmarks of the hot paths.
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./processors/... ./topology/... ./pkg/...

clean:
	rm -rf bin data
