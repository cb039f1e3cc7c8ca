package stack

import (
	"slices"
	"strings"
	"testing"
)

// TestAddrRewriteAndExtraArgs: with Options.AddrRewrite every process
// dials the rewritten address of each dependency — Vault, NATS, the
// consent service, a service it calls, and each bank in banks.yaml —
// while ExtraArgs come after the stack's own flags.
func TestAddrRewriteAndExtraArgs(t *testing.T) {
	t.Parallel()
	s := &Stack{opts: Options{DataDir: "/d",
		AddrRewrite: func(dep, addr string) string { return "proxy-" + dep + ":1" },
		ExtraArgs:   map[string][]string{"consent": {"--database-url=postgres://pg/consent"}},
	}, table: Table(), addrs: map[string]string{}, GatewayURL: "https://gw",
		Vault: VaultRef{Addr: "http://127.0.0.1:8200", Token: "t"}, NATS: NATSRef{URL: "nats://127.0.0.1:4223", Token: "n"}, banksFile: "/d/banks.yaml"}
	for _, p := range s.table {
		s.addrs[p.Name] = "127.0.0.1:1" + p.Name
	}
	args := func(name string) []string {
		for _, p := range s.table {
			if p.Name == name {
				return s.args(p)
			}
		}
		t.Fatalf("no %s", name)
		return nil
	}
	support := args("support")
	for _, want := range []string{"--vault-addr=http://proxy-vault:1", "--nats-url=nats://proxy-nats:1",
		"--consent-addr=proxy-consent:1", "--balance-addr=proxy-balance:1"} {
		if !slices.Contains(support, want) {
			t.Errorf("support's flags lack %s: %v", want, support)
		}
	}
	if grpc := args("support")[0]; grpc != "--grpc-addr=127.0.0.1:1support" {
		t.Errorf("a process's own listener must not be rewritten: %s", grpc)
	}
	consent := args("consent")
	if last := consent[len(consent)-1]; last != "--database-url=postgres://pg/consent" {
		t.Errorf("consent's last flag %q, want its ExtraArgs", last)
	}
	if slices.Contains(support, "--database-url=postgres://pg/consent") {
		t.Error("one process's ExtraArgs reached another")
	}
	if y := s.banksYAML(); !strings.Contains(y, "endpoint: proxy-sandbox:1") {
		t.Errorf("banks.yaml does not point at the bank's proxy:\n%s", y)
	}
}
