package stack

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"

	"github.com/hashicorp/vault/api"

	"github.com/bankbridge/bankbridge/services/platform/certs"
)

// The stack runs as production does: every listener speaks TLS with a
// certificate each process gets from the dev Vault's PKI engine at start
// (and renews), services call each other and the sandbox bank with mutual
// TLS, and no secret is on a command line, where every user of the machine
// can read it (ps, /proc/<pid>/cmdline): secrets go in BANKBRIDGE_*
// variables (each flag's environment twin) or in files.

// setUpTLS prepares the dev Vault's PKI engine (certs.SetUpDev: a dev root
// CA, unless the Vault has one, and a role per process of the table),
// writes the CA to CAFile, for curl --cacert and banks.yaml, and makes the
// stack's own HTTP client trust it.
func (s *Stack) setUpTLS(ctx context.Context) error {
	c, err := s.vaultClient()
	if err != nil {
		return err
	}
	var names []string
	for _, p := range s.table {
		if p.Kind != Web { // a Web app serves plain HTTP on loopback
			names = append(names, p.Name)
		}
	}
	ca, err := certs.SetUpDev(ctx, c, certs.DefaultMount, names)
	if err != nil {
		return fmt.Errorf("vault PKI: %w", err)
	}
	s.CAPool = x509.NewCertPool()
	if !s.CAPool.AppendCertsFromPEM([]byte(ca)) {
		return errors.New("vault PKI: the CA is not PEM")
	}
	s.CAFile = filepath.Join(s.opts.DataDir, "tls", "ca.pem")
	if err := os.MkdirAll(filepath.Dir(s.CAFile), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(s.CAFile, []byte(ca+"\n"), 0o644); err != nil { // a certificate: public
		return err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig, tr.ForceAttemptHTTP2 = s.ClientTLS(), true
	s.http = &http.Client{Transport: tr}
	return nil
}

// ClientTLS is a TLS config that trusts the stack's CA, with no client
// certificate: a product team's view of the stack.
func (s *Stack) ClientTLS() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: s.CAPool}
}

// HTTPClient is an HTTP client that trusts the stack's CA, for calls to
// the gateway and the admin listeners.
func (s *Stack) HTTPClient() *http.Client { return s.http }

// vaultClient is a Vault API client with the stack's token.
func (s *Stack) vaultClient() (*api.Client, error) {
	cfg := api.DefaultConfig()
	cfg.Address = s.Vault.Addr
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	c.SetToken(s.Vault.Token)
	return c, nil
}

// kvPut writes a secret at bankbridge/<path> (KV v2) through Vault's API:
// the vault CLI would take its values on its command line.
func (s *Stack) kvPut(ctx context.Context, path string, data map[string]any) error {
	c, err := s.vaultClient()
	if err != nil {
		return err
	}
	if _, err := c.KVv2("bankbridge").Put(ctx, path, data); err != nil {
		return fmt.Errorf("write bankbridge/%s: %w", path, err)
	}
	return nil
}

// secretEnv is p's secrets, as the environment variables of their flags.
func (s *Stack) secretEnv(p Process) []string {
	if p.Kind == Web { // a client of the API: no Vault, only a dev partner's secret
		return []string{"BANKBRIDGE_PARTNER_SECRET=" + DevPartnerSecret}
	}
	env := []string{"BANKBRIDGE_VAULT_TOKEN=" + s.Vault.Token}
	switch p.Kind {
	case Gateway:
		env = append(env, "BANKBRIDGE_DEV_SERVICE_SECRET="+s.serviceSecret, "BANKBRIDGE_DEV_PARTNER_SECRET="+DevPartnerSecret)
	case Service:
		env = append(env, "BANKBRIDGE_PAGE_TOKEN_KEY="+s.pageTokenKey)
	}
	if p.Needs.Consent {
		env = append(env, "BANKBRIDGE_CLIENT_SECRET="+s.serviceSecret)
	}
	return env
}

// Secrets are the secrets the stack handed its processes (the Vault
// token, the services' client secret, the page token key, the partners'
// secret, the NATS token, the sandbox's API key and carrier signing
// secret), for tests that check none of them shows where it must not,
// such as a command line.
func (s *Stack) Secrets() []string {
	out := []string{s.Vault.Token, s.serviceSecret, s.pageTokenKey, DevPartnerSecret, s.NATS.Token}
	for _, f := range []string{s.SandboxKeyFile, s.SandboxCarrierSecretFile} {
		if b, err := os.ReadFile(f); err == nil {
			out = append(out, string(trimNewline(b)))
		}
	}
	return slices.DeleteFunc(out, func(v string) bool { return v == "" })
}

// ServiceSecret is the client secret of the services' client credentials
// at the gateway's dev /oauth/token, for tests that act as a service.
func (s *Stack) ServiceSecret() string { return s.serviceSecret }

// PIDs are the process ids of every process the stack runs, by name,
// Vault's included.
func (s *Stack) PIDs() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, p := range s.procs {
		out[p.name] = p.cmd.Process.Pid
	}
	return out
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
