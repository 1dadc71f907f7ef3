# CareerOps Jobs - developer entry points. `make` (or `make help`) lists them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

export PATH := $(PATH):/usr/local/go/bin:$(HOME)/go/bin:/usr/local/sbin:/usr/sbin:/sbin

GO    ?= go
BIN   := bin
# Extra arguments for `go test`, e.g. make test ARGS='-run TestOutbox ./internal/outbox/'
ARGS  ?=

.PHONY: help dev test lint services build ci clean chart-check devloop-check

help: ## Show the targets
	@echo "Usage: make TARGET"
	@echo
	@grep -E '^[a-z][a-zA-Z_-]*:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN { FS = ":.*## " } { printf "  %-10s %s\n", $$1, $$2 }'

dev: ## Run fakeopenai, api and worker locally (Ctrl-C stops them); prints a curl recipe
	@scripts/dev.sh

test: ## Run go vet and the whole test suite with -race (starts PostgreSQL/RabbitMQ if needed); ARGS='...' for go test
	@scripts/test.sh $(ARGS)

.PHONY: chaos
chaos: ## Fault suite: kill/restart workers, api, RabbitMQ, PostgreSQL under load (private instances); ARGS='...' for go test
	@scripts/chaos.sh $(ARGS)

lint: ## gofmt, go vet, go mod tidy -diff, golangci-lint (pinned, cached in ~/.cache/careerops-tools)
	@scripts/lint.sh

services: ## Make sure PostgreSQL, RabbitMQ and its management API answer on localhost (start them if not)
	@scripts/services.sh

build: ## Build every program in ./cmd into ./bin
	$(GO) build -o $(BIN)/ ./cmd/...

ci: lint test ## What CI runs: lint, then test

clean: ## Remove ./bin and .dev (dev logs, env file, dev JWT secret)
	rm -rf $(BIN) .dev

chart-check: services ## Chart, compose and Dockerfile checks without a cluster (tools/chartcheck; needs the local RabbitMQ)
	cd tools/chartcheck && GOFLAGS=-mod=mod $(GO) test -count=1 ./...

devloop-check: ## tilt alpha tiltfile-result + skaffold render --offline (tilt, skaffold, helm built once into ~/.cache/careerops-tools)
	@tools/chartcheck/devloop-check.sh

.PHONY: cluster-test
cluster-test: services ## Chart on a real control plane on 127.0.0.1 (etcd, kube-apiserver, controllers, kwok, KEDA, RabbitMQ operator; built once into ~/.cache/careerops-cluster, ~30-45 min CPU cold); ARGS='...' for go test
	@scripts/cluster/test.sh $(ARGS)

.PHONY: browser-test
browser-test: ## The web pages in headless Chromium (playwright-core) against real api, worker and fakeopenai; UPDATE_SCREENSHOTS=1 rewrites docs/screenshots; ARGS='...' for node --test
	@scripts/browser-test.sh $(ARGS)

.PHONY: bench
bench: ## Benchmarks, not tests (not in CI): raw limit, api enqueue, end to end, overhead, footprint; BENCH_PROFILE=1 adds profiles (docs/benchmarks.md)
	@scripts/bench.sh
