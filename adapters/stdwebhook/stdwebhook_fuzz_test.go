package stdwebhook

import (
	"bytes"
	"crypto/hmac"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The fuzz targets' receiver: its clock and its two secrets (the current
// one and one being rotated away), fixed so that a crash replays.
var (
	fuzzNow     = time.Unix(1_800_000_000, 0)
	fuzzCurrent = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	fuzzOld     = "whsec_" + base64.StdEncoding.EncodeToString([]byte("an old signing secret, rotating"))
	fuzzOther   = "whsec_" + base64.StdEncoding.EncodeToString([]byte("somebody else's secret"))
)

// FuzzVerify checks any message against the receiver's secrets: any
// headers, any body, and a secret from the store that may be no secret at
// all. Verify must not panic, must refuse with one of its errors, and may
// accept only a message whose webhook-signature carries, among its v1
// entries, the HMAC that Sign computes over exactly the id, timestamp
// and body received, with one of the receiver's secrets, its timestamp
// within the tolerance.
func FuzzVerify(f *testing.F) {
	body := []byte(`{"events":[{"event_id":"evt-1","tracking_number":"1Z999AA10123456784"}]}`)
	for _, tt := range []struct {
		secrets []string
		id      string
		at      time.Time
		body    []byte
	}{
		{[]string{fuzzCurrent}, "msg_p5jXN8AQM9LWM0D4loKWxJek", fuzzNow, body},
		{[]string{fuzzOld}, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", fuzzNow.Add(-4 * time.Minute), body},
		{[]string{fuzzOther, fuzzCurrent}, "p1", fuzzNow.Add(time.Minute), []byte(`{}`)},
		{[]string{fuzzOther}, "p1", fuzzNow, body},
		{[]string{fuzzCurrent}, "p1", fuzzNow.Add(-6 * time.Minute), body},
	} {
		sig, err := Sign(tt.secrets, tt.id, tt.at, tt.body)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tt.id, strconv.FormatInt(tt.at.Unix(), 10), sig, tt.body, "")
	}
	f.Add("p1", "1800000000", "v1,bm9wZQ== v2,xyz v1", []byte("{}"), "")
	f.Add("p1", "+1800000000", "v1,", []byte(nil), "whsec_")
	f.Add("", "", "", []byte(nil), "whsec_not base64!")
	f.Add("p1", "99999999999999999999", "v1,AAAA", []byte("{}"), "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	f.Fuzz(func(t *testing.T, id, ts, sigs string, body []byte, storeSecret string) {
		secrets := []string{fuzzCurrent, fuzzOld}
		if storeSecret != "" {
			// What the store holds may be no secret at all.
			secrets = append(secrets, storeSecret)
		}
		h := http.Header{}
		h.Set(HeaderID, id)
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderSignature, sigs)
		got, err := Verify(secrets, h, body, fuzzNow, DefaultTolerance)
		if err != nil {
			if !errors.Is(err, ErrMissingHeaders) && !errors.Is(err, ErrTimestamp) && !errors.Is(err, ErrSignature) && !errors.Is(err, ErrSecret) {
				t.Fatalf("Verify = %v, not one of its errors", err)
			}
			if got != "" {
				t.Fatalf("Verify refused with %v but returned id %q", err, got)
			}
			return
		}
		if got != id {
			t.Fatalf("Verify accepted id %q as %q", id, got)
		}
		sec, perr := strconv.ParseInt(ts, 10, 64)
		if perr != nil {
			t.Fatalf("Verify accepted the timestamp %q", ts)
		}
		if d := fuzzNow.Sub(time.Unix(sec, 0)); d > DefaultTolerance || d < -DefaultTolerance {
			t.Fatalf("Verify accepted a timestamp %s away", d)
		}
		if !carriesSignature(t, secrets, id, sec, body, sigs) {
			t.Fatalf("Verify accepted id %q, timestamp %q, body %q under %q: no entry is Sign's for them", id, ts, body, sigs)
		}
	})
}

// carriesSignature reports whether one v1 entry of sigs decodes to the
// signature Sign makes of the message with one of secrets.
func carriesSignature(t *testing.T, secrets []string, id string, sec int64, body []byte, sigs string) bool {
	t.Helper()
	for _, s := range secrets {
		want, err := Sign([]string{s}, id, time.Unix(sec, 0), body)
		if err != nil {
			continue
		}
		wantMAC, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(want, "v1,"))
		for _, entry := range strings.Fields(sigs) {
			b64, ok := strings.CutPrefix(entry, "v1,")
			if got, err := base64.StdEncoding.DecodeString(b64); ok && err == nil && hmac.Equal(got, wantMAC) {
				return true
			}
		}
	}
	return false
}

// FuzzVerifyTampered signs a message as a carrier does, then hands Verify
// the signature with what an attacker may have changed on the way: the
// id, the timestamp, the body. It must be accepted exactly when nothing
// was changed: when the string the signature covers, "<id>.<timestamp>.
// <body>", is the one signed. (The scheme joins the three with dots, as
// the specification does, so an id holding ".<timestamp>." could move
// text between the id and the body; carriers' ids hold none, and such a
// body is no JSON.)
func FuzzVerifyTampered(f *testing.F) {
	body := []byte(`{"events":[{"event_id":"evt-1","tracking_number":"1Z999AA10123456784"}]}`)
	f.Add("msg_p5jXN8AQM9LWM0D4loKWxJek", body, "msg_p5jXN8AQM9LWM0D4loKWxJek", int64(0), body, false)
	f.Add("msg_p5jXN8AQM9LWM0D4loKWxJek", body, "msg_p5jXN8AQM9LWM0D4loKWxJeK", int64(0), body, true)
	f.Add("p1", body, "p1", int64(1), body, false)
	f.Add("p1", body, "p1", int64(0), append(bytes.Clone(body), ' '), false)
	f.Add("p1", []byte(nil), "p1", int64(0), []byte{}, true)
	f.Fuzz(func(t *testing.T, id string, body []byte, gotID string, shift int64, gotBody []byte, oldSecret bool) {
		if id == "" || gotID == "" {
			t.Skip() // no message: refused before any signature is read
		}
		secret := fuzzCurrent
		if oldSecret {
			secret = fuzzOld // signed with the secret being rotated away
		}
		h := http.Header{}
		if err := SetHeaders(h, []string{secret}, id, fuzzNow, body); err != nil {
			t.Fatal(err)
		}
		// The attacker's changes: the timestamp moved by shift seconds,
		// within the tolerance, so that the signature alone decides.
		shift %= int64(DefaultTolerance / time.Second)
		h.Set(HeaderID, gotID)
		h.Set(HeaderTimestamp, strconv.FormatInt(fuzzNow.Unix()+shift, 10))
		_, err := Verify([]string{fuzzCurrent, fuzzOld}, h, gotBody, fuzzNow, DefaultTolerance)

		signed := id + "." + strconv.FormatInt(fuzzNow.Unix(), 10) + "." + string(body)
		received := h.Get(HeaderID) + "." + h.Get(HeaderTimestamp) + "." + string(gotBody)
		switch {
		case signed == received && err != nil:
			t.Fatalf("the untouched message was refused: %v", err)
		case signed != received && err == nil:
			t.Fatalf("accepted a tampered message: signed id %q, body %q; got id %q, %+d s, body %q", id, body, gotID, shift, gotBody)
		case err != nil && !errors.Is(err, ErrSignature):
			t.Fatalf("a tampered message was refused with %v, want ErrSignature", err)
		}
	})
}
