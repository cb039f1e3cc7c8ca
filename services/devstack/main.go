// Command devstack is `make dev`: it builds and starts the whole bankbridge
// stack on 127.0.0.1 — a real Vault (in-memory dev server, or the one named
// by VAULT_ADDR and VAULT_TOKEN), the sandbox bank, the consent and balance
// services with embedded SQLite, and the gateway — prints how to make a
// first call, and stops everything cleanly on Ctrl-C.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/bankbridge/bankbridge/services/devstack/stack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
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
	fmt.Printf(banner, s.GatewayURL, s.Vault.Addr)
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "\nstopping...")
	return nil
}

const banner = `
bankbridge dev stack is up.

  gateway (REST)    %[1]s      OpenAPI: %[1]s/openapi.json
  consent (gRPC)    127.0.0.1:9101
  balance (gRPC)    127.0.0.1:9102
  sandbox bank      127.0.0.1:9400 (gRPC, bankbridge.adapter.v1)
  vault             %[2]s

A first call (needs curl and jq; the sandbox's two-factor code is 123456):

  GW=%[1]s
  TOKEN=$(curl -s -X POST $GW/v1/dev/tokens -d '{"user":"alice"}' | jq -r .access_token)
  LINK=$(curl -s -X POST $GW/v1/users/alice/links -H "Authorization: Bearer $TOKEN" \
    -H 'Bankbridge-Purpose: CONSENT_MANAGEMENT' -H "Idempotency-Key: link-$RANDOM$RANDOM" \
    -d '{"bank_id":"sandbox","scopes":["SCOPE_ACCOUNTS","SCOPE_BALANCES","SCOPE_TRANSACTIONS"],"purposes":["PURPOSE_ACCOUNT_INFORMATION"],"bank_login_hint":"alice"}' \
    | jq -r .link.name)
  curl -s -X POST $GW/v1/$LINK:verify -H "Authorization: Bearer $TOKEN" \
    -H 'Bankbridge-Purpose: CONSENT_MANAGEMENT' -H "Idempotency-Key: verify-$RANDOM$RANDOM" -d '{"code":"123456"}'
  ACCOUNT=$(curl -s $GW/v1/users/alice/accounts -H "Authorization: Bearer $TOKEN" \
    -H 'Bankbridge-Purpose: ACCOUNT_INFORMATION' | jq -r '.accounts[0].name')
  curl -s $GW/v1/$ACCOUNT/balance -H "Authorization: Bearer $TOKEN" -H 'Bankbridge-Purpose: ACCOUNT_INFORMATION'

Press Ctrl-C to stop everything.
`
