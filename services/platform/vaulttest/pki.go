package vaulttest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/certs"
)

// PKIMount is where EnablePKI mounts the PKI secrets engine, as the dev
// stack and production do.
const PKIMount = certs.DefaultMount

// EnablePKI sets the server's PKI secrets engine up as the dev stack does
// (certs.SetUpDev): mounted at pki/, a root CA, and a role for each of
// names, for the process of that name. Called again, it adds roles. It
// returns the CA's certificate pool.
func (s *Server) EnablePKI(t testing.TB, names ...string) *x509.CertPool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	ca, err := certs.SetUpDev(ctx, s.client, PKIMount, names)
	if err != nil {
		t.Fatalf("vaulttest: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(ca)) {
		t.Fatal("vaulttest: the PKI's CA is not PEM")
	}
	s.mu.Lock()
	s.pkiCA = ca
	s.mu.Unlock()
	return pool
}

// PKICA returns the PEM certificate of the CA EnablePKI made, "" before.
func (s *Server) PKICA() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pkiCA
}

// IssueCertificate issues a certificate from the role name (as root), for
// a test that plays the process of that name: its client certificate, or
// a server's.
func (s *Server) IssueCertificate(t testing.TB, name string, ttl time.Duration) tls.Certificate {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	secret, err := s.client.Logical().WriteWithContext(ctx, PKIMount+"/issue/"+name, map[string]any{
		"common_name": name, "alt_names": "localhost", "ip_sans": "127.0.0.1", "ttl": ttl.String(),
	})
	if err != nil || secret == nil {
		t.Fatalf("vaulttest: issue a certificate for %s: %v", name, err)
	}
	certPEM, _ := secret.Data["certificate"].(string)
	keyPEM, _ := secret.Data["private_key"].(string)
	pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		t.Fatalf("vaulttest: the certificate issued for %s: %v", name, err)
	}
	return pair
}
