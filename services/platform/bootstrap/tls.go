package bootstrap

import (
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	grpccreds "google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bankbridge/bankbridge/services/platform/certs"
)

// TLSConfig is how a binary secures its listeners and its connections to
// other bankbridge processes: with a certificate for its name from Vault's
// PKI secrets engine (<mount>/issue/<role>, with the --vault-* login),
// renewed in the background (platform/certs). Every listener speaks TLS:
// gRPC and admin listeners, a service's public HTTP listener, the
// gateway's. Clients present the certificate (mutual TLS), and a service's
// internal methods take it (server.Deps.TLS).
type TLSConfig struct {
	// Plaintext serves and dials without TLS (--plaintext): refused outside
	// dev mode.
	Plaintext bool
	// Mount is where the PKI engine is mounted (--tls-pki-mount).
	Mount string
	// Role is the PKI role (--tls-pki-role); default the binary's name.
	Role string
	// TTL is the certificates' lifetime (--tls-cert-ttl); they are renewed
	// at two thirds of it.
	TTL time.Duration
	// Hosts are the names and addresses the certificate must be valid for
	// besides the binary's name, localhost, 127.0.0.1 and the listen
	// addresses' hosts (--tls-hosts, comma-separated): its DNS names.
	Hosts string
	// CAFile holds CAs trusted besides the PKI's (--tls-ca-file), for a CA
	// rotation.
	CAFile string
}

func (c *Config) registerTLSFlags(fs *flag.FlagSet) {
	t := &c.TLS
	fs.BoolVar(&t.Plaintext, "plaintext", t.Plaintext, "serve and dial without TLS; refused outside --dev-mode")
	fs.StringVar(&t.Mount, "tls-pki-mount", t.Mount, "path of Vault's PKI secrets engine the TLS certificate is issued by")
	fs.StringVar(&t.Role, "tls-pki-role", t.Role, "PKI role the TLS certificate is issued under (default the binary's name)")
	fs.DurationVar(&t.TTL, "tls-cert-ttl", t.TTL, "lifetime of the TLS certificate; renewed at two thirds of it, without a restart")
	fs.StringVar(&t.Hosts, "tls-hosts", t.Hosts, "comma-separated DNS names and IP addresses the TLS certificate is for besides the binary's name, localhost and the listen addresses (e.g. balance.bankbridge.svc)")
	fs.StringVar(&t.CAFile, "tls-ca-file", t.CAFile, "PEM file of CAs trusted besides the PKI's, while its root is rotated")
}

// checkTLS reports what keeps the binary's TLS from working, naming the
// flag: --plaintext outside dev mode, no Vault to issue the certificate,
// and a dev gateway (which mints tokens for anyone) reachable from other
// machines.
func (c *Config) checkTLS(kind Kind) error {
	name := c.Server.Name
	switch {
	case c.TLS.Plaintext && !c.Server.DevMode:
		return fmt.Errorf("%s: --plaintext (%s) is refused outside dev mode: every bankbridge listener speaks TLS with a certificate from Vault's PKI engine (--vault-addr); plaintext is for --dev-mode only",
			name, envName("plaintext"))
	case !c.TLS.Plaintext && c.Vault.Address == "":
		return fmt.Errorf("%s needs --vault-addr (%s): its TLS certificate is issued by Vault's PKI engine (--tls-pki-mount %s, role --tls-pki-role); in dev mode only, --plaintext serves without TLS",
			name, envName("vault-addr"), c.TLS.Mount)
	case c.TLS.TTL <= 0:
		return fmt.Errorf("config: --tls-cert-ttl must be positive")
	case kind == KindGateway && c.Server.DevMode && !loopback(c.HTTPAddr):
		return fmt.Errorf("%s: --dev-mode with --addr %s: a dev-mode gateway mints tokens for anyone who asks, so it listens on a loopback address only (127.0.0.1, ::1 or localhost)",
			name, c.HTTPAddr)
	}
	return nil
}

// loopback reports whether addr's host reaches this machine only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// certConfig is what the binary asks Vault's PKI engine for: its name,
// and every host it listens on or is named by.
func (c *Config) certConfig(kind Kind, needs Needs) certs.Config {
	var addrs []string
	switch kind {
	case KindService:
		addrs = []string{c.Server.GRPCAddr, c.Server.AdminAddr}
		if needs.HTTP {
			addrs = append(addrs, c.HTTPAddr)
		}
	case KindBank:
		addrs = []string{c.Server.GRPCAddr, c.Server.AdminAddr}
	case KindGateway:
		addrs = []string{c.HTTPAddr}
	}
	var hosts []string
	for _, a := range addrs {
		if host, _, err := net.SplitHostPort(a); err == nil && host != "" {
			hosts = append(hosts, host)
		}
	}
	for h := range strings.SplitSeq(c.TLS.Hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	return certs.Config{Name: c.Server.Name, Role: c.TLS.Role, Mount: c.TLS.Mount, TTL: c.TLS.TTL, Hosts: hosts, CAFile: c.TLS.CAFile}
}

// identityTimeout bounds a request to the identity provider.
const identityTimeout = 10 * time.Second

// identityProviderClient reaches the identity provider (its JWKS and token
// endpoint) over HTTPS that trusts the system's roots, as for any
// provider, and bankbridge's CA too, which signs the dev gateway's.
func (b *builder) identityProviderClient() (*http.Client, error) {
	if b.deps.Certs == nil {
		return &http.Client{Timeout: identityTimeout}, nil
	}
	pool, err := b.deps.Certs.SystemPool()
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	return &http.Client{Timeout: identityTimeout, Transport: tr}, nil
}

// serverTLS is a listener's TLS config, nil with --plaintext.
func (d *Deps) serverTLS(auth tls.ClientAuthType) *tls.Config {
	if d.Certs == nil {
		return nil
	}
	return d.Certs.ServerTLS(auth)
}

// TransportCredentials are the credentials to dial the bankbridge process
// named peer (consent, balance, ...) over gRPC: mutual TLS with this
// binary's certificate, the peer's certificate checked to name peer;
// plaintext with --plaintext (dev mode only).
func (d *Deps) TransportCredentials(peer string) grpccreds.TransportCredentials {
	if d.Certs == nil {
		return insecure.NewCredentials()
	}
	return grpccreds.NewTLS(d.Certs.ClientTLS(peer))
}

// ClientTLS is the TLS config to reach the bankbridge process named peer
// over HTTPS ("" for any process of the PKI), presenting this binary's
// certificate; nil with --plaintext, for plain HTTP.
func (d *Deps) ClientTLS(peer string) *tls.Config {
	if d.Certs == nil {
		return nil
	}
	return d.Certs.ClientTLS(peer)
}
