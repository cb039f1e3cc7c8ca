package credentials

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// IssuedCertificate is a certificate Vault's PKI secrets engine issued, in
// PEM as Vault answered. PrivateKey is a credential: it prints and logs as
// [redacted].
type IssuedCertificate struct {
	// Certificate is the PEM leaf certificate.
	Certificate string
	// PrivateKey is its PEM private key.
	PrivateKey Sensitive
	// IssuingCA is the PEM certificate of the CA that signed it.
	IssuingCA string
	// CAChain holds the PEM certificates of the chain up to the root, when
	// Vault gave one.
	CAChain []string
	// SerialNumber is the certificate's serial, as Vault prints it.
	SerialNumber string
	// Expiration is the certificate's NotAfter.
	Expiration time.Time
}

// IssueCertificate asks the PKI secrets engine mounted at mount to issue a
// certificate under role (POST <mount>/issue/<role>), with the token the
// provider keeps alive for its reads. data are the engine's issue
// parameters: common_name, alt_names, ip_sans, ttl, ... Errors match
// ErrUnavailable (with ErrPermissionDenied when the token's policy does not
// grant the role, ErrNotFound for an unknown role) and carry Vault's status
// code, never its answer, which may quote the request.
func (p *Provider) IssueCertificate(ctx context.Context, mount, role string, data map[string]any) (IssuedCertificate, error) {
	if p.ctx.Err() != nil {
		return IssuedCertificate{}, errClosed
	}
	if mount == "" || role == "" || strings.Contains(role, "/") || strings.HasPrefix(mount, "/") || strings.HasSuffix(mount, "/") {
		return IssuedCertificate{}, fmt.Errorf("issue certificate: mount %q, role %q: want a mount path and one role name: %w", mount, role, ErrNotFound)
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
	defer cancel()
	path := mount + "/issue/" + role
	raw, err := p.client.Logical().WriteWithContext(ctx, path, data)
	if err != nil {
		if isForbidden(err) {
			p.checkToken() // a token that died while Vault was away is denied everything
		}
		return IssuedCertificate{}, fmt.Errorf("issue certificate at %s: %w", path, vaultError(err))
	}
	c, err := issuedCertificate(raw.Data)
	if err != nil {
		return IssuedCertificate{}, fmt.Errorf("issue certificate at %s: %w: %w", path, err, ErrUnavailable)
	}
	return c, nil
}

// issuedCertificate reads the fields of a PKI issue answer.
func issuedCertificate(data map[string]any) (IssuedCertificate, error) {
	if data == nil {
		return IssuedCertificate{}, errors.New("answer holds no data")
	}
	str := func(k string) string { s, _ := data[k].(string); return s }
	c := IssuedCertificate{
		Certificate:  str("certificate"),
		PrivateKey:   Sensitive(str("private_key")),
		IssuingCA:    str("issuing_ca"),
		SerialNumber: str("serial_number"),
	}
	if c.Certificate == "" || c.PrivateKey == "" || c.IssuingCA == "" {
		return IssuedCertificate{}, errors.New("answer lacks certificate, private_key or issuing_ca")
	}
	if chain, ok := data["ca_chain"].([]any); ok {
		for _, pem := range chain {
			if s, ok := pem.(string); ok && s != "" {
				c.CAChain = append(c.CAChain, s)
			}
		}
	}
	if n, ok := data["expiration"].(json.Number); ok {
		if sec, err := n.Int64(); err == nil {
			c.Expiration = time.Unix(sec, 0)
		}
	}
	return c, nil
}
