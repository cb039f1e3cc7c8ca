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

# The version and commit every binary and image is stamped with
# (services/platform/buildinfo, through -ldflags -X), e.g. make images
# VERSION=v1.2.0; and the one timestamp of every image's files, the last
# commit's, so the same sources give the same images.
VERSION           ?= $(or $(shell git describe --tags --always --dirty 2>/dev/null),v1.0.0-dev)
COMMIT            ?= $(or $(shell git rev-parse HEAD 2>/dev/null),unknown)
SOURCE_DATE_EPOCH ?= $(or $(shell git log -1 --format=%ct 2>/dev/null),0)
# Every binary the Makefile links carries them (--version, the start-up log
# line, bankbridge_build_info on /metrics); `=`, so git runs only when used.
BUILDINFO = github.com/bankbridge/bankbridge/services/platform/buildinfo
LDFLAGS   = -X $(BUILDINFO).Version=$(VERSION) -X $(BUILDINFO).Commit=$(COMMIT)

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

# The real Vault server compiles about 2,600 packages the first time:
# about 10 minutes on two idle cores, longer on busy ones (README, Quick
# start). buildprogress (stdlib only, so it starts in seconds) runs go
# build -v and prints how many are done, the time against VAULT_EXPECT (a
# build from an empty cache, of which the link of the 500 MB binary is
# VAULT_LINK: 4m20s measured with the machine at load average ~25) and
# what is next; go's own output, errors included, passes through.
VAULT_EXPECT ?= 12m
VAULT_LINK   ?= 2m
VAULT_NEXT   ?= make dev or make test-go can use bin/vault
$(BIN)/vault: deploy/vault/go.mod deploy/vault/go.sum deploy/vault/main.go
	cd services && GOWORK=off $(GO) run ./devstack/buildprogress -C ../deploy/vault -o $(BIN)/vault \
		-label vault -what 'building the real Vault server' -expect $(VAULT_EXPECT) -link $(VAULT_LINK) -next '$(VAULT_NEXT)' .

.PHONY: vault
vault: $(BIN)/vault ## Build the real Vault server (deploy/vault) into bin/vault, showing its progress; the first time ~10 min on two idle cores, longer on busy ones.

# Jaeger v2 (all-in-one: OTLP in, in-memory storage, UI and query API), the
# dev stack's trace viewer, from its own pinned module (deploy/jaeger).
$(BIN)/jaeger: deploy/jaeger/go.mod deploy/jaeger/go.sum
	cd deploy/jaeger && GOWORK=off $(GO) build -o $(BIN)/jaeger github.com/jaegertracing/jaeger/cmd/jaeger

.PHONY: jaeger
jaeger: $(BIN)/jaeger ## Build Jaeger (deploy/jaeger, v1.76.0) into bin/jaeger: make dev then sends it every trace.

# promtool, from its own pinned module (deploy/prometheus/tools), which also
# holds the Go test that parses every dashboard's and alert's expression.
$(BIN)/promtool: deploy/prometheus/tools/go.mod deploy/prometheus/tools/go.sum
	cd deploy/prometheus/tools && GOWORK=off $(GO) build -o $(BIN)/promtool github.com/prometheus/prometheus/cmd/promtool

.PHONY: promtool
promtool: $(BIN)/promtool ## Build promtool (deploy/prometheus/tools, Prometheus v0.316.0) into bin/promtool.

.PHONY: test-alerts
test-alerts: $(BIN)/promtool ## promtool check rules and test rules on deploy/prometheus; the dashboards' and alerts' expressions against the metrics that exist.
	$(BIN)/promtool check rules deploy/prometheus/alerts.yaml
	cd deploy/prometheus && $(BIN)/promtool test rules alerts_test.yaml
	@out=$$(gofmt -l deploy/prometheus/tools); if [ -n "$$out" ]; then echo "gofmt needed:" >&2; echo "$$out" >&2; exit 1; fi
	cd deploy/prometheus/tools && GOWORK=off $(GO) vet ./... && GOWORK=off $(GO) test -count=1 ./...

# The OpenTelemetry Collector (deploy/otelcol): a minimal distribution (OTLP
# receiver, memory_limiter, redaction, batch, OTLP exporter) from its own
# pinned module, like Vault.
$(BIN)/otelcol: deploy/otelcol/go.mod deploy/otelcol/go.sum deploy/otelcol/main.go
	cd deploy/otelcol && GOWORK=off $(GO) build -o $(BIN)/otelcol .

.PHONY: otelcol
otelcol: $(BIN)/otelcol ## Build the minimal OpenTelemetry Collector (deploy/otelcol) into bin/otelcol.

