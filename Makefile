# Streambed: every entry point. `make run` and `make test` are the two a new
# user needs; the rest are for development and deployment.
SHELL := /bin/bash
GO ?= go
ADDR ?= 127.0.0.1:8080
DATA ?= ./data
FUZZTIME ?= 10s
# Packages' tests run in parallel; the machine has few cores and moto is
# serialized, so keep package parallelism modest.
TESTFLAGS ?= -race -count=1 -timeout 30m -p 2

.PHONY: run build test test-in-stack test-unit localstack-up localstack-down fuzz bench vet fmt

## run: start the broker on the embedded default (./data) at http://localhost:8080
run:
	$(GO) run ./cmd/streambed serve --addr $(ADDR) --data $(DATA)

build:
	$(GO) build -o bin/streambed ./cmd/streambed

## test: bring up MinIO + moto, run vet and every test (unit + integration, -race), tear down
test:
	@./localstack/with-stack.sh $(MAKE) --no-print-directory test-in-stack

# test-in-stack expects the stack's endpoints in the environment (with-stack.sh
# provides them). The emulator gate runs first: no concurrency test may trust
# moto before it has proven atomic.
test-in-stack: vet
	$(GO) test -count=1 -run TestEmulatorGate ./localstack/
	$(GO) test $(TESTFLAGS) $$($(GO) list ./... | grep -v '/localstack$$')

## test-unit: only tests that need no services (integration tests skip loudly)
test-unit:
	$(GO) test $(TESTFLAGS) ./...

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fmt:
	gofmt -w $$(git ls-files '*.go')

localstack-up:
	./localstack/up.sh

localstack-down:
	./localstack/down.sh

## fuzz: run every fuzz target for FUZZTIME (default 10s) each
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test $$pkg -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME); \
	  done; done

## bench: Go benchmarks of the format and stores
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/...
