package carrierpush_test

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/bankbridge/bankbridge/adapters/stdwebhook"
	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/shipping/internal/carrierpush"
)

// The fuzz targets' carriers and their secrets, fixed so that a crash
// replays: "acme" signs with one secret, "ups" is rotating from an old one.
var (
	fuzzSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	fuzzOldSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("an old signing secret, rotating"))
	fuzzCarriers  = map[string][]string{"acme": {fuzzSecret}, "ups": {fuzzSecret, fuzzOldSecret}}
)

// fuzzHandler is the carrier endpoint over fakes that never fail, with a
// body limit small enough for the fuzzer to reach.
func fuzzHandler(f *testing.F) (http.Handler, *fakeIngester) {
	f.Helper()
	ing := &fakeIngester{recorded: 2, duplicates: 1}
	h := carrierpush.NewHandler(ing, fakeSecrets{byCarrier: fuzzCarriers}, carrierpush.Options{
		Logger:       slog.New(slog.DiscardHandler),
		Now:          func() time.Time { return now },
		MaxBodyBytes: 4096,
	})
	return h, ing
}

// serve sends one push to h, as the carrier's HTTP request, and returns the
// reply and the pushes h ingested. ok is false for a request no HTTP
// client can send (a method that is no token).
func serve(t *testing.T, h http.Handler, ing *fakeIngester, method, carrier string, hdr http.Header, body []byte) (*httptest.ResponseRecorder, []ingested, bool) {
	t.Helper()
	ing.mu.Lock()
	ing.calls = nil
	ing.mu.Unlock()
	req, err := http.NewRequest(method, "http://shipping/v1/carriers/"+url.PathEscape(carrier)+"/trackingEvents", bytes.NewReader(body))
	if err != nil {
		return nil, nil, false
	}
	req.Header = hdr
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w, ing.Calls(), true
}

// requireAnswer holds a reply to what every carrier is promised: JSON, a
// google.rpc.Status with a code and a message for every refusal, a
// CarrierPushResponse for a 200, and never a 5xx from a store and secrets
// that do not fail. The one exception is http.ServeMux's redirect of a
// path to its clean form (a carrier "." or ""), which ingests nothing.
func requireAnswer(t *testing.T, w *httptest.ResponseRecorder) *status.Status {
	t.Helper()
	if w.Code >= 500 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if redirected(w) {
		return status.New(codes.NotFound, "redirected")
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("status %d with Content-Type %q: %s", w.Code, ct, w.Body)
	}
	if w.Code == http.StatusOK {
		if err := protojson.Unmarshal(w.Body.Bytes(), &shippingv1.CarrierPushResponse{}); err != nil {
			t.Fatalf("a 200 that is no CarrierPushResponse: %v: %s", err, w.Body)
		}
		return nil
	}
	var sp spb.Status
	if err := protojson.Unmarshal(w.Body.Bytes(), &sp); err != nil || sp.GetCode() == 0 || sp.GetMessage() == "" {
		t.Fatalf("status %d with a body that is no google.rpc.Status (%v): %s", w.Code, err, w.Body)
	}
	return status.FromProto(&sp)
}

// redirected reports http.ServeMux's redirect to the clean path (301, or
// 307 for a method other than GET and HEAD).
func redirected(w *httptest.ResponseRecorder) bool {
	return (w.Code == http.StatusMovedPermanently || w.Code == http.StatusTemporaryRedirect) && w.Header().Get("Location") != ""
}