# The config reads its endpoints from the environment (deploy/otelcol/README.md);
# validation needs the required one set, to any well-formed value.
.PHONY: otelcol-validate
otelcol-validate: $(BIN)/otelcol ## Validate deploy/otelcol/config.yaml with the real collector, then test its redaction with bin/otelcol.
	BANKBRIDGE_OTELCOL_EXPORT_ENDPOINT=otlp.example.internal:4317 $(BIN)/otelcol validate --config deploy/otelcol/config.yaml
	cd deploy/otelcol && GOWORK=off $(GO) vet ./...
	cd deploy/otelcol && BANKBRIDGE_OTELCOL_BIN=$(BIN)/otelcol BANKBRIDGE_REQUIRE_OTELCOL=1 GOWORK=off $(GO) test -count=1 ./...

# Helm, pinned in deploy/helm/tools (a module of its own), linked as Helm's
# own release build links it: with its version, and with the Kubernetes
# version its release targets (1.37: k8s.io/client-go v0.37 in that
# go.mod), which lint and template check charts against (else Helm's
# fallback, 1.20).
HELM_VERSION := v3.22.0
HELM_K8S_MINOR := 37
HELM_LDFLAGS := -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$(HELM_K8S_MINOR) \
	-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$(HELM_K8S_MINOR)
HELM_CHART := deploy/helm/bankbridge
HELM_EXAMPLES := deploy/helm/examples

$(BIN)/helm: deploy/helm/tools/go.mod deploy/helm/tools/go.sum
	cd deploy/helm/tools && GOWORK=off $(GO) build -trimpath -ldflags '$(HELM_LDFLAGS)' -o $(BIN)/helm helm.sh/helm/v3/cmd/helm

.PHONY: helm
helm: $(BIN)/helm ## Build the pinned Helm (deploy/helm/tools, v3.22.0) into bin/helm.

.PHONY: helm-lint
helm-lint: $(BIN)/helm ## helm lint --strict the chart (deploy/helm/bankbridge) with its defaults and with the example operator values.
	$(BIN)/helm lint --strict $(HELM_CHART)
	$(BIN)/helm lint --strict $(HELM_CHART) -f $(HELM_EXAMPLES)/production.yaml
	$(BIN)/helm lint --strict $(HELM_CHART) -f $(HELM_EXAMPLES)/production.yaml -f $(HELM_EXAMPLES)/staging.yaml

.PHONY: test-helm
test-helm: $(BIN)/helm vault ## Render the chart with bin/helm, decode every object strictly (k8s.io/api v0.37), check its policies, its flags against the real binaries, and its Vault setup on a real Vault.
	@out=$$(gofmt -l deploy/helm); if [ -n "$$out" ]; then echo "gofmt needed:" >&2; echo "$$out" >&2; exit 1; fi
	cd deploy/helm && GOWORK=off $(GO) vet ./...
	cd deploy/helm && BANKBRIDGE_HELM_BIN=$(BIN)/helm BANKBRIDGE_VAULT_BIN=$(BIN)/vault GOWORK=off $(GO) test -count=1 -timeout 30m ./...

