// Command devstack is `make dev`: it builds and starts the whole bankbridge
// stack on 127.0.0.1 — a real Vault (in-memory dev server, or the one named
// by VAULT_ADDR and VAULT_TOKEN) and a NATS server for the event bus (in
// this process, nothing to install), then every process of the table in
// stack/table.go: the sandbox bank (which also plays a carrier, pushing
// signed tracking events to the gateway), the gateway and the services,
// with embedded SQLite — every listener on TLS with a certificate from the
// dev Vault's PKI engine, the services and the bank on mutual TLS — prints
// the CA to trust and how to make a first call, and stops everything
// cleanly on Ctrl-C.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bankbridge/bankbridge/services/devstack/stack"
	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
)

func main() { bootstrap.Main("devstack", run) }

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("devstack", flag.ContinueOnError)
	// make dev builds the stack's binaries with --build-only while the real
	// Vault compiles (it needs no Vault), then starts them with --no-build,
	// so a warm start does not check every package twice.
	buildOnly := fs.Bool("build-only", false, "build the stack's binaries into .dev/bin and exit")
	noBuild := fs.Bool("no-build", false, "start the binaries already in .dev/bin without building them first")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: devstack takes only flags (VAULT_ADDR and VAULT_TOKEN name an external Vault)", fs.Args())
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	root, err := stack.FindRoot(wd)
	if err != nil {
		return err
	}
	opts := stack.Options{
		Root:          root,
		Logs:          os.Stderr,
		ExternalVault: stack.VaultRef{Addr: os.Getenv("VAULT_ADDR"), Token: os.Getenv("VAULT_TOKEN")},
		JaegerBin:     jaegerBin(root),
	}
	switch {
	case *buildOnly:
		fmt.Fprintln(os.Stderr, "[dev] building the services...")
		start := time.Now()
		if err := stack.Compile(ctx, opts); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "[dev] services built in %s\n", time.Since(start).Round(time.Second))
		return nil
	case !*noBuild:
		fmt.Fprintln(os.Stderr, "building the services...")
		if err := stack.Build(ctx, opts); err != nil {
			return err
		}
	}
	s, err := stack.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer s.Stop()
	printBanner(os.Stdout, s)
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "\nstopping...")
	return nil
}

// jaegerBin is the trace viewer to start: BANKBRIDGE_JAEGER_BIN when set
// (empty turns it off; make dev TRACES=0 does), else bin/jaeger when make
// jaeger has built it. Without one, spans are recorded but not exported.
func jaegerBin(root string) string {
	if bin, ok := os.LookupEnv("BANKBRIDGE_JAEGER_BIN"); ok {
		return bin
	}
	bin := filepath.Join(root, "bin", "jaeger")
	if _, err := os.Stat(bin); err != nil {
		return ""
	}
	return bin
}

