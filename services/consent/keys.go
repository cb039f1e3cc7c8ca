package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/platform/credentials"
)

// Where the consent service's secret keys live in Vault: KV v2
// bankbridge/keys/consent. Operators write it (the dev stack seeds it);
// the service only reads it (deploy/vault/policies/bankbridge-consent.hcl).
// Each key is at least app.MinKeyLen bytes, e.g. `openssl rand -hex 32`.
const (
	keysPrefix = "keys"
	keysID     = "consent"
	// codeKeyField keys the fingerprints of requests kept for idempotent
	// retries, which cover a VerifyLink's two-factor code.
	codeKeyField = "code_hmac_key"
	// previousCodeKeyField, optional, is the code key being rotated away:
	// fingerprints made with it still match until the operator removes
	// it, after the idempotency retention (24h).
	previousCodeKeyField = "code_hmac_key_previous"
	// loginKeyField keys the hashes of bank logins under which wrong codes
	// are counted. Rotating it starts every count afresh.
	loginKeyField = "login_hmac_key"
)

// vaultKeys are the service's keys as last read from Vault.
type vaultKeys struct {
	kv      *credentials.KV
	current atomic.Pointer[app.Keys]
}

// readKeys reads the keys from Vault, failing when they are missing or
// too short: a service without them would fingerprint codes under a key
// other replicas do not share.
func readKeys(ctx context.Context, p *credentials.Provider) (*vaultKeys, error) {
	kv, err := p.KV(keysPrefix)
	if err != nil {
		return nil, err
	}
	v := &vaultKeys{kv: kv}
	if _, err := v.refresh(ctx); err != nil {
		return nil, err
	}
	return v, nil
}

// Keys returns the keys in force (app.Config.Keys).
func (v *vaultKeys) Keys() app.Keys { return *v.current.Load() }

// refresh reads the keys again; when that fails, the ones read before stay
// in force. Errors name the path and the fields, never a value.
func (v *vaultKeys) refresh(ctx context.Context) (int, error) {
	s, err := v.kv.Get(ctx, keysID)
	if err != nil {
		return 0, fmt.Errorf("consent keys: %w", err)
	}
	keys := app.Keys{Login: []byte(s.Data[loginKeyField])}
	if c := s.Data[codeKeyField]; c != "" {
		keys.Code = append(keys.Code, []byte(c))
	}
	if c := s.Data[previousCodeKeyField]; c != "" {
		keys.Code = append(keys.Code, []byte(c))
	}
	if err := keys.Validate(); err != nil {
		return 0, fmt.Errorf("consent keys at %s/%s (fields %s, %s, optional %s): %w",
			keysPrefix, keysID, codeKeyField, loginKeyField, previousCodeKeyField, err)
	}
	if v.current.Swap(&keys) == nil {
		return 0, nil
	}
	return 1, nil
}

// keysRefresh is how often the keys are read again: as often as the
// provider re-reads bank credentials.
func keysRefresh(cfg *config) time.Duration {
	if cfg.Vault.RefreshInterval > 0 {
		return cfg.Vault.RefreshInterval
	}
	return credentials.DefaultRefreshInterval
}
