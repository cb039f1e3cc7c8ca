// Package secrets keeps webhook endpoints' signing secrets in Vault KV v2,
// at <mount>/webhooks/<endpoint_id> (bankbridge/webhooks/... by default),
// through the platform's credentials provider (its login and renewal), and
// caches them briefly for the deliverer. It implements app.Secrets.
//
// A rotation made here drops this process's cached copy at once; another
// replica picks it up within the cache TTL. Until then it signs with the
// secrets it had, which still verify: a rotation keeps the old ones
// signing for its overlap.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/credentials"
	"github.com/bankbridge/bankbridge/services/webhooks/internal/app"
)

// Prefix is where under the KV mount the secrets live.
const Prefix = "webhooks"

// dataKey is the one key of a secret's data: the set, as JSON.
const dataKey = "signing_secrets"

// DefaultTTL is how long a read secret is reused.
const DefaultTTL = 30 * time.Second

// Vault is app.Secrets on Vault.
type Vault struct {
	kv  *credentials.KV
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	set     app.SecretSet
	fetched time.Time
}

var _ app.Secrets = (*Vault)(nil)

// New returns the secrets under <mount>/webhooks of p's Vault, cached for
// ttl (0: DefaultTTL).
func New(p *credentials.Provider, ttl time.Duration) (*Vault, error) {
	kv, err := p.KV(Prefix)
	if err != nil {
		return nil, err
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Vault{kv: kv, ttl: ttl, now: time.Now, cache: map[string]cached{}}, nil
}

// Put writes s as the endpoint's new secret version.
func (v *Vault) Put(ctx context.Context, endpointID string, s app.SecretSet) error {
	enc, err := s.Encode()
	if err != nil {
		return err
	}
	v.forget(endpointID)
	if _, err := v.kv.Put(ctx, endpointID, map[string]string{dataKey: enc}); err != nil {
		return err
	}
	v.mu.Lock()
	v.cache[endpointID] = cached{set: s, fetched: v.now()}
	v.mu.Unlock()
	return nil
}

// Get reads the endpoint's secrets, from the cache when it is fresh.
func (v *Vault) Get(ctx context.Context, endpointID string) (app.SecretSet, error) {
	v.mu.Lock()
	c, ok := v.cache[endpointID]
	v.mu.Unlock()
	if ok && v.now().Sub(c.fetched) < v.ttl {
		return c.set, nil
	}
	sec, err := v.kv.Get(ctx, endpointID)
	if errors.Is(err, credentials.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", app.ErrNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	set, err := app.DecodeSecrets(sec.Data[dataKey])
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", endpointID, err)
	}
	v.mu.Lock()
	v.cache[endpointID] = cached{set: set, fetched: v.now()}
	v.mu.Unlock()
	return set, nil
}

// Delete removes the endpoint's secrets, every version.
func (v *Vault) Delete(ctx context.Context, endpointID string) error {
	v.forget(endpointID)
	return v.kv.Delete(ctx, endpointID)
}

func (v *Vault) forget(endpointID string) {
	v.mu.Lock()
	delete(v.cache, endpointID)
	v.mu.Unlock()
}
