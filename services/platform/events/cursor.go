package events

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// A cursor names a position in the stream: the stream's name, its
// incarnation (its creation time, so that a cursor from a stream since
// deleted and created again is not read against the new one) and the
// stream sequence of the last event the reader has. On the wire it is
// base64url (no padding) of "1:<stream>:<created unix ns>:<sequence>";
// readers treat it as opaque.
type cursor struct {
	stream  string
	created int64
	seq     uint64
}

const cursorVersion = "1"

func (c cursor) String() string {
	raw := cursorVersion + ":" + c.stream + ":" + strconv.FormatInt(c.created, 10) + ":" + strconv.FormatUint(c.seq, 10)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// parseCursor reads s, or answers an error matching ErrCursorInvalid.
func parseCursor(s string) (cursor, error) {
	invalid := func(why string) (cursor, error) {
		return cursor{}, fmt.Errorf("%w: %s", ErrCursorInvalid, why)
	}
	if len(s) > 256 {
		return invalid("too long")
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return invalid("not base64url")
	}
	parts := strings.Split(string(raw), ":")
	if len(parts) != 4 || parts[0] != cursorVersion {
		return invalid("unknown format")
	}
	created, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return invalid("bad stream incarnation")
	}
	seq, err := strconv.ParseUint(parts[3], 10, 64)
	if err != nil || seq == 0 {
		return invalid("bad sequence")
	}
	if parts[1] == "" {
		return invalid("no stream")
	}
	return cursor{stream: parts[1], created: created, seq: seq}, nil
}
