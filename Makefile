# Streambed: every entry point. `make run` and `make test` are the two a new
# user needs; the rest are for development and deployment.
SHELL := /bin/bash
GO ?= go
ADDR ?= 127.0.0.1:8080
KAFKA_ADDR ?= 127.0.0.1:9092
DATA ?= ./data
FUZZTIME ?= 10s
# Packages' tests run in parallel; the machine has few cores and moto is
# serialized, so keep package parallelism modest.
TESTFLAGS ?= -race -count=1 -timeout 30m -p 2
ALONE := ^TestProduceRunsAreSteady$$
REPORT := bin/testreport
SKIPS := bin/skipped-tests.txt

.PHONY: prereqs chaos chaos-in-stack run build test test-in-stack test-unit localstack-up localstack-down fuzz bench bench-peers bench-peers-in-stack bench-kafka vet fmt lambda image tf-check tf-validate

## run: start the broker on the embedded default (./data): HTTP at http://localhost:8080, Kafka at localhost:9092
# The binary runs itself (not under go run, which turns an interrupt into
# exit 1), so Ctrl-C ends make run quietly.
run: build
	bin/streambed serve --addr $(ADDR) --kafka-addr $(KAFKA_ADDR) --kafka-auto-create-topics --data $(DATA)

build:
	$(GO) build -o bin/streambed ./cmd/streambed

## test: bring up MinIO + moto, run vet and every test (unit + integration, -race), tear down
test:
	@./localstack/with-stack.sh $(MAKE) --no-print-directory test-in-stack

# test-in-stack expects the stack's endpoints in the environment (with-stack.sh
# provides them). The emulator gate runs first: no concurrency test may trust
# moto before it has proven atomic.
# Test output goes through testreport (go test -json in, plain go test's
# output out), which keeps every skipped test and why: the run ends with
# that list, so a skip is never mistaken for a pass.
test-in-stack: vet tf-validate
	@rm -f $(SKIPS) && $(GO) build -o $(REPORT) ./internal/cmd/testreport
	$(GO) test -count=1 -run TestEmulatorGate ./localstack/
	set -o pipefail; $(GO) test $(TESTFLAGS) -json -skip '$(ALONE)' $$($(GO) list ./... | grep -v -e '/localstack$$' -e '/internal/chaos$$') | $(REPORT) -skips $(SKIPS)
	# The consistency harness loads moto hard: alone, so it does not slow others' calls into retries.
	set -o pipefail; $(GO) test $(TESTFLAGS) -json ./internal/chaos/ | $(REPORT) -skips $(SKIPS)
	# Tests that compare runs' durations with each other: alone and without
	# the race detector, so neighbours and instrumentation do not skew them.
	set -o pipefail; $(GO) test -count=1 -json -timeout 10m -run '$(ALONE)' ./cmd/streambed/ | $(REPORT) -skips $(SKIPS)
	# The peer benchmark is its own module (NATS stays out of Streambed's dependencies).
	set -o pipefail; cd bench/peers && $(GO) vet ./... && $(GO) test -count=1 -json -timeout 10m ./... | $(abspath $(REPORT)) -skips $(abspath $(SKIPS))
	@$(REPORT) -summary $(SKIPS)

## test-unit: only tests that need no services (integration tests skip, and are listed at the end)
test-unit:
	@rm -f $(SKIPS) && $(GO) build -o $(REPORT) ./internal/cmd/testreport
	set -o pipefail; $(GO) test $(TESTFLAGS) -json ./... | $(REPORT) -skips $(SKIPS)
	@$(REPORT) -summary $(SKIPS)

