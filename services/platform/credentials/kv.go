package credentials

import (
	"context"
	"fmt"
)

// KV is a part of the KV v2 mount whose secrets a service makes and
// changes itself, rather than reading what operators wrote: webhook
// signing secrets, at <Mount>/webhooks/<endpoint_id>. It goes through the
// provider's Vault client, so it shares its login, renewal and re-login.
// Its reads are not cached: the caller knows when it changed a secret, and
// caches as it needs. Errors match ErrNotFound or ErrUnavailable (with
// ErrPermissionDenied when the policy refuses), like Bank's; they never
// carry a secret's value.
type KV struct {
	p      *Provider
	prefix string
}

// KV returns the secrets under <Mount>/<prefix>/. prefix is one path
// segment, such as "webhooks".
func (p *Provider) KV(prefix string) (*KV, error) {
	if err := validID(prefix); err != nil {
		return nil, fmt.Errorf("credentials: KV prefix %q: %w", prefix, err)
	}
	return &KV{p: p, prefix: prefix}, nil
}

func (k *KV) path(id string) (string, error) {
	if err := validID(id); err != nil {
		return "", err
	}
	return k.prefix + "/" + id, nil
}

// Put writes data as a new version of the secret id and returns the
// version.
func (k *KV) Put(ctx context.Context, id string, data map[string]string) (int, error) {
	path, err := k.path(id)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, k.p.cfg.RequestTimeout)
	defer cancel()
	raw := make(map[string]any, len(data))
	for key, v := range data {
		raw[key] = v
	}
	s, err := k.p.client.KVv2(k.p.cfg.Mount).Put(ctx, path, raw)
	if err != nil {
		return 0, fmt.Errorf("write %s/%s: %w", k.p.cfg.Mount, path, vaultError(err))
	}
	if s == nil || s.VersionMetadata == nil {
		return 0, fmt.Errorf("write %s/%s: no version in Vault's answer: %w", k.p.cfg.Mount, path, ErrUnavailable)
	}
	return s.VersionMetadata.Version, nil
}

// Get reads the current version of the secret id.
func (k *KV) Get(ctx context.Context, id string) (Secret, error) {
	path, err := k.path(id)
	if err != nil {
		return Secret{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, k.p.cfg.RequestTimeout)
	defer cancel()
	s, err := k.p.readPath(ctx, id, path)
	if err != nil {
		return Secret{}, fmt.Errorf("read %s/%s: %w", k.p.cfg.Mount, path, err)
	}
	return s, nil
}

// Delete removes the secret id, every version and its metadata. Deleting
// a secret that does not exist succeeds.
func (k *KV) Delete(ctx context.Context, id string) error {
	path, err := k.path(id)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, k.p.cfg.RequestTimeout)
	defer cancel()
	if err := k.p.client.KVv2(k.p.cfg.Mount).DeleteMetadata(ctx, path); err != nil {
		return fmt.Errorf("delete %s/%s: %w", k.p.cfg.Mount, path, vaultError(err))
	}
	return nil
}
