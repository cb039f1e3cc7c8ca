// Package pagetoken makes and reads the page tokens of every List method
// (AIP-158): opaque to callers, signed with HMAC-SHA256, bound to one list
// (the method and its parent) and to a digest of the list's filters, and
// expiring. A token that was changed, made up, expired, signed with another
// key, or minted for another list or other filters is refused with
// INVALID_ARGUMENT, reason PAGE_TOKEN_INVALID, and a field violation on
// page_token.
//
// A token carries where the next page starts: an offset, for lists held in
// memory, or the sort key of the last item served (keyset), for lists read
// from a database.
//
// # Keys and replicas
//
// A token minted by one replica is read by whichever replica gets the next
// call, so every replica of a service must hold the same key: set it with
// --page-token-key (BANKBRIDGE_PAGE_TOKEN_KEY), at least 32 bytes, e.g.
// from `openssl rand -base64 32`, from the same secret store as the other
// settings. Left unset, each process draws a random key and logs a warning:
// fine for one process, but with several replicas a caller paging through a
// list is refused whenever two pages land on different replicas.
//
// To rotate, list the new key first and the old one after it, separated by
// a comma: the first key signs, every key verifies. After one TTL (an hour
// by default) the old key can go.
package pagetoken

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// Page sizes, after AIP-158: 0 asks for the default; the contract refuses
// more than MaxPageSize.
const (
	DefaultPageSize = 25
	MaxPageSize     = 100
)

// TTL is how long a token is accepted after it was minted.
const TTL = time.Hour

// MinKeyBytes is the shortest key accepted: the size of the HMAC-SHA256
// output.
const MinKeyBytes = 32

// Size is the number of items to serve for a requested page_size: the
// default for 0 (or less), at most MaxPageSize.
func Size(pageSize int) int {
	switch {
	case pageSize <= 0:
		return DefaultPageSize
	case pageSize > MaxPageSize:
		return MaxPageSize
	default:
		return pageSize
	}
}

// List names one list a token belongs to. Two calls are pages of the same
// list when all three fields are equal.
type List struct {
	// Method is the List method, e.g.
	// "bankbridge.balance.v1.BalanceService/ListTransactions".
	Method string
	// Parent is the request's parent, e.g. "users/alice".
	Parent string
	// Filters are the request's filters, each rendered as a string, in a
	// fixed order; page_size and page_token are not filters.
	Filters []string
}

// digest is a collision-free hash of the list: each part length-prefixed.
func (l List) digest() []byte {
	h := sha256.New()
	var n [8]byte
	write := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	write(l.Method)
	write(l.Parent)
	binary.BigEndian.PutUint64(n[:], uint64(len(l.Filters)))
	h.Write(n[:])
	for _, f := range l.Filters {
		write(f)
	}
	return h.Sum(nil)
}

// Position is where the next page starts. A list uses either Offset or the
// keyset fields, the sort key of the last item served.
type Position struct {
	// Offset is the index of the next item, for lists held in memory.
	Offset int
	// Time, ID and Seq are the last item's sort key, as the list defines
	// it. Time keeps microseconds.
	Time time.Time
	ID   string
	Seq  int64
}

// payload is what a token carries, signed.
type payload struct {
	Version int    `json:"v"`
	Expires int64  `json:"e"`
	Offset  int    `json:"o,omitempty"`
	Time    *int64 `json:"t,omitempty"`
	ID      string `json:"i,omitempty"`
	Seq     int64  `json:"s,omitempty"`
}

const version = 1

// Tokens mints and reads page tokens with one key. It is safe for
// concurrent use.
type Tokens struct {
	keys [][]byte // keys[0] signs
	now  func() time.Time
}

// Option tunes Tokens.
type Option func(*Tokens)

// WithClock sets the clock; default time.Now.
func WithClock(now func() time.Time) Option { return func(t *Tokens) { t.now = now } }

// WithPreviousSecrets adds keys that still verify tokens but no longer
// sign, while a rotation settles.
func WithPreviousSecrets(secrets ...[]byte) Option {
	return func(t *Tokens) {
		for _, s := range secrets {
			t.keys = append(t.keys, derive(s))
		}
	}
}

// New returns Tokens signing with secret, which must be at least
// MinKeyBytes long. Every replica of a service must use the same secret.
func New(secret []byte, opts ...Option) (*Tokens, error) {
	if len(secret) < MinKeyBytes {
		return nil, fmt.Errorf("page token key: %d bytes, want at least %d", len(secret), MinKeyBytes)
	}
	t := &Tokens{keys: [][]byte{derive(secret)}, now: time.Now}
	for _, o := range opts {
		o(t)
	}
	for _, k := range t.keys[1:] {
		if k == nil {
			return nil, fmt.Errorf("page token key: a previous key is shorter than %d bytes", MinKeyBytes)
		}
	}
	return t, nil
}

// Random returns Tokens with a key drawn for this process alone: for tests
// and single-process setups (see the package doc).
func Random(opts ...Option) *Tokens {
	secret := make([]byte, MinKeyBytes)
	_, _ = rand.Read(secret) // never fails (crypto/rand)
	t, err := New(secret, opts...)
	if err != nil {
		panic("pagetoken: " + err.Error()) // only a bad option can fail
	}
	return t
}

