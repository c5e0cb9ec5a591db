# footstep-authz: `make` lists the targets.
GO        ?= go
FUZZTIME  ?= 30s
SOAK      ?= 10m
IMAGE     ?= ghcr.io/footstep/footstep-authz:dev
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.buildVersion=$(VERSION)

.DEFAULT_GOAL := help
.PHONY: help build test lint ci e2e helm fuzz bench bench-load failover soak run upstream image deploy

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-11s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build footstep-authz, footstepctl and echo-upstream into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

test: ## run every test with the race detector (embedded NATS, real gRPC and HTTP)
	$(GO) test -race -count=1 ./...

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./e2e

ci: export FOOTSTEP_FAULTS_DURATION = 2m
ci: lint test e2e ## what CI runs: lint, tests (the fault schedule for 2 minutes), proxy end-to-end suite, one pass of every benchmark
	$(GO) test -run='^$$' -bench=. -benchtime=1x ./...

e2e: ## end-to-end suite through real nginx and Caddy (run .ci/install-proxies.sh first)
	FOOTSTEP_E2E_REQUIRE_PROXIES=$${FOOTSTEP_E2E_REQUIRE_PROXIES:-0} $(GO) test -tags e2e -count=1 ./e2e

helm: ## lint the Helm chart and run its checks (helm from .ci/install-helm.sh)
	helm lint --strict charts/footstep-authz
	FOOTSTEP_REQUIRE_HELM=1 $(GO) test -count=1 -run Helm ./k8s

fuzz: ## run every fuzz target for FUZZTIME each (default 30s)
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg; \
		done; \
	done

bench: ## in-process benchmarks with allocations
	$(GO) test -run='^$$' -bench=. -benchmem ./...

bench-load: ## load vs a no-op floor, revocation, cold path, miss storm, start-up, memory (1M keys; QUICK=1: 100k), failover
	$(GO) build -o $(BIN)/footstep-authz ./cmd/footstep-authz
	$(GO) run ./cmd/bench-load -authz $(BIN)/footstep-authz $(if $(QUICK),-quick)

failover: ## revocation delay when each kind of NATS node dies, TRIALS per case (default 20), with percentiles
	FOOTSTEP_FAILOVER_TRIALS=$${TRIALS:-20} $(GO) test -count=1 -run '^TestRevocationSurvivesNodeLoss$$' -timeout 0 -v ./reliability

soak: ## invariant checker under churn with NATS restarts, then the cluster fault schedule, each for SOAK (default 10m)
	FOOTSTEP_SOAK_DURATION=$(SOAK) FOOTSTEP_FAULTS_DURATION=$(SOAK) $(GO) test -count=1 -run '^(TestSoak|TestFaultSchedule)$$' -timeout 0 -v ./reliability

run: ## run the server locally on 127.0.0.1: embedded NATS, demo keys reset and printed, gRPC reflection on
	$(GO) run ./cmd/footstep-authz --demo --grpc-reflection \
		--grpc-addr 127.0.0.1:9001 --http-addr 127.0.0.1:9002 --admin-addr 127.0.0.1:9003

upstream: ## run the demo upstream that echoes the headers it receives (127.0.0.1:8081)
	$(GO) run ./cmd/echo-upstream

image: ## build the container image (needs a Docker engine)
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE) .

deploy: ## apply the Kubernetes base to the current kubectl context
	kubectl apply -k k8s/base
