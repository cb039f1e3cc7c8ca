package stack

import (
	"slices"
	"strings"
	"testing"
)

// TestTheDemoChatEntry: the demo chat starts after the gateway and the
// sandbox, as a client of the gateway trusting the stack's CA, with the
// sandbox's admin listener for its triggers and the dev partner's secret
// in its environment — and no Vault token, no certificate, no secret on
// its command line.
func TestTheDemoChatEntry(t *testing.T) {
	t.Parallel()
	tbl := Table()
	i := slices.IndexFunc(tbl, func(p Process) bool { return p.Name == "demochat" })
	if i < 0 {
		t.Fatal("no demochat in the table")
	}
	p := tbl[i]
	if p.Kind != Web || p.Port != 8088 || p.AdminPort != 0 || p.Package != "./demochat" {
		t.Errorf("demochat = %+v", p)
	}
	if deps := p.dependencies(tbl); !slices.Contains(deps, "gateway") || !slices.Contains(deps, "sandbox") {
		t.Errorf("demochat depends on %v, want the gateway and the sandbox", deps)
	}
	s := &Stack{table: tbl, addrs: map[string]string{}, GatewayURL: "https://gw", CAFile: "/dev-data/tls/ca.pem",
		Vault: VaultRef{Addr: "http://vault", Token: "vault-token"}, serviceSecret: "service-secret", pageTokenKey: "page-token-key"}
	for _, q := range tbl {
		s.addrs[q.Name] = "addr-" + q.Name
		if q.AdminPort != 0 {
			s.addrs[q.Name+"-admin"] = "admin-" + q.Name
		}
	}
	args := s.args(p)
	want := []string{"--addr=addr-demochat", "--gateway-url=https://gw", "--ca-file=/dev-data/tls/ca.pem",
		"--partner-client=demo-partner", "--sandbox-admin-url=https://admin-sandbox"}
	if !slices.Equal(args, want) {
		t.Errorf("args %q, want %q", args, want)
	}
	env := s.secretEnv(p)
	if !slices.Equal(env, []string{"BANKBRIDGE_PARTNER_SECRET=" + DevPartnerSecret}) {
		t.Errorf("env %q, want only the partner secret", env)
	}
	for _, a := range append(args, env...) {
		for _, secret := range []string{"vault-token", "service-secret", "page-token-key"} {
			if strings.Contains(a, secret) {
				t.Errorf("demochat gets %q", a)
			}
		}
	}
}
