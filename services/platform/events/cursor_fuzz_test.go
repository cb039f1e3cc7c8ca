package events

import (
	"encoding/base64"
	"errors"
	"regexp"
	"testing"
)

// FuzzParseCursor reads any string as a stream's resume cursor, as a
// client sends it back. It must not panic, a refusal matches
// ErrCursorInvalid (answered as INVALID_ARGUMENT, CURSOR_INVALID), and a
// cursor it accepts names a stream and a sequence the bus can resume
// after, and reads back the same from its own string.
func FuzzParseCursor(f *testing.F) {
	for _, c := range []cursor{
		{stream: DefaultStream, created: 1772600767123456789, seq: 1},
		{stream: "BANKBRIDGE_TEST_1", created: 0, seq: 18446744073709551615},
		{stream: "S", created: -1, seq: 42},
	} {
		f.Add(c.String())
	}
	for _, raw := range []string{
		"1:BANKBRIDGE:1:0",                    // no event has sequence 0
		"2:BANKBRIDGE:1:1",                    // another version
		"1::1:2",                              // no stream
		"1:BANKBRIDGE:1:2:6",                  // a part too many
		"1:BANKBRIDGE:+1:+0007",               // numbers spelt otherwise
		"1:BANKBRIDGE:x:1",                    // no incarnation
		"1:BANKBRIDGE:1:-1",                   // a negative sequence
		"1:BANKBRIDGE:1:18446744073709551616", // past uint64
	} {
		f.Add(base64.RawURLEncoding.EncodeToString([]byte(raw)))
	}
	f.Add("")
	f.Add("MTpCQU5LQlJJREdFOjE6MQ==") // padded
	f.Add("MTpCQU5LQlJJREdFOjE6MQ!")  // not base64url
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseCursor(s)
		if err != nil {
			if !errors.Is(err, ErrCursorInvalid) {
				t.Fatalf("parseCursor(%q) = %v, want ErrCursorInvalid", s, err)
			}
			return
		}
		if c.stream == "" || c.seq == 0 {
			t.Fatalf("parseCursor(%q) accepted %+v", s, c)
		}
		again, err := parseCursor(c.String())
		if err != nil || again != c {
			t.Fatalf("cursor %+v, read from %q, reads back from %q as %+v, %v", c, s, c.String(), again, err)
		}
	})
}

// streamName is what a bus's stream is called (StreamConfig.Name): NATS
// stream names, short and without separators.
var streamName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// FuzzCursorRoundTrip writes the cursor of any event of a stream and reads
// it back: every position the bus hands out resumes where it says.
func FuzzCursorRoundTrip(f *testing.F) {
	f.Add(DefaultStream, int64(1772600767123456789), uint64(1))
	f.Add("BANKBRIDGE_TEST_1", int64(-9223372036854775808), uint64(18446744073709551615))
	f.Fuzz(func(t *testing.T, stream string, created int64, seq uint64) {
		if !streamName.MatchString(stream) || seq == 0 {
			t.Skip() // no stream of the bus, or no event: the bus hands out no such cursor
		}
		want := cursor{stream: stream, created: created, seq: seq}
		got, err := parseCursor(want.String())
		if err != nil || got != want {
			t.Fatalf("parseCursor(%q) = %+v, %v; want %+v", want.String(), got, err, want)
		}
	})
}
