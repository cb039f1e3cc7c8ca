// Package pseudonym makes the references on-call sees instead of user ids
// and consent links: a keyed hash (HMAC-SHA256) whose key is in Vault
// (KV v2 bankbridge/telemetry/pseudonym, key "key"). Every service reads
// the same key, so one user has one reference in every service's logs;
// without the key a reference cannot be tied back to a user, not even by
// hashing every known id. A reference is stable while the key is: rotating
// the key starts new references.
//
// References go into logs only (the telemetry allow-list lets user_ref and
// link_ref through there), never into metric labels: one series per user
// would be both a cardinality and a privacy problem.
package pseudonym

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// Vault location of the key, under the KV v2 mount: Path's secret, field
// KeyField, at least MinKeyBytes once hex-decoded (or as raw text).
const (
	PathPrefix  = "telemetry"
	PathID      = "pseudonym"
	Path        = PathPrefix + "/" + PathID
	KeyField    = "key"
	MinKeyBytes = 32
)

// Log keys of the references.
const (
	UserRefKey = "user_ref"
	LinkRefKey = "link_ref"
)

// refHexLen is a reference's length in hex digits after its prefix: 64
// bits, enough that two users of one deployment do not share one.
const refHexLen = 16

// Refs makes references with one key. It is safe for concurrent use; a nil
// *Refs makes none ("").
type Refs struct {
	key []byte
}

// New returns Refs with key, which must be at least MinKeyBytes long.
func New(key []byte) (*Refs, error) {
	if len(key) < MinKeyBytes {
		return nil, fmt.Errorf("pseudonym key: %d bytes, want at least %d", len(key), MinKeyBytes)
	}
	return &Refs{key: append([]byte(nil), key...)}, nil
}

// ParseKey reads the key as Vault holds it: hex when it decodes as hex,
// the text's bytes otherwise.
func ParseKey(s string) []byte {
	if b, err := hex.DecodeString(s); err == nil {
		return b
	}
	return []byte(s)
}

// User returns the reference of user id, "u_" and 16 hex digits; "" for
// an empty id or nil Refs.
func (r *Refs) User(id string) string { return r.ref("u_", "user", id) }

// Link returns the reference of a consent link's resource name
// (users/{user}/links/{link}), "l_" and 16 hex digits; "" for an empty name
// or nil Refs.
func (r *Refs) Link(name string) string { return r.ref("l_", "link", name) }

// ref hashes the kind with the value, so that a user and a link with the
// same text get unrelated references.
func (r *Refs) ref(prefix, kind, value string) string {
	if r == nil || value == "" {
		return ""
	}
	m := hmac.New(sha256.New, r.key)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return prefix + hex.EncodeToString(m.Sum(nil))[:refHexLen]
}

// Source reads a secret's fields; the Vault credentials provider's KV
// (credentials.Provider.KV(PathPrefix)) is one.
type Source interface {
	Get(ctx context.Context, id string) (map[string]string, error)
}

// ErrNoKey says the secret holds no key field.
var ErrNoKey = errors.New("pseudonym: no " + KeyField + " field at " + Path)

// Load reads the key from src and returns Refs with it.
func Load(ctx context.Context, src Source) (*Refs, error) {
	data, err := src.Get(ctx, PathID)
	if err != nil {
		return nil, fmt.Errorf("pseudonym key at %s: %w", Path, err)
	}
	k := data[KeyField]
	if k == "" {
		return nil, ErrNoKey
	}
	return New(ParseKey(k))
}
