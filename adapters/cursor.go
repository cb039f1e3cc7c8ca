package adapters

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// CursorKeySize is the size of a [CursorCodec] key: 32 random bytes, kept
// as a secret of the adapter (the same on every replica, rotated by
// accepting the old key until its cursors are no longer in use).
const CursorKeySize = 32

// maxCursorLen is the longest cursor the protocol carries
// (next_cursor, StreamEventsResponse.cursor).
const maxCursorLen = 1024

// CursorCodec turns an adapter's paging or sync state (the bank's own page
// token, a timestamp, the ids already sent) into the opaque cursor the
// protocol carries, and back. A cursor is sealed with AES-256-GCM: bankbridge
// and its callers can neither read it (it may hold the bank's references)
// nor forge or alter it, and one made for one scope (an account) does not
// open in another. It is safe for concurrent use.
//
//	codec, err := adapters.NewCursorCodec(key) // key: CursorKeySize secret bytes
//	next, err := codec.Encode(req.GetBankAccountId(), syncState{BankPage: page, Since: t})
//	var st syncState
//	if err := codec.Decode(req.GetBankAccountId(), req.GetCursor(), &st); err != nil {
//		return nil, err // INVALID_ARGUMENT (CURSOR_INVALID): bankbridge starts again from empty
//	}
type CursorCodec struct {
	aead []cipher.AEAD // the first seals; every one opens
}

// NewCursorCodec returns a CursorCodec that seals with key and opens
// cursors sealed with key or any of old (a rotation: give the previous keys
// until the cursors they sealed are no longer in use). Each key is
// CursorKeySize bytes.
func NewCursorCodec(key []byte, old ...[]byte) (*CursorCodec, error) {
	c := &CursorCodec{}
	for i, k := range append([][]byte{key}, old...) {
		if len(k) != CursorKeySize {
			return nil, fmt.Errorf("cursor key %d: %d bytes, want %d", i, len(k), CursorKeySize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("cursor key %d: %w", i, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("cursor key %d: %w", i, err)
		}
		c.aead = append(c.aead, aead)
	}
	return c, nil
}

// Encode seals v, marshalled as JSON, into a cursor valid in scope only
// (for instance the account id; "" for none). It fails when the cursor
// would be longer than the protocol's 1024 characters: keep the state
// small.
func (c *CursorCodec) Encode(scope string, v any) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode cursor: %w", err)
	}
	aead := c.aead[0]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("encode cursor: %w", err)
	}
	cursor := base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, plain, []byte(scope)))
	if len(cursor) > maxCursorLen {
		return "", fmt.Errorf("encode cursor: %d characters, the protocol allows %d", len(cursor), maxCursorLen)
	}
	return cursor, nil
}

// errCursorInvalid is what Decode answers for any cursor it cannot open,
// without saying why: the protocol's CURSOR_INVALID.
func errCursorInvalid() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID,
		"the cursor is malformed, altered, or belongs to another account")
}

// Decode opens cursor, made by Encode for the same scope, into v (a
// pointer, as for json.Unmarshal). Any cursor it cannot open, malformed,
// altered, sealed with an unknown key or for another scope, fails with
// INVALID_ARGUMENT (CURSOR_INVALID), which the adapter returns as is:
// bankbridge then starts again from an empty cursor. An expired state is
// the adapter's to judge from what it put in v.
func (c *CursorCodec) Decode(scope, cursor string, v any) error {
	sealed, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return errCursorInvalid()
	}
	for _, aead := range c.aead {
		if len(sealed) < aead.NonceSize() {
			return errCursorInvalid()
		}
		plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(scope))
		if err != nil {
			continue
		}
		if err := json.Unmarshal(plain, v); err != nil {
			return errCursorInvalid() // a state of another shape, from an older adapter version
		}
		return nil
	}
	return errCursorInvalid()
}
