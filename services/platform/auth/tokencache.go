package auth

import (
	"crypto/sha256"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

const (
	// defaultTokenCacheSize holds the tokens of 10,000 concurrent callers;
	// an entry is a few hundred bytes.
	defaultTokenCacheSize = 10_000
	// tokenCacheTTL caps how long a verified token is taken on trust
	// before its signature is checked again, whatever its exp.
	tokenCacheTTL = 5 * time.Minute
)

// cachedToken is a token that passed every check, and the key that
// verified it.
type cachedToken struct {
	principal Principal
	kid       string
	key       jwk.Key
	until     time.Time
}

// tokenCache is a bounded LRU of verified tokens keyed by the SHA-256 of the
// raw token, so the cache never holds a usable bearer token.
type tokenCache struct {
	lru *lru.Cache[[sha256.Size]byte, *cachedToken]
}

func newTokenCache(size int) *tokenCache {
	c, err := lru.New[[sha256.Size]byte, *cachedToken](size)
	if err != nil { // only for size <= 0, which NewVerifier rules out
		panic(err)
	}
	return &tokenCache{lru: c}
}

func (c *tokenCache) get(sum [sha256.Size]byte) (*cachedToken, bool) { return c.lru.Get(sum) }

func (c *tokenCache) remove(sum [sha256.Size]byte) { c.lru.Remove(sum) }

func (c *tokenCache) put(sum [sha256.Size]byte, p Principal, kid string, key jwk.Key, now time.Time) {
	c.lru.Add(sum, &cachedToken{principal: p, kid: kid, key: key, until: now.Add(tokenCacheTTL)})
}

func (c *tokenCache) len() int { return c.lru.Len() }
