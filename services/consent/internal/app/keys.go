package app

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
)

// MinKeyLen is the shortest secret key the service takes, in bytes: a key
// as long as HMAC-SHA256's output.
const MinKeyLen = 32

// Keys are the consent service's secret keys, kept in Vault (KV v2
// bankbridge/keys/consent) so that every replica holds the same ones and
// the database alone reveals neither codes nor logins.
type Keys struct {
	// Code are the keys of the fingerprints of requests that carry an
	// idempotency key (HMAC-SHA256 over every field of the request, a
	// VerifyLink's two-factor code among them): the current key first,
	// then older ones whose fingerprints still match while a rotation
	// settles. A plain hash of a six-digit code would give the code away
	// to anyone who reads the table.
	Code [][]byte
	// Login is the key of the hash of bank login hints (HMAC-SHA256),
	// under which wrong codes are counted across links.
	Login []byte
}

// Validate checks that there is a current code key and a login key, each
// at least MinKeyLen bytes long. Errors name the key, never its value.
func (k Keys) Validate() error {
	var problems []error
	if len(k.Code) == 0 {
		problems = append(problems, errors.New("no code key"))
	}
	for i, c := range k.Code {
		if len(c) < MinKeyLen {
			problems = append(problems, fmt.Errorf("code key %d is %d bytes, want at least %d", i, len(c), MinKeyLen))
		}
	}
	if len(k.Login) < MinKeyLen {
		problems = append(problems, fmt.Errorf("login key is %d bytes, want at least %d", len(k.Login), MinKeyLen))
	}
	return errors.Join(problems...)
}

// randomKeys are keys of this process alone, for tests and tools that do
// not keep fingerprints across restarts.
func randomKeys() Keys {
	random := func() []byte {
		b := make([]byte, MinKeyLen)
		_, _ = rand.Read(b)
		return b
	}
	return Keys{Code: [][]byte{random()}, Login: random()}
}

// keyedHash is HMAC-SHA256 under key of parts, each length-prefixed so that
// no two different lists of parts collide, in hex.
func keyedHash(key []byte, parts ...string) string {
	h := hmac.New(sha256.New, key)
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// fingerprints are a request's fingerprints, one per code key, the
// current key's first: what is stored is the first, what matches is any.
func (s *Service) fingerprints(parts ...string) []string {
	keys := s.keys().Code
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = keyedHash(k, parts...)
	}
	return out
}

// matches reports whether a stored fingerprint is one of fps.
func matches(stored string, fps []string) bool {
	return slices.ContainsFunc(fps, func(fp string) bool { return hmac.Equal([]byte(fp), []byte(stored)) })
}

// loginHash is the keyed hash of a bank login hint: wrong codes are
// counted under it, per user and bank, without the login being stored.
func (s *Service) loginHash(login string) string {
	return keyedHash(s.keys().Login, "login", login)
}

// keys are the keys in force.
func (s *Service) keys() Keys { return s.cfg.Keys() }
