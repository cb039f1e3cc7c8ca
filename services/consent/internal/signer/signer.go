// Package signer signs the consent service's access log chain heads with a
// key of Vault's Transit engine, and checks those signatures: the
// app.HeadSigner the service runs with. Vault holds the private key, so
// whoever can write to the database, but not use the key, cannot sign a
// chain they rewrote; signatures are checked locally, with the key's public
// versions (credentials.Transit caches them), so verifying costs no request
// to Vault but after a rotation.
package signer

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/platform/credentials"
)

// DefaultKey is the Transit key that signs the heads: ed25519 or
// ecdsa-p256, and the consent service's Vault policy
// (deploy/vault/policies/bankbridge-consent.hcl) lets it sign with it and
// read its public versions, nothing more.
const DefaultKey = "bankbridge-access-log"

// Transit is app.HeadSigner over a Transit key.
type Transit struct{ key *credentials.Transit }

var _ app.HeadSigner = (*Transit)(nil)

// New returns the signer of key.
func New(key *credentials.Transit) *Transit { return &Transit{key: key} }

// Sign signs every message with the key's latest version, in one request.
func (s *Transit) Sign(ctx context.Context, messages [][]byte) ([]app.HeadSignature, error) {
	sigs, err := s.key.Sign(ctx, messages)
	if err != nil {
		return nil, err
	}
	out := make([]app.HeadSignature, len(sigs))
	for i, sig := range sigs {
		out[i] = app.HeadSignature{KeyVersion: sig.KeyVersion, Value: sig.Value}
	}
	return out, nil
}

// Verify checks sig over message with the key version it names; a
// signature that does not verify matches app.ErrSignatureInvalid.
func (s *Transit) Verify(ctx context.Context, message []byte, sig app.HeadSignature) error {
	err := s.key.Verify(ctx, message, credentials.Signature{KeyVersion: sig.KeyVersion, Value: sig.Value})
	if errors.Is(err, credentials.ErrBadSignature) {
		why := strings.TrimSuffix(err.Error(), ": "+credentials.ErrBadSignature.Error())
		return fmt.Errorf("%w: %s", app.ErrSignatureInvalid, why)
	}
	return err
}
