package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
)

// Refs derives the pseudonymous user references that stand for users on
// the bus. Every service and replica must share the key (the shared
// --subject-key), or a stream filtered in one service would miss the
// events another publishes.
type Refs struct {
	key []byte
}

// refLabel separates these references from other pseudonyms derived from
// the same key (the access log's subject ids), so the two cannot be linked.
const refLabel = "bankbridge/events/user-ref/v1\x00"

// NewRefs returns the references keyed with key.
func NewRefs(key []byte) Refs { return Refs{key: append([]byte(nil), key...)} }

// refEncoding is lowercase base32 without padding: a valid subject token.
var refEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// User returns the reference of user: "u" and 26 base32 characters, the
// first 128 bits of HMAC-SHA256(key, label || user). It is stable, reveals
// nothing of the user without the key, and is a valid NATS subject token.
func (r Refs) User(user string) string {
	m := hmac.New(sha256.New, r.key)
	m.Write([]byte(refLabel))
	m.Write([]byte(user))
	return "u" + refEncoding.EncodeToString(m.Sum(nil)[:16])
}