.PHONY: vendor-protos
vendor-protos: ## Copy third-party protos from their pinned Go modules into proto/third_party (error_details.proto printed from genproto's descriptor by tools/protoexport).
	rm -rf $(THIRD_PARTY) && mkdir -p $(THIRD_PARTY)/buf/validate $(THIRD_PARTY)/google/api $(THIRD_PARTY)/google/rpc $(THIRD_PARTY)/protoc-gen-openapiv2/options
	pv=$$(GOFLAGS=-mod=mod GOWORK=off $(GO) mod download -json $(PROTOVALIDATE_MODULE) | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p'); \
	ga=$$(GOFLAGS=-mod=mod GOWORK=off $(GO) mod download -json $(GOOGLEAPIS_MODULE) | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p'); \
	oa=$$(GOFLAGS=-mod=mod GOWORK=off $(GO) mod download -json $(OPENAPIV2_MODULE) | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p'); \
	install -m 0644 $$pv/proto/protovalidate/buf/validate/validate.proto $(THIRD_PARTY)/buf/validate/; \
	install -m 0644 $$ga/third_party/googleapis/google/api/annotations.proto $$ga/third_party/googleapis/google/api/http.proto $(THIRD_PARTY)/google/api/; \
	install -m 0644 $$ga/third_party/googleapis/google/rpc/code.proto $$ga/third_party/googleapis/google/rpc/status.proto $(THIRD_PARTY)/google/rpc/; \
	install -m 0644 $$oa/protoc-gen-openapiv2/options/annotations.proto $$oa/protoc-gen-openapiv2/options/openapiv2.proto $(THIRD_PARTY)/protoc-gen-openapiv2/options/
	cd tools && GOWORK=off $(GO) run ./protoexport > ../$(THIRD_PARTY)/google/rpc/error_details.proto
	printf '%s\n' "Copied by make vendor-protos from:" "  $(PROTOVALIDATE_MODULE)" "  $(GOOGLEAPIS_MODULE) (google/api, google/rpc code and status)" "  $(OPENAPIV2_MODULE)" "and google/rpc/error_details.proto printed by tools/protoexport from the" "descriptor in google.golang.org/genproto/googleapis/rpc/errdetails as tools/go.mod pins it" "(the googleapis copy above predates ErrorInfo and FieldViolation.reason)." "Do not edit; change the pins in the Makefile or tools/go.mod instead." > $(THIRD_PARTY)/SOURCES

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
	@out=$$(gofmt -l $(MODULES) tools deploy/vault deploy/otelcol); if [ -n "$$out" ]; then echo "gofmt needed:" >&2; echo "$$out" >&2; exit 1; fi
	for m in $(MODULES); do (cd $$m && GOWORK=off $(GO) vet ./...) || exit 1; done

# The last release's contracts, compiled (proto/releases/README.md).
RELEASE_IMAGE := proto/releases/v1.0.0.binpb

.PHONY: breaking
breaking: tools ## buf breaking (FILE rules) against the last release's contracts, proto/releases/v1.0.0.binpb; then proves the check fails on a breaking change.
	RELEASE_IMAGE=$(RELEASE_IMAGE) BUF=$(BIN)/buf proto/releases/breaking.sh
	BUF=$(BIN)/buf proto/releases/breaking_test.sh

.PHONY: test-go
test-go: vault $(BIN)/otelcol $(BIN)/jaeger ## go test -race for every product module, each with GOWORK=off (Vault tests use bin/vault, the end-to-end tests bin/otelcol and bin/jaeger).
	for m in $(MODULES); do (cd $$m && BANKBRIDGE_VAULT_BIN=$(BIN)/vault BANKBRIDGE_OTELCOL_BIN=$(BIN)/otelcol BANKBRIDGE_JAEGER_BIN=$(BIN)/jaeger GOWORK=off $(GO) test -race -count=1 -timeout 25m ./...) || exit 1; done

# The generated-client test (tests/openapi): the dev stack as in
# services/e2e, then npm ci (the npm registry) and node run.mjs, which
# validates the served OpenAPI document, generates a client from it and
# links, lists accounts, reads a balance and pages transactions with it.
# BANKBRIDGE_REQUIRE_NODE=1: without node and npm it fails, not skips.
.PHONY: test-openapi
test-openapi: vault $(BIN)/otelcol ## Validate the served OpenAPI document, generate a JS client from it (npm, pinned) and drive the dev stack with it; needs node and npm.
	cd services && BANKBRIDGE_REQUIRE_NODE=1 BANKBRIDGE_VAULT_BIN=$(BIN)/vault BANKBRIDGE_OTELCOL_BIN=$(BIN)/otelcol GOWORK=off $(GO) test -count=1 -run '^TestGeneratedOpenAPIClient$$' -v ./e2e/

# The adapter conformance command (adapters/conformance/cmd): integrators
# run bin/bankbridge-conformance against their remote adapter; CI runs it
# against the sandbox (which passes) and the deliberately broken adapters
# (each of which fails the check it breaks), through services/e2e.
.PHONY: conformance-bin
conformance-bin: ## Build the adapter conformance command into bin/bankbridge-conformance.
	cd adapters && GOWORK=off $(GO) build -o $(BIN)/bankbridge-conformance ./conformance/cmd/bankbridge-conformance

.PHONY: conformance
conformance: vault $(BIN)/otelcol ## Run bankbridge-conformance against the sandbox (services/sandbox, mutual TLS, API key) and every broken adapter; the reports land in the test's log on failure.
	cd services && BANKBRIDGE_VAULT_BIN=$(BIN)/vault BANKBRIDGE_OTELCOL_BIN=$(BIN)/otelcol GOWORK=off $(GO) test -count=1 -run 'TestConformanceCommand' -v ./e2e/

# The demo chat's browser test (tests/demochat): the dev stack as in
# services/e2e, then npm ci (playwright-core, axe-core; pinned) and node
# story.mjs, which plays the demo's whole story in Debian's Chromium
# (headless; apt-get install chromium), saves a screenshot per step in
# tests/demochat/screenshots (or BANKBRIDGE_SCREENSHOTS_DIR) and runs
# axe-core. BANKBRIDGE_REQUIRE_NODE=1 and BANKBRIDGE_REQUIRE_BROWSER=1:
# without node, npm or /usr/bin/chromium it fails, not skips.
.PHONY: test-demo
test-demo: vault $(BIN)/otelcol ## Play the demo chat's whole story in headless Chromium against the dev stack (screenshots in tests/demochat/screenshots, axe-core); needs node, npm and chromium.
	cd services && BANKBRIDGE_REQUIRE_NODE=1 BANKBRIDGE_REQUIRE_BROWSER=1 BANKBRIDGE_VAULT_BIN=$(BIN)/vault BANKBRIDGE_OTELCOL_BIN=$(BIN)/otelcol GOWORK=off $(GO) test -count=1 -run '^TestDemoChatBrowser$$' -v ./e2e/

.PHONY: docs-assets
docs-assets: ## Re-copy the /docs viewer (swagger-ui-dist at the version services/gateway/apidocs/package-lock.json pins) from npm into services/gateway/apidocs/assets.
	services/gateway/apidocs/sync.sh

.PHONY: dev
dev: $(if $(filter 1,$(TRACES)),jaeger) ## Start Vault, the sandbox bank, every service and the gateway on https://127.0.0.1:8080, all on TLS from Vault's PKI (CA in .dev/tls/ca.pem, printed), and Jaeger on http://127.0.0.1:16686 when bin/jaeger exists (TRACES=1 builds it, TRACES=0 leaves it out); Ctrl-C stops all.
	$(MAKE) --no-print-directory -j2 $(if $(VAULT_ADDR),,$(BIN)/vault) dev-build VAULT_NEXT='start the dev stack'
	$(if $(filter 0,$(TRACES)),BANKBRIDGE_JAEGER_BIN= )$(BIN)/devstack --no-build

# dev-build builds the dev stack's binaries (make dev runs it beside the
# Vault build), each stamped with VERSION and COMMIT (GOFLAGS passes the
# -ldflags to the go build devstack runs).
.PHONY: dev-build
dev-build:
	cd services && GOWORK=off $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/devstack ./devstack
	GOFLAGS="$${GOFLAGS:-} '-ldflags=$(LDFLAGS)'" $(BIN)/devstack --build-only

# The events benchmark's PostgreSQL half runs on this server (a database of
# its own, dropped after).
BENCH_POSTGRES_URL ?= $(or $(BANKBRIDGE_TEST_POSTGRES_URL),postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)

.PHONY: bench
bench: vault $(BIN)/otelcol ## GetBalance on the dev stack (req/s, p50, p99); consent decisions; events outbox -> bus -> stream (events/s, p50, p99); receipts ingested/s and a list page of 10,000 receipts (p50, p99); one carrier event fanned out to 10,000 watch streams (p50, p99, RSS) and the fan-out's floor without the push; messages/s through 200 support conversations (send to the assistant's reply on the stream, p50, p99); one bank fraud alert fanned out to 1,000 alert streams (p50, p99, RSS); on SQLite and PostgreSQL.
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
	cd services && GOWORK=off $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./benchratio ./benchratio/benchecho
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
	adapters/runtime:FuzzParseConfig \
	adapters:FuzzScrubNumbers \
	adapters:FuzzParseMoney

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
		if grep -q 'no fuzz tests to fuzz' $$log; then echo "$$name: no such fuzz target in $$dir (FUZZ_TARGETS is stale)" >&2; rm -f $$log; exit 1; fi; \
		rm -f $$log; \
	done

# Images without a daemon (deploy/images, a module of its own): each
# production binary static over an empty base, with its CycloneDX SBOM, as
# dist/images/<name>.tar (docker load) and <name>.cdx.json.
IMAGES_DIR := dist/images

$(BIN)/images: deploy/images/go.mod deploy/images/go.sum $(wildcard deploy/images/*.go)
	cd deploy/images && GOWORK=off $(GO) build -o $(BIN)/images .

.PHONY: images
images: $(BIN)/images ## Build an OCI image tarball and an SBOM for every production binary into dist/images, with no Docker daemon, tagged bankbridge/<name>:<VERSION>.
	$(BIN)/images --services services --out $(IMAGES_DIR) --version '$(VERSION)' --commit '$(COMMIT)' --created '$(SOURCE_DATE_EPOCH)'

.PHONY: test-images
test-images: images vault ## Build the images, then open each tarball and check it (non-root, entrypoint, no shell, CAs, labels, --version, SBOM); check the Dockerfile against them; parse deploy/compose/compose.yaml and check its flags against the binaries; run its vault-init.sh on a real Vault.
	@out=$$(gofmt -l deploy/images); if [ -n "$$out" ]; then echo "gofmt needed:" >&2; echo "$$out" >&2; exit 1; fi
	cd deploy/images && GOWORK=off $(GO) vet ./...
	cd deploy/images && BANKBRIDGE_IMAGES_DIR=$(CURDIR)/$(IMAGES_DIR) BANKBRIDGE_VAULT_BIN=$(BIN)/vault GOWORK=off $(GO) test -count=1 ./...

.PHONY: test
test: lint check-generated breaking test-go otelcol-validate test-alerts helm-lint test-helm test-images ## Everything CI runs: lint, generated code, buf breaking against v1.0.0, go test -race, the collector's config and redaction, the alert rules, the Helm chart, the images.
