package carrierpush

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/bankbridge/bankbridge/adapters/stdwebhook"
	"github.com/bankbridge/bankbridge/services/platform/credentials"
)

// VaultPrefix is where under the KV v2 mount the carriers' signing secrets
// live: bankbridge/carriers/<carrier>. Operators write them (and give the
// carrier the same secret); services only read them
// (deploy/vault/policies/bankbridge-service.hcl).
const VaultPrefix = "carriers"

// The keys of a carrier's secret in Vault.
const (
	// SecretKey holds the current signing secret, "whsec_<base64>".
	SecretKey = "secret"
	// PreviousKey, optional, holds the secret being rotated away, still
	// accepted until the operator removes it.
	PreviousKey = "previous"
)

// Defaults of VaultOptions.
const (
	DefaultSecretsTTL = time.Minute
	DefaultMaxStale   = time.Hour
)

const (
	// retryAfterFailure is how long, after a failed read, a cached secret
	// is served without asking Vault again, so that every push during an
	// outage does not wait for Vault to fail.
	retryAfterFailure = 5 * time.Second
	// maxUnknown bounds the unknown carriers remembered, which anyone can
	// make up; past it they are forgotten at once.
	maxUnknown = 1024
)

// VaultOptions tune VaultSecrets; the zero value of each field takes its
// default.
type VaultOptions struct {
	// TTL is how long a read is reused, so that a burst of pushes reads
	// Vault once, and how long a rotation takes to reach this process;
	// default DefaultSecretsTTL. An unknown carrier is remembered as long.
	TTL time.Duration
	// MaxStale is how long after its last successful read a carrier's
	// secrets are still served while Vault cannot be read; default
	// DefaultMaxStale, and never less than TTL.
	MaxStale time.Duration
	// Logger gets a line when cached secrets are served because Vault
	// failed, or when Vault's policy refuses a carrier; default
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock that ages the cache; default time.Now.
	Now func() time.Time
}

// kvReader reads one secret under the prefix: credentials.KV.
type kvReader interface {
	Get(ctx context.Context, id string) (credentials.Secret, error)
}

// VaultSecrets are the carriers' signing secrets in Vault KV v2, at
// <mount>/carriers/<carrier> (key secret, and previous while a rotation
// settles), read through the credentials provider (its login and renewal)
// and cached.
type VaultSecrets struct {
	kv       kvReader
	ttl      time.Duration
	maxStale time.Duration
	log      *slog.Logger
	now      func() time.Time
	sf       singleflight.Group

	mu    sync.Mutex
	cache map[string]*cached
}

// cached is what is known of one carrier.
type cached struct {
	secrets  []string  // nil: the carrier has no secret
	fetched  time.Time // last successful read (or not-found answer)
	failedAt time.Time // last failed read since then; zero if none
}

var _ Secrets = (*VaultSecrets)(nil)

// NewVaultSecrets returns the carriers' secrets under <mount>/carriers of
// p's Vault.
func NewVaultSecrets(p *credentials.Provider, opts VaultOptions) (*VaultSecrets, error) {
	kv, err := p.KV(VaultPrefix)
	if err != nil {
		return nil, err
	}
	return newVaultSecrets(kv, opts), nil
}

func newVaultSecrets(kv kvReader, opts VaultOptions) *VaultSecrets {
	if opts.TTL <= 0 {
		opts.TTL = DefaultSecretsTTL
	}
	if opts.MaxStale <= 0 {
		opts.MaxStale = DefaultMaxStale
	}
	opts.MaxStale = max(opts.MaxStale, opts.TTL)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &VaultSecrets{kv: kv, ttl: opts.TTL, maxStale: opts.MaxStale, log: opts.Logger, now: opts.Now, cache: map[string]*cached{}}
}