// FuzzPush sends the endpoint any request a carrier could: any method,
// carrier, signature headers and body. Nothing panics, every answer is
// one a carrier is promised (requireAnswer), and a push is ingested, and
// answered 200, only when it is a POST whose webhook-signature verifies
// with the secret of the carrier in its path, over exactly the body
// ingested, under the webhook-id given to the store.
func FuzzPush(f *testing.F) {
	h, ing := fuzzHandler(f)
	add := func(method, carrier, secret, id string, at time.Time, body []byte) {
		sig, err := stdwebhook.Sign([]string{secret}, id, at, body)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(method, carrier, id, strconv.FormatInt(at.Unix(), 10), sig, body)
	}
	add(http.MethodPost, "acme", fuzzSecret, "push-1", now, validBody)
	add(http.MethodPost, "ups", fuzzOldSecret, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", now.Add(-time.Minute), validBody)
	add(http.MethodPost, "acme", fuzzSecret, "push-2", now, []byte(`{"events":[]}`))
	add(http.MethodPost, "acme", fuzzSecret, "push-3", now, []byte(`{"events":[{"event_id":"e1"}],"extra":1}`))
	add(http.MethodPost, "dhl", fuzzSecret, "push-4", now, validBody)
	add(http.MethodPost, "acme", fuzzOldSecret, "push-5", now, validBody)
	add(http.MethodPost, "acme", fuzzSecret, "push-6", now.Add(-10*time.Minute), validBody)
	add(http.MethodGet, "acme", fuzzSecret, "push-7", now, nil)
	f.Add(http.MethodPost, "ACME", "", "", "", []byte("{}"))
	f.Add(http.MethodPost, "../acme", "p", "1772618400", "v1,bm9wZQ==", validBody)
	f.Add(http.MethodPost, "acme", "p", "1772618400", "v1,bm9wZQ==", bytes.Repeat([]byte("x"), 5000))
	f.Fuzz(func(t *testing.T, method, carrier, id, ts, sigs string, body []byte) {
		hdr := http.Header{}
		for k, v := range map[string]string{stdwebhook.HeaderID: id, stdwebhook.HeaderTimestamp: ts, stdwebhook.HeaderSignature: sigs} {
			if v != "" {
				hdr.Set(k, v)
			}
		}
		w, calls, ok := serve(t, h, ing, method, carrier, hdr, body)
		if !ok {
			t.Skip()
		}
		requireAnswer(t, w)
		if (w.Code == http.StatusOK) != (len(calls) == 1) || len(calls) > 1 {
			t.Fatalf("status %d after %d ingests", w.Code, len(calls))
		}
		if len(calls) == 0 {
			return
		}
		c := calls[0]
		pushID, err := stdwebhook.Verify(fuzzCarriers[c.carrier], hdr, body, now, stdwebhook.DefaultTolerance)
		switch {
		case method != http.MethodPost:
			t.Fatalf("a %s was ingested", method)
		case c.carrier != carrier:
			t.Fatalf("a push to carrier %q was ingested as %q's", carrier, c.carrier)
		case err != nil:
			t.Fatalf("a push that does not verify with %q's secrets was ingested: %v", carrier, err)
		case c.pushID != pushID:
			t.Fatalf("push %q was ingested as %q", pushID, c.pushID)
		}
	})
}

// FuzzTamperedPush signs a push as carrier "acme" does, then changes on the
// way what an attacker may: the carrier in the path, the webhook-id, the
// timestamp (within the tolerance, so that only the signature decides),
// the body. An untouched push is never refused as unauthenticated (it is
// ingested, or refused for its body: the fuzzer's bodies are signed, so
// they reach the JSON decoding and the contract's rules); a touched one is
// refused with 401 TOKEN_INVALID, nothing ingested, the very reply of an
// unknown carrier (nobody learns which carriers exist).
func FuzzTamperedPush(f *testing.F) {
	h, ing := fuzzHandler(f)
	unknown := func(t *testing.T, hdr http.Header, body []byte) []byte {
		w, _, _ := serve(t, h, ing, http.MethodPost, "nobody", hdr, body)
		return w.Body.Bytes()
	}
	f.Add("push-1", validBody, "acme", "push-1", int64(0), validBody)
	f.Add("push-1", validBody, "ups", "push-1", int64(0), validBody)
	f.Add("push-1", validBody, "acme", "push-2", int64(0), validBody)
	f.Add("push-1", validBody, "acme", "push-1", int64(-1), validBody)
	f.Add("push-1", validBody, "acme", "push-1", int64(0), bytes.Replace(validBody, []byte("evt-1"), []byte("evt-9"), 1))
	f.Add("push-1", []byte(`{"events":[{"event_id":"e1","tracking_number":"x"}]}`), "acme", "push-1", int64(0), []byte(`{"events":[{"event_id":"e1","tracking_number":"x"}]}`))
	f.Add("push-1", []byte(`{"events":[]}`), "acme", "push-1", int64(0), []byte(`{"events":[]} `))
	f.Fuzz(func(t *testing.T, id string, body []byte, gotCarrier, gotID string, shift int64, gotBody []byte) {
		if id == "" || gotID == "" {
			t.Skip() // unsigned: refused before any secret is read
		}
		hdr := signed(t, fuzzSecret, id, now, body)
		shift %= int64(stdwebhook.DefaultTolerance / time.Second)
		hdr.Set(stdwebhook.HeaderID, gotID)
		hdr.Set(stdwebhook.HeaderTimestamp, strconv.FormatInt(now.Unix()+shift, 10))
		w, calls, ok := serve(t, h, ing, http.MethodPost, gotCarrier, hdr, gotBody)
		if !ok {
			t.Skip()
		}
		st := requireAnswer(t, w)

		untouched := (gotCarrier == "acme" || gotCarrier == "ups") && gotID == id && shift == 0 && bytes.Equal(gotBody, body)
		if untouched {
			if w.Code == http.StatusUnauthorized {
				t.Fatalf("an untouched push was refused: %s", w.Body)
			}
			return
		}
		// The scheme signs "<id>.<timestamp>.<body>": what joins to the
		// same string is the same message (see stdwebhook's
		// FuzzVerifyTampered).
		sameSigned := id+"."+strconv.FormatInt(now.Unix(), 10)+"."+string(body) ==
			gotID+"."+strconv.FormatInt(now.Unix()+shift, 10)+"."+string(gotBody)
		if sameSigned && (gotCarrier == "acme" || gotCarrier == "ups") {
			return
		}
		if w.Code == http.StatusRequestEntityTooLarge || redirected(w) {
			// Refused before the signature is read: too large, or a path
			// the mux cleans first.
			if len(calls) != 0 {
				t.Fatalf("status %d after %d ingests", w.Code, len(calls))
			}
			return
		}
		if w.Code != http.StatusUnauthorized || len(calls) != 0 || !apierr.Is(st.Err(), commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID) {
			t.Fatalf("a tampered push (carrier %q, id %q, %+d s, body %q) got %d after %d ingests: %s",
				gotCarrier, gotID, shift, gotBody, w.Code, len(calls), w.Body)
		}
		if want := unknown(t, hdr, gotBody); !bytes.Equal(w.Body.Bytes(), want) {
			t.Fatalf("a tampered push got %s, an unknown carrier %s", w.Body, want)
		}
	})
}
