# bankbridge — every command a developer or CI needs. `make help` lists them.
#
# Tools (buf, protoc plugins, grpcurl, the Vault dev server) are built from
# their own pinned modules (tools/go.mod, deploy/vault/go.mod) into bin/;
# nothing is fetched with @latest.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
BIN       := $(CURDIR)/bin
# Product modules, in dependency order (services -> adapters -> gen).
MODULES   := gen adapters services
export PATH := $(BIN):$(PATH)

# Third-party protos are copied from these pinned Go modules (checksummed by
# the Go module proxy and sum database) into proto/third_party.
PROTOVALIDATE_MODULE := github.com/bufbuild/protovalidate@v1.2.2
GOOGLEAPIS_MODULE    := github.com/grpc-ecosystem/grpc-gateway@v1.16.0
OPENAPIV2_MODULE     := github.com/grpc-ecosystem/grpc-gateway/v2@v2.32.0
THIRD_PARTY          := proto/third_party

TOOL_PKGS := \
	github.com/bufbuild/buf/cmd/buf \
	google.golang.org/protobuf/cmd/protoc-gen-go \
	google.golang.org/grpc/cmd/protoc-gen-go-grpc \
	github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway \
	github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2 \
	github.com/fullstorydev/grpcurl/cmd/grpcurl

.PHONY: help
help: ## List every target with what it does.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Tool binaries are file targets: rebuilt only when their module changes.
TOOLS_STAMP := $(BIN)/.tools-stamp
$(TOOLS_STAMP): tools/go.mod tools/go.sum
	cd tools && GOWORK=off $(GO) build -o $(BIN)/ $(TOOL_PKGS)
	touch $@

.PHONY: tools
tools: $(TOOLS_STAMP) ## Build the pinned code-generation tools (tools/go.mod) into bin/.

$(BIN)/vault: deploy/vault/go.mod deploy/vault/go.sum deploy/vault/main.go
	cd deploy/vault && GOWORK=off $(GO) build -o $(BIN)/vault .

.PHONY: vault
vault: $(BIN)/vault ## Build the real Vault server (deploy/vault) into bin/vault; ~15 min the first time.

