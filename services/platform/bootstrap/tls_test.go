package bootstrap

import (
	"slices"
	"strings"
	"testing"
)

// TestPlaintextOnlyInDevMode: every kind of binary refuses --plaintext
// without --dev-mode, and without it needs a Vault for its certificate;
// both refusals name the flag to set.
func TestPlaintextOnlyInDevMode(t *testing.T) {
	t.Parallel()
	service := []string{"--issuer=https://issuer.test", "--jwks-url=http://127.0.0.1:1/jwks", "--subject-key=k"}
	tests := []struct {
		name string
		kind Kind
		args []string
		want string
	}{
		{"a service", KindService, append(service, "--plaintext"), "balance: --plaintext (BANKBRIDGE_PLAINTEXT) is refused outside dev mode"},
		{"a bank", KindBank, []string{"--plaintext"}, "balance: --plaintext (BANKBRIDGE_PLAINTEXT) is refused outside dev mode"},
		{"a gateway", KindGateway, []string{"--addr=127.0.0.1:0", "--plaintext"}, "balance: --plaintext (BANKBRIDGE_PLAINTEXT) is refused outside dev mode"},
		{"TLS without a Vault", KindService, service, "balance needs --vault-addr (BANKBRIDGE_VAULT_ADDR): its TLS certificate is issued by Vault's PKI engine"},
		{"TLS without a Vault, in dev mode too", KindGateway, []string{"--addr=127.0.0.1:0", "--dev-mode"}, "balance needs --vault-addr (BANKBRIDGE_VAULT_ADDR): its TLS certificate"},
		{"a certificate's life", KindBank, []string{"--vault-addr=http://127.0.0.1:1", "--tls-cert-ttl=0s"}, "--tls-cert-ttl must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec, _ := newSpec(tt.kind, Needs{})
			err := Run(t.Context(), tt.args, spec)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

// TestDevGatewayListensOnLoopbackOnly: a dev-mode gateway mints tokens for
// anyone, so it refuses to start on an address other machines reach.
func TestDevGatewayListensOnLoopbackOnly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr    string
		devMode bool
		refused bool
	}{
		{"0.0.0.0:8080", true, true},
		{":8080", true, true},
		{"[::]:8080", true, true},
		{"192.168.1.10:8080", true, true},
		{"gateway.internal:8080", true, true},
		{"127.0.0.1:8080", true, false},
		{"127.0.0.2:8080", true, false},
		{"[::1]:8080", true, false},
		{"localhost:8080", true, false},
		{"0.0.0.0:8080", false, false}, // production: a gateway serves the network
	}
	for _, tt := range tests {
		spec, c := newSpec(KindGateway, Needs{})
		args := []string{"--addr=" + tt.addr, "--vault-addr=http://127.0.0.1:1"}
		if tt.devMode {
			args = append(args, "--dev-mode")
		}
		if _, err := Parse(spec, args); err != nil {
			t.Fatal(err)
		}
		err := c.check(KindGateway, Needs{})
		if refused := err != nil && strings.Contains(err.Error(), "loopback address only"); refused != tt.refused || (err != nil && !refused) {
			t.Errorf("--addr %s, dev mode %v: %v; want refused %v", tt.addr, tt.devMode, err, tt.refused)
		}
	}
}

// TestCertificateNames: the certificate is asked for the binary's name
// and every host it listens on or is named by.
func TestCertificateNames(t *testing.T) {
	t.Parallel()
	spec, c := newSpec(KindService, Needs{HTTP: true})
	if _, err := Parse(spec, []string{"--grpc-addr=10.0.0.7:9102", "--admin-addr=127.0.0.1:9202", "--http-addr=[::]:9302",
		"--tls-hosts=balance.bankbridge.svc, 10.0.0.8", "--tls-pki-role=balance-v2", "--tls-cert-ttl=20m"}); err != nil {
		t.Fatal(err)
	}
	got := c.certConfig(KindService, Needs{HTTP: true})
	if got.Name != "balance" || got.Role != "balance-v2" || got.Mount != "pki" || got.TTL.Minutes() != 20 {
		t.Errorf("certificate config %+v", got)
	}
	for _, h := range []string{"10.0.0.7", "127.0.0.1", "::", "balance.bankbridge.svc", "10.0.0.8"} {
		if !slices.Contains(got.Hosts, h) {
			t.Errorf("hosts %q lack %s", got.Hosts, h)
		}
	}
}
