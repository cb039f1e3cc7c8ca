package stdwebhook

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// The specification's own example (spec/standard-webhooks.md, "Signature
// scheme"): this secret, id, timestamp and body give this signature.
func TestSignMatchesTheSpecificationExample(t *testing.T) {
	t.Parallel()
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{"test": 2432232314}`)
	got, err := Sign([]string{secret}, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), body)
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	current, old, other := NewSecret(), NewSecret(), NewSecret()
	body := []byte(`{"events":[]}`)
	signed := func(secrets []string, id string, at time.Time, b []byte) http.Header {
		h := http.Header{}
		if err := SetHeaders(h, secrets, id, at, b); err != nil {
			t.Fatal(err)
		}
		return h
	}
	tests := []struct {
		name    string
		h       http.Header
		body    []byte
		secrets []string
		want    error
	}{
		{"signed now", signed([]string{current}, "p1", now, body), body, []string{current}, nil},
		{"signed by the old of two secrets", signed([]string{old}, "p1", now, body), body, []string{current, old}, nil},
		{"two signatures, one ours", signed([]string{other, current}, "p1", now, body), body, []string{current}, nil},
		{"four minutes old", signed([]string{current}, "p1", now.Add(-4*time.Minute), body), body, []string{current}, nil},
		{"six minutes old", signed([]string{current}, "p1", now.Add(-6*time.Minute), body), body, []string{current}, ErrTimestamp},
		{"six minutes ahead", signed([]string{current}, "p1", now.Add(6*time.Minute), body), body, []string{current}, ErrTimestamp},
		{"another secret", signed([]string{other}, "p1", now, body), body, []string{current}, ErrSignature},
		{"body changed", signed([]string{current}, "p1", now, body), []byte(`{"events":[1]}`), []string{current}, ErrSignature},
		{"id changed", func() http.Header { h := signed([]string{current}, "p1", now, body); h.Set(HeaderID, "p2"); return h }(), body, []string{current}, ErrSignature},
		{"timestamp changed", func() http.Header {
			h := signed([]string{current}, "p1", now, body)
			h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix()-1, 10))
			return h
		}(), body, []string{current}, ErrSignature},
		{"no signature header", func() http.Header { h := signed([]string{current}, "p1", now, body); h.Del(HeaderSignature); return h }(), body, []string{current}, ErrMissingHeaders},
		{"timestamp not a number", func() http.Header {
			h := signed([]string{current}, "p1", now, body)
			h.Set(HeaderTimestamp, "soon")
			return h
		}(), body, []string{current}, ErrTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := Verify(tt.secrets, tt.h, tt.body, now, DefaultTolerance)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %q, %v; want %v", id, err, tt.want)
			}
			if err == nil && id != tt.h.Get(HeaderID) {
				t.Errorf("id = %q", id)
			}
		})
	}
}

func TestKeyRefusesWhatIsNotASecret(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "whsec_", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!"} {
		if _, err := Key(s); !errors.Is(err, ErrSecret) {
			t.Errorf("Key(%q) = %v, want ErrSecret", s, err)
		}
	}
}
