package runtime

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// transportCredentials secures the connection to a remote adapter as its
// TLS block says; without one the connection is plaintext.
func (bc *bankClient) transportCredentials() (credentials.TransportCredentials, error) {
	t := bc.bank.TLS
	if t == nil {
		return insecure.NewCredentials(), nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: no PEM certificate in %s", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	switch {
	case t.ClientCertFromVault:
		cfg.GetClientCertificate = bc.clientCertificate
	case t.ClientCertFromService:
		cfg.GetClientCertificate = bc.ownCert
		// Connections are long-lived; a resumed session skips the full
		// handshake when one is made again.
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	}
	return credentials.NewTLS(cfg), nil
}

// WithClientCertificate gives the registry the calling service's own
// certificate, for remote banks whose TLS block asks for it
// (client_cert_from_service): get is called at every handshake, so a
// renewed certificate is presented from the next connection on.
// bankbridge's services pass the certificate Vault's PKI engine issued
// them (services/platform/certs).
func WithClientCertificate(get func(*tls.CertificateRequestInfo) (*tls.Certificate, error)) Option {
	return func(o *registryOptions) { o.clientCert = get }
}

// clientCertificate fetches the client certificate from the bank's
// credential at every handshake, so a rotated one is used from the next
// connection on; the parsed pair is kept while the PEM stays the same.
func (bc *bankClient) clientCertificate(info *tls.CertificateRequestInfo) (*tls.Certificate, error) {
	creds, err := bc.creds.BankCredential(info.Context(), bc.bank)
	if err != nil {
		return nil, fmt.Errorf("bank %s: client certificate: credentials unavailable", bc.bank.ID)
	}
	certPEM, keyPEM := credential(creds, CredentialTLSCert), credential(creds, CredentialTLSKey)
	if certPEM == "" || keyPEM == "" {
		return nil, fmt.Errorf("bank %s: client certificate: credential keys %s and %s are required", bc.bank.ID, CredentialTLSCert, CredentialTLSKey)
	}
	return bc.tlsCert.get(certPEM, keyPEM)
}

func credential(creds map[string]string, name string) string {
	for k, v := range creds {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// certCache keeps the last parsed client certificate.
type certCache struct {
	mu      sync.Mutex
	certPEM string
	keyPEM  string
	cert    *tls.Certificate
}

func (c *certCache) get(certPEM, keyPEM string) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cert != nil && c.certPEM == certPEM && c.keyPEM == keyPEM {
		return c.cert, nil
	}
	cert, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		// X509KeyPair's errors describe the PEM structure, never its bytes.
		return nil, errors.New("client certificate: credential keys tls_cert and tls_key do not hold a matching PEM certificate and key")
	}
	c.certPEM, c.keyPEM, c.cert = certPEM, keyPEM, &cert
	return c.cert, nil
}
