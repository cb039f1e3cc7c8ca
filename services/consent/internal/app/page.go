package app

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
)

// DefaultPageSize is the page size when the caller asks for none.
const DefaultPageSize = 25

// MaxPageSize is the largest page served.
const MaxPageSize = 100

func pageSize(asked int) int {
	switch {
	case asked <= 0:
		return DefaultPageSize
	case asked > MaxPageSize:
		return MaxPageSize
	default:
		return asked
	}
}

// pageToken is where the next page starts, and which filters the list had.
// It is opaque to callers; it need not be secret, as every list is scoped
// to the caller's own user before the token is read.
type pageToken struct {
	Filter string `json:"f"`
	// Time and ID: the last link of the page (create time, microseconds).
	Time int64  `json:"t,omitempty"`
	ID   string `json:"i,omitempty"`
	// Seq: the last access log entry of the page.
	Seq int64 `json:"s,omitempty"`
}

func filterHash(filter string) string {
	sum := sha256.Sum256([]byte(filter))
	return hex.EncodeToString(sum[:8])
}

func encodePageToken(t pageToken, filter string) string {
	t.Filter = filterHash(filter)
	b, _ := json.Marshal(t) // a struct of strings and ints always marshals
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodePageToken reads a token for a list with the given filters; "" is
// the first page (nil). A malformed token, or one from a list with other
// filters, is PAGE_TOKEN_INVALID.
func decodePageToken(s, filter string) (*pageToken, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errPageToken()
	}
	var t pageToken
	if err := json.Unmarshal(b, &t); err != nil || t.Filter != filterHash(filter) {
		return nil, errPageToken()
	}
	return &t, nil
}