// printBanner says where every process listens and how to make a first
// call.
func printBanner(out io.Writer, s *stack.Stack) {
	fmt.Fprint(out, "\nbankbridge dev stack is up.\n\n")
	for _, p := range stack.Table() {
		if p.Kind == stack.Web {
			fmt.Fprintf(out, "  Open the demo chat: http://%s/  (pick alice, link the bank with code 123456, and play the story with the buttons)\n\n", s.Addr(p.Name))
		}
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, p := range stack.Table() {
		switch p.Kind {
		case stack.Web:
			fmt.Fprintf(w, "  %s (web)\thttp://%s/\ta client of the REST API (plain HTTP on loopback); its /demo/ buttons make the sandbox and a dev partner act\n", p.Name, s.Addr(p.Name))
		case stack.Gateway:
			fmt.Fprintf(w, "  %s (REST)\t%s\tOpenAPI: %[2]s/openapi.json\n", p.Name, s.GatewayURL)
		case stack.Bank:
			fmt.Fprintf(w, "  %s bank\t%s\tgRPC over mutual TLS (bankbridge's certificates only), bankbridge.adapter.v1; admin https://%s\n", p.Name, s.Addr(p.Name), s.AdminAddr(p.Name))
		case stack.Service:
			fmt.Fprintf(w, "  %s (gRPC)\t%s\tadmin https://%s (/healthz, /readyz, /metrics)\n", p.Name, s.Addr(p.Name), s.AdminAddr(p.Name))
			if p.Needs.HTTP {
				fmt.Fprintf(w, "  %s (HTTP)\thttps://%s\tpublic listener (carriers' signed pushes), reached through the gateway\n", p.Name, s.HTTPAddr(p.Name))
			}
		}
	}
	for _, p := range stack.Table() {
		if p.Carrier != "" {
			fmt.Fprintf(w, "  carrier %s\t%s\tsigned pushes (Standard Webhooks) from the %s bank; secret in Vault at bankbridge/carriers/%s and in %s\n",
				p.Carrier, s.CarrierPushURL(p.Carrier), p.Name, p.Carrier, s.CarrierSecretFile(p.Carrier))
		}
	}
	fmt.Fprintf(w, "  vault\t%s\tbank credentials at bankbridge/banks/<bank id>, carriers' signing secrets at bankbridge/carriers/<carrier> (KV v2); every process's TLS certificate from pki/issue/<name>, renewed at 2/3 of its hour\n", s.Vault.Addr)
	fmt.Fprintf(w, "  TLS CA\t%s\tevery listener is TLS: curl --cacert it, grpcurl -cacert it\n", s.CAFile)
	fmt.Fprintf(w, "  nats\t%s\tthe event bus (JetStream stream BANKBRIDGE), its token in Vault at bankbridge/nats\n", s.NATS.URL)
	fmt.Fprintf(w, "  partners\t%s\tclient-credentials tokens from POST %s/oauth/token with secret %s\n", strings.ReplaceAll(stack.DevPartners, ",", ", "), s.GatewayURL, stack.DevPartnerSecret)
	if s.JaegerURL != "" {
		fmt.Fprintf(w, "  jaeger\t%s\ttrace viewer: search a response's X-Trace-Id (query API: GET %[1]s/api/traces/<trace id>); every process sends it its spans over OTLP to %[2]s\n", s.JaegerURL, s.OTLPEndpoint)
	} else {
		fmt.Fprintf(w, "  jaeger\t(off)\tspans are recorded, not exported: make jaeger (or make dev TRACES=1) adds the trace viewer\n")
	}
	_ = w.Flush()
	printAdmin(out, s)
	fmt.Fprintf(out, firstCall, s.GatewayURL, s.CAFile)
}

// printAdmin lists every admin listener, where on-call looks first: each
// process's health, readiness, metrics and profiles.
func printAdmin(out io.Writer, s *stack.Stack) {
	fmt.Fprint(out, "\nAdmin listeners (HTTPS, trust the CA above): GET /healthz, /readyz, /metrics (Prometheus), /debug/pprof/\n")
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, p := range stack.Table() {
		switch {
		case p.Kind == stack.Web:
			continue
		case p.Kind == stack.Gateway:
			fmt.Fprintf(w, "  %s\thttps://%s\t/readyz: every backend answers; /debug/pprof/ on its REST listener\n", p.Name, s.AdminAddr(p.Name))
		case s.AdminAddr(p.Name) == "":
			fmt.Fprintf(w, "  %s\t(none)\t\n", p.Name)
		case p.Kind == stack.Bank:
			fmt.Fprintf(w, "  %s\thttps://%s\tand the sandbox bank's controls under /admin/ (README.md)\n", p.Name, s.AdminAddr(p.Name))
		case p.Needs.Banks:
			fmt.Fprintf(w, "  %s\thttps://%s\tand /banks: each bank's breaker, recent error rate, last success and error (?format=text)\n", p.Name, s.AdminAddr(p.Name))
		case p.Needs.Banks:
			fmt.Fprintf(w, "  %s\thttps://%s\tand /banks: each bank's breaker, in-flight calls and recent outcomes as this process sees them\n", p.Name, s.AdminAddr(p.Name))
		default:
			fmt.Fprintf(w, "  %s\thttps://%s\t\n", p.Name, s.AdminAddr(p.Name))
		}
	}
	_ = w.Flush()
	fmt.Fprintf(out, "\nEach process's log lines (JSON, with trace_id) are also in its own file: %s\n", s.LogFile("<name>"))
}

const firstCall = `
A first call (needs curl and jq; the sandbox's two-factor code is 123456;
curl trusts the stack's CA through CURL_CA_BUNDLE):

  GW=%[1]s
  export CURL_CA_BUNDLE=%[2]s
  TOKEN=$(curl -s -X POST $GW/v1/dev/tokens -d '{"user":"alice"}' | jq -r .access_token)
  LINK=$(curl -s -X POST $GW/v1/users/alice/links -H "Authorization: Bearer $TOKEN" \
    -H 'Bankbridge-Purpose: CONSENT_MANAGEMENT' -H "Idempotency-Key: link-$RANDOM$RANDOM" \
    -d '{"bank_id":"sandbox","scopes":["SCOPE_ACCOUNTS","SCOPE_BALANCES","SCOPE_TRANSACTIONS","SCOPE_RECEIPTS"],"purposes":["PURPOSE_ACCOUNT_INFORMATION","PURPOSE_PURCHASE_HISTORY"],"bank_login_hint":"alice"}' \
    | jq -r .link.name)
  curl -s -X POST $GW/v1/$LINK:verify -H "Authorization: Bearer $TOKEN" \
    -H 'Bankbridge-Purpose: CONSENT_MANAGEMENT' -H "Idempotency-Key: verify-$RANDOM$RANDOM" -d '{"code":"123456"}'
  ACCOUNT=$(curl -s $GW/v1/users/alice/accounts -H "Authorization: Bearer $TOKEN" \
    -H 'Bankbridge-Purpose: ACCOUNT_INFORMATION' | jq -r '.accounts[0].name')
  curl -s $GW/v1/$ACCOUNT/balance -H "Authorization: Bearer $TOKEN" -H 'Bankbridge-Purpose: ACCOUNT_INFORMATION'

Then a partner's receipt for alice, matched to her card payment: README.md, Quick start, steps 6-8.

Press Ctrl-C to stop everything.
`
