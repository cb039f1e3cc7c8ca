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
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/bankbridge/bankbridge/services/devstack/stack"
	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
)

func main() { bootstrap.Main("devstack", run) }

func run(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected arguments %q: devstack takes none (VAULT_ADDR and VAULT_TOKEN name an external Vault)", args)
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
	}
	fmt.Fprintln(os.Stderr, "building the services...")
	if err := stack.Build(ctx, opts); err != nil {
		return err
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

// printBanner says where every process listens and how to make a first
// call.
func printBanner(out io.Writer, s *stack.Stack) {
	fmt.Fprint(out, "\nbankbridge dev stack is up.\n\n")
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, p := range stack.Table() {
		switch p.Kind {
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
	_ = w.Flush()
	fmt.Fprintf(out, firstCall, s.GatewayURL, s.CAFile)
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