vet:
	$(GO) vet ./...
	cd bench/peers && $(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fmt:
	gofmt -w $$(git ls-files '*.go')

## prereqs: what make test needs from the machine, found or missing (and how to get it)
prereqs:
	@./localstack/prereqs.sh

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

## chaos: the consistency harness's long profile (32 producers x 16 consumers x 16 partitions, 10 min per backend)
chaos:
	@./localstack/with-stack.sh $(MAKE) --no-print-directory chaos-in-stack

chaos-in-stack:
	STREAMBED_CHAOS=long $(GO) test -count=1 -timeout 60m -v -run 'TestConsistencyUnderFaults' ./internal/chaos/

## bench-peers: produce requests on the embedded store beside NATS JetStream and the raw disk, then on MinIO + moto beside raw PUTs
bench-peers:
	cd bench/peers && $(GO) run . -duration 5s
	@./localstack/with-stack.sh $(MAKE) --no-print-directory bench-peers-in-stack

## bench-kafka: through the Kafka protocol, Streambed beside Apache Kafka (KRaft, one node, jars from Maven Central into bin/)
KAFKA_VERSION ?= 4.4.0
bench-kafka:
	mvn -q -B -Dmaven.repo.local=$(CURDIR)/bin/m2 -Dkafka.version=$(KAFKA_VERSION) -f bench/kafka/pom.xml \
	  dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=$(CURDIR)/bin/kafka-$(KAFKA_VERSION)/libs
	cd bench/peers && $(GO) run . -kafka -kafka-libs $(CURDIR)/bin/kafka-$(KAFKA_VERSION)/libs

bench-peers-in-stack:
	cd bench/peers && $(GO) run . -s3 -duration 10s -large-clients 8

## bench: Go benchmarks of the format and stores, then an end-to-end streambed bench with the storage baseline
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/...
	$(GO) run ./cmd/streambed bench --duration 10s --baseline

FUNCTIONS := produce consume admin compact
# Reproducible: no paths, no VCS stamp, no build id; lambdazip fixes the zip's time and mode.
LAMBDA_FLAGS := -tags lambda.norpc -trimpath -buildvcs=false -ldflags='-s -w -buildid='

## lambda: a bootstrap per function for provided.al2023 on arm64, zipped into dist/
lambda:
	@mkdir -p dist
	@set -e; for f in $(FUNCTIONS); do \
	  GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build $(LAMBDA_FLAGS) -o dist/$$f/bootstrap ./functions/$$f; \
	  $(GO) run ./internal/cmd/lambdazip dist/$$f/bootstrap dist/$$f.zip; \
	done
	@ls -l dist/*.zip; sha256sum dist/*.zip

IMAGE_ARCH ?= arm64
## image: the container image of `streambed serve` (linux/arm64 by default, for Fargate) as an OCI archive in dist/, built without a daemon
image:
	@mkdir -p dist/image
	GOOS=linux GOARCH=$(IMAGE_ARCH) CGO_ENABLED=0 $(GO) build $(LAMBDA_FLAGS) -o dist/image/streambed ./cmd/streambed
	$(GO) run ./internal/cmd/ociimage -binary dist/image/streambed -arch $(IMAGE_ARCH) -o dist/streambed-image.tar
	@sha256sum dist/streambed-image.tar

TF_DIRS := infra/terraform infra/terraform/examples/aws infra/terraform/examples/local
TRIVY_VERSION := v0.74.0

## tf-validate: terraform fmt -check and validate of the module and both examples
tf-validate:
	@if ! command -v terraform >/dev/null; then echo "terraform not installed: skipping tf-validate"; \
	  if [ -n "$$CI" ]; then exit 1; fi; exit 0; fi; \
	  eval "$$(./infra/terraform/cli-config.sh | sed 's/^/export /')"; \
	  terraform fmt -check -recursive infra/terraform || exit 1; \
	  for d in $(TF_DIRS); do \
	    (cd $$d && terraform init -backend=false -input=false -no-color >/dev/null && terraform validate -no-color >/dev/null) \
	      || { echo "terraform validate failed in $$d"; exit 1; }; \
	  done; echo "terraform: fmt and validate clean"

## tf-check: tf-validate, Trivy's misconfiguration scan (both examples with the Kafka service on), and apply/destroy of examples/local against moto
tf-check: tf-validate
	@test -x bin/trivy || GOEXPERIMENT=jsonv2 GOBIN=$(CURDIR)/bin $(GO) install github.com/aquasecurity/trivy/cmd/trivy@$(TRIVY_VERSION)
	bin/trivy config --skip-check-update --severity HIGH,CRITICAL --exit-code 1 infra/terraform
	bin/trivy config --skip-check-update --severity HIGH,CRITICAL --exit-code 1 --tf-vars infra/terraform/testdata/aws-with-kafka.tfvars infra/terraform/examples/aws
	bin/trivy config --skip-check-update --severity HIGH,CRITICAL --exit-code 1 infra/terraform/examples/local
	./localstack/with-stack.sh $(GO) test -count=1 -v -run 'TestApplyDestroyLocal|TestPolicyChecker' ./infra/terraform/