.PHONY: vendor-protos
vendor-protos: ## Copy third-party protos from their pinned Go modules into proto/third_party.
	rm -rf $(THIRD_PARTY) && mkdir -p $(THIRD_PARTY)/buf/validate $(THIRD_PARTY)/google/api $(THIRD_PARTY)/google/rpc $(THIRD_PARTY)/protoc-gen-openapiv2/options
	pv=$$(GOFLAGS=-mod=mod GOWORK=off $(GO) mod download -json $(PROTOVALIDATE_MODULE) | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p'); \
	ga=$$(GOFLAGS=-mod=mod GOWORK=off $(GO) mod download -json $(GOOGLEAPIS_MODULE) | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p'); \
	oa=$$(GOFLAGS=-mod=mod GOWORK=off $(GO) mod download -json $(OPENAPIV2_MODULE) | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p'); \
	install -m 0644 $$pv/proto/protovalidate/buf/validate/validate.proto $(THIRD_PARTY)/buf/validate/; \
	install -m 0644 $$ga/third_party/googleapis/google/api/annotations.proto $$ga/third_party/googleapis/google/api/http.proto $(THIRD_PARTY)/google/api/; \
	install -m 0644 $$ga/third_party/googleapis/google/rpc/code.proto $$ga/third_party/googleapis/google/rpc/status.proto $$ga/third_party/googleapis/google/rpc/error_details.proto $(THIRD_PARTY)/google/rpc/; \
	install -m 0644 $$oa/protoc-gen-openapiv2/options/annotations.proto $$oa/protoc-gen-openapiv2/options/openapiv2.proto $(THIRD_PARTY)/protoc-gen-openapiv2/options/
	printf '%s\n' "Copied by make vendor-protos from:" "  $(PROTOVALIDATE_MODULE)" "  $(GOOGLEAPIS_MODULE)" "  $(OPENAPIV2_MODULE)" "Do not edit; change the pins in the Makefile instead." > $(THIRD_PARTY)/SOURCES

.PHONY: generate
generate: tools ## Regenerate gen/ (Go, gRPC, gateway, OpenAPI, descriptor set) from proto/.
	rm -rf gen/bankbridge gen/openapi/bankbridge.swagger.json gen/descriptor/bankbridge.binpb
	buf generate --path proto/bankbridge
	mkdir -p gen/descriptor
	buf build --path proto/bankbridge -o gen/descriptor/bankbridge.binpb

.PHONY: check-generated
check-generated: generate ## Fail when gen/ differs from what `make generate` writes.
	@if [ -n "$$(git status --porcelain -- gen proto)" ]; then \
		echo "gen/ is stale: run make generate and commit the result" >&2; \
		git status --porcelain -- gen proto >&2; git --no-pager diff --stat -- gen >&2; exit 1; fi

.PHONY: lint
lint: tools ## buf lint, buf format -d, gofmt and go vet on every module.
	buf lint
	buf format -d --exit-code --path proto/bankbridge
	@out=$$(gofmt -l $(MODULES) tools deploy/vault); if [ -n "$$out" ]; then echo "gofmt needed:" >&2; echo "$$out" >&2; exit 1; fi
	for m in $(MODULES); do (cd $$m && GOWORK=off $(GO) vet ./...); done

.PHONY: breaking
breaking: tools ## buf breaking against main's proto/ (not enforced in CI until v1 is declared stable).
	buf breaking --against '.git#branch=main'

.PHONY: test-go
test-go: vault ## go test -race for every product module, each with GOWORK=off (Vault tests use bin/vault).
	for m in $(MODULES); do (cd $$m && BANKBRIDGE_VAULT_BIN=$(BIN)/vault GOWORK=off $(GO) test -race -count=1 ./...); done

.PHONY: dev
dev: $(if $(VAULT_ADDR),,vault) ## Start Vault, the sandbox bank, every service and the gateway on https://127.0.0.1:8080, all on TLS from Vault's PKI (CA in .dev/tls/ca.pem, printed); Ctrl-C stops all.
	cd services && GOWORK=off $(GO) build -o $(BIN)/devstack ./devstack
	$(BIN)/devstack

# The events benchmark's PostgreSQL half runs on this server (a database of
# its own, dropped after).
BENCH_POSTGRES_URL ?= $(or $(BANKBRIDGE_TEST_POSTGRES_URL),postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)

.PHONY: bench
bench: vault ## GetBalance on the dev stack (req/s, p50, p99); consent decisions; events outbox -> bus -> stream (events/s, p50, p99); receipts ingested/s and a list page of 10,000 receipts (p50, p99); one carrier event fanned out to 10,000 watch streams (p50, p99, RSS) and the fan-out's floor without the push; messages/s through 200 support conversations (send to the assistant's reply on the stream, p50, p99); one bank fraud alert fanned out to 1,000 alert streams (p50, p99, RSS); on SQLite and PostgreSQL.
	cd services && GOWORK=off $(GO) test -run '^$$' -bench GetBalance -benchtime 2000x ./e2e/
	cd services && GOWORK=off $(GO) test -run '^$$' -bench ShipmentFanout -benchtime 1x -timeout 30m ./e2e/
	cd services && GOWORK=off $(GO) test -run '^$$' -bench ConversationMessages -benchtime 2000x -timeout 30m ./e2e/
	cd services && GOWORK=off $(GO) test -run '^$$' -bench AlertFanout -benchtime 1x -timeout 30m ./e2e/
	cd services && GOWORK=off $(GO) test -run '^$$' -bench ServeAudienceFanout -benchtime 3x ./platform/events/stream/
	cd services && GOWORK=off $(GO) test -run '^$$' -bench ConsentDecide -benchtime 2000x -benchmem ./consent/
	cd services && BANKBRIDGE_TEST_POSTGRES_URL='$(BENCH_POSTGRES_URL)' GOWORK=off $(GO) test -run '^$$' -bench OutboxToStream -benchtime 20000x ./platform/events/
	cd services && BANKBRIDGE_TEST_POSTGRES_URL='$(BENCH_POSTGRES_URL)' GOWORK=off $(GO) test -run '^$$' -bench 'Ingest|ListPage' -benchtime 3s ./receipts/internal/app/

# bench-ratio's load generators: ghz's runner, pinned in tools/ghz (a module
# of its own, so ghz's dependencies stay out of the product modules), and
# wrk from Debian's packages, installed when missing as .ci/run installs
# its tools.
$(BIN)/ghz-bench: tools/ghz/go.mod tools/ghz/go.sum tools/ghz/main.go
	cd tools/ghz && GOWORK=off $(GO) build -o $(BIN)/ghz-bench .

# Extra benchratio flags, e.g. BENCH_RATIO_FLAGS='--profile-dir /tmp/prof --duration 20s'.
BENCH_RATIO_FLAGS ?=

.PHONY: bench-ratio
bench-ratio: vault $(BIN)/ghz-bench ## The whole stack against a bare echo, one run: ghz (50 concurrent, 4 connections) and wrk (2 threads, 50 connections) over 1,000 synthetic users; req/s, p50, p99, errors, the ratios and Vault reads (BENCH_RATIO_FLAGS='--profile-dir DIR' adds CPU profiles).
	command -v wrk >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
	cd services && GOWORK=off $(GO) build -o $(BIN)/ ./benchratio ./benchratio/benchecho
	cd services && $(BIN)/benchratio $(BENCH_RATIO_FLAGS)

# The fault matrix (docs/reliability.md) runs its stack's services on this
# PostgreSQL server, in databases of its own dropped after; empty: SQLite.
FAULTS_POSTGRES_URL ?= $(BENCH_POSTGRES_URL)
# Rows to run: all, quick (the subset CI runs, a few minutes), or names.
FAULTS ?= all

.PHONY: faults
faults: vault ## Fault matrix: the stack behind Toxiproxy under load, one fault per row; prints the table, fails on a failing row (FAULTS=quick: the CI subset; FAULTS=row,row: some rows).
	cd services && BANKBRIDGE_FAULTS='$(FAULTS)' FAULTS_POSTGRES_URL='$(FAULTS_POSTGRES_URL)' GOWORK=off $(GO) test -count=1 -timeout 60m -run '^TestMatrix$$' -v ./faults/

.PHONY: bench-platform
bench-platform: ## Benchmark the server kit's full interceptor chain on a small unary call.
	cd services && GOWORK=off $(GO) test -run '^$$' -bench InterceptorChain -benchmem -count 3 ./platform/server/

# Fuzz targets, "<package dir>:<target>". go test fuzzes one target at a
# time, so `make fuzz` runs each in turn for FUZZTIME (a duration, or a
# number of inputs such as 20000x), with one worker. Each target's seeds,
# and every crash kept in its package's testdata/fuzz/<target>/, also run
# in `make test`.
FUZZTIME ?= 20s
FUZZ_TARGETS := \
	services/gateway:FuzzREST \
	services/platform/names:FuzzParse \
	services/platform/names:FuzzFormat \
	services/platform/pagetoken:FuzzDecode \
	services/platform/pagetoken:FuzzRoundTrip \
	services/platform/pagetoken:FuzzDecodeSigned \
	services/platform/events:FuzzParseCursor \
	services/platform/events:FuzzCursorRoundTrip \
	adapters/stdwebhook:FuzzVerify \
	adapters/stdwebhook:FuzzVerifyTampered \
	services/shipping/internal/carrierpush:FuzzPush \
	services/shipping/internal/carrierpush:FuzzTamperedPush \
	adapters:FuzzParseConfig

# A duration-bound run can end in a bare "context deadline exceeded" with
# no crash written: Go's fuzz coordinator racing its own deadline on a busy
# machine (go.dev/issue/75804, fixed in Go 1.27). That alone is no finding;
# a failing input written, or any other failure, is.
.PHONY: fuzz
fuzz: ## Fuzz every target for FUZZTIME each, one after another (default 20s; the short CI run: make fuzz FUZZTIME=5s); a crash is kept in testdata/fuzz.
	@for t in $(FUZZ_TARGETS); do \
		dir=$${t%%:*}; name=$${t##*:}; mod=$${dir%%/*}; pkg=.$${dir#$$mod}; \
		echo "== fuzz $$name in $$dir for $(FUZZTIME)"; \
		log=$$(mktemp); \
		if ! (cd $$mod && GOWORK=off $(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) -parallel=1 $$pkg/) 2>&1 | tee $$log; then \
			if grep -q 'Failing input written' $$log || ! grep -qx '    context deadline exceeded' $$log; then rm -f $$log; exit 1; fi; \
			echo "$$name: nothing found; the run ended on Go's fuzz deadline race (go.dev/issue/75804)"; \
		fi; \
		rm -f $$log; \
	done

.PHONY: test
test: lint check-generated test-go ## Everything CI runs: lint, generated-code check, contract tests, go test -race.