// CarrierSecrets returns the carrier's signing secrets, current first:
// from the cache while it is younger than the TTL, else from Vault (one
// read per carrier however many pushes ask at once). While Vault cannot be
// read, cached secrets are served until MaxStale. Errors:
// ErrUnknownCarrier when Vault holds no secret for the carrier (or its
// policy does not grant it), credentials.ErrUnavailable when Vault cannot
// be read and nothing usable is cached, any other when the secret in Vault
// is malformed. No error carries a secret.
func (v *VaultSecrets) CarrierSecrets(ctx context.Context, carrier string) ([]string, error) {
	if secrets, err, ok := v.fromCache(carrier); ok {
		return secrets, err
	}
	// One read per carrier, shared by every caller and bound to none of
	// them: one push giving up must not fail the others.
	ch := v.sf.DoChan(carrier, func() (any, error) {
		return v.refresh(context.WithoutCancel(ctx), carrier)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.([]string), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// fromCache answers when no read of Vault is due.
func (v *VaultSecrets) fromCache(carrier string) ([]string, error, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	c := v.cache[carrier]
	if c == nil {
		return nil, nil, false
	}
	now := v.now()
	switch {
	case now.Sub(c.fetched) < v.ttl && c.secrets == nil:
		return nil, unknown(carrier), true
	case now.Sub(c.fetched) < v.ttl:
		return c.secrets, nil, true
	case c.secrets != nil && !c.failedAt.IsZero() && now.Sub(c.failedAt) < retryAfterFailure && now.Sub(c.fetched) < v.maxStale:
		return c.secrets, nil, true
	}
	return nil, nil, false
}

func unknown(carrier string) error {
	return fmt.Errorf("carrier %s: %w", carrier, ErrUnknownCarrier)
}

// refresh reads the carrier's secrets from Vault and updates the cache.
func (v *VaultSecrets) refresh(ctx context.Context, carrier string) ([]string, error) {
	// A caller that missed the cache may get here just after another read
	// finished.
	if secrets, err, ok := v.fromCache(carrier); ok {
		return secrets, err
	}
	s, err := v.kv.Get(ctx, carrier)
	now := v.now()
	switch {
	case err == nil:
		secrets, err := signingSecrets(s)
		if err != nil {
			return nil, fmt.Errorf("carrier %s: Vault version %d: %w", carrier, s.Version, err)
		}
		v.store(carrier, &cached{secrets: secrets, fetched: now})
		return secrets, nil
	case errors.Is(err, credentials.ErrPermissionDenied):
		// Vault's policy does not grant this carrier: to the caller it is
		// unknown, to the operator a policy to check.
		v.log.WarnContext(ctx, "Vault's policy refuses a carrier's signing secret", slog.String(attrCarrier, carrier), slog.Any("error", err))
		v.store(carrier, &cached{fetched: now})
		return nil, unknown(carrier)
	case errors.Is(err, credentials.ErrNotFound):
		v.store(carrier, &cached{fetched: now})
		return nil, unknown(carrier)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	c := v.cache[carrier]
	if c == nil || c.secrets == nil || now.Sub(c.fetched) >= v.maxStale {
		return nil, fmt.Errorf("carrier %s: %w", carrier, err)
	}
	c.failedAt = now
	v.log.WarnContext(ctx, "reading a carrier's signing secret failed; serving the cached one",
		slog.String(attrCarrier, carrier), slog.Duration("bankbridge.secret_age", now.Sub(c.fetched)), slog.Any("error", err))
	return c.secrets, nil
}

// store caches what was read of a carrier. Unknown carriers are
// remembered too, so that pushes for a made-up carrier do not each read
// Vault, but only up to maxUnknown of them.
func (v *VaultSecrets) store(carrier string, c *cached) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if c.secrets == nil {
		n := 0
		for _, e := range v.cache {
			if e.secrets == nil {
				n++
			}
		}
		if n >= maxUnknown {
			for id, e := range v.cache {
				if e.secrets == nil {
					delete(v.cache, id)
				}
			}
		}
	}
	v.cache[carrier] = c
}

// signingSecrets reads the current and the previous secret of a carrier's
// Vault secret, each checked to be a signing secret. The errors name the
// key, never the value.
func signingSecrets(s credentials.Secret) ([]string, error) {
	var out []string
	for _, key := range []string{SecretKey, PreviousKey} {
		val, ok := s.Data[key]
		switch {
		case (!ok || val == "") && key == PreviousKey:
			continue
		case !ok:
			return nil, fmt.Errorf("no key %q", key)
		}
		if _, err := stdwebhook.Key(val); err != nil {
			return nil, fmt.Errorf("key %q: %w", key, err)
		}
		out = append(out, val)
	}
	return out, nil
}