// derive turns a configured secret into the HMAC key, so the secret itself
// signs nothing and a secret shared with another use cannot forge tokens.
// It returns nil for a secret too short.
func derive(secret []byte) []byte {
	if len(secret) < MinKeyBytes {
		return nil
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("bankbridge page token key v1"))
	return m.Sum(nil)
}

func mac(key, listDigest, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(listDigest)
	m.Write(body)
	return m.Sum(nil)
}

// Encode returns the token of the page of l that starts at p. The list is
// not written into the token: it is part of what the signature covers, so
// a token is valid for its own list only.
func (t *Tokens) Encode(l List, p Position) string {
	pl := payload{Version: version, Expires: t.now().Add(TTL).Unix(), Offset: p.Offset, ID: p.ID, Seq: p.Seq}
	if !p.Time.IsZero() {
		us := p.Time.UnixMicro()
		pl.Time = &us
	}
	body, _ := json.Marshal(pl) // ints and strings always marshal
	return base64.RawURLEncoding.EncodeToString(append(body, mac(t.keys[0], l.digest(), body)...))
}

// Decode reads a token of list l. An empty token is the first page: ok is
// false. Anything but a live token minted for l by a key of t is
// PAGE_TOKEN_INVALID.
func (t *Tokens) Decode(l List, token string) (p Position, ok bool, err error) {
	if token == "" {
		return Position{}, false, nil
	}
	// Strict: the lax decoder ignores the last character's spare bits, so
	// each token would have other spellings that verify without being
	// minted. Even the strict one skips '\r' and '\n' anywhere (found by
	// fuzzing), so those are refused first: one token, one spelling.
	if strings.ContainsAny(token, "\r\n") {
		return Position{}, false, Invalid()
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(raw) <= sha256.Size {
		return Position{}, false, Invalid()
	}
	body, sig := raw[:len(raw)-sha256.Size], raw[len(raw)-sha256.Size:]
	digest := l.digest()
	signed := false
	for _, k := range t.keys {
		if hmac.Equal(sig, mac(k, digest, body)) {
			signed = true
			break
		}
	}
	if !signed {
		return Position{}, false, Invalid()
	}
	var pl payload
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pl); err != nil || pl.Version != version || pl.Offset < 0 {
		return Position{}, false, Invalid()
	}
	if !t.now().Before(time.Unix(pl.Expires, 0)) {
		return Position{}, false, expired()
	}
	p = Position{Offset: pl.Offset, ID: pl.ID, Seq: pl.Seq}
	if pl.Time != nil {
		p.Time = time.UnixMicro(*pl.Time).UTC()
	}
	return p, true, nil
}

// Paginate serves one page of items, a list held in memory in a stable
// order, and the token of the next page ("" on the last page). pageSize
// and token are the request's page_size and page_token.
func Paginate[T any](t *Tokens, l List, items []T, pageSize int, token string) ([]T, string, error) {
	p, _, err := t.Decode(l, token)
	if err != nil {
		return nil, "", err
	}
	start := min(p.Offset, len(items)) // the list may have shrunk since
	end := min(start+Size(pageSize), len(items))
	next := ""
	if end < len(items) {
		next = t.Encode(l, Position{Offset: end})
	}
	return items[start:end], next, nil
}

// ReadPage serves one page of a list read from storage in a stable order
// (keyset pagination). read gets the position of the last item served
// (nil for the first page) and a limit one above the page size: an item
// beyond the page means another page follows. key gives an item's
// position. It returns the page and the token of the next page ("" on the
// last). read's error is returned as is.
func ReadPage[T any](t *Tokens, l List, pageSize int, token string,
	read func(after *Position, limit int) ([]T, error), key func(T) Position,
) ([]T, string, error) {
	p, ok, err := t.Decode(l, token)
	if err != nil {
		return nil, "", err
	}
	var after *Position
	if ok {
		after = &p
	}
	size := Size(pageSize)
	items, err := read(after, size+1)
	if err != nil {
		return nil, "", err
	}
	if len(items) <= size {
		return items, "", nil
	}
	items = items[:size]
	return items, t.Encode(l, key(items[size-1])), nil
}

// Invalid is the error for a page_token that is not a live token of the
// list asked for.
func Invalid() error {
	return invalid("not a page token of this list with these filters; start again without page_token")
}

func expired() error {
	return invalid("the page token has expired; start again without page_token")
}

func invalid(desc string) error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_PAGE_TOKEN_INVALID, "invalid request: page_token: "+desc,
		apierr.WithFieldViolations(apierr.FieldViolation{Field: "page_token", Description: desc, Reason: "page_token.invalid"}))
}

// FromKeys returns the Tokens of a configured key setting: one secret, or
// several separated by commas while a rotation settles (the first signs,
// every one verifies), each at least MinKeyBytes long.
func FromKeys(keys string, opts ...Option) (*Tokens, error) {
	secrets := strings.Split(keys, ",")
	var previous [][]byte
	for _, s := range secrets[1:] {
		previous = append(previous, []byte(s))
	}
	return New([]byte(secrets[0]), append(opts, WithPreviousSecrets(previous...))...)
}
