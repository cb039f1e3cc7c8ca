package carrierpush_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/adapters/stdwebhook"
	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/credentials"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/shipping/internal/carrierpush"
)

// fakeIngester records the pushes it is given and answers with counts or
// an error set by the test.
type fakeIngester struct {
	mu         sync.Mutex
	calls      []ingested
	recorded   int
	duplicates int
	err        error
}

type ingested struct {
	carrier, pushID string
	push            *shippingv1.CarrierPush
}

func (f *fakeIngester) IngestCarrierPush(_ context.Context, carrier, pushID string, push *shippingv1.CarrierPush) (int, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, ingested{carrier, pushID, push})
	return f.recorded, f.duplicates, f.err
}

func (f *fakeIngester) Calls() []ingested {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ingested(nil), f.calls...)
}

// fakeSecrets serves fixed secrets per carrier; err, when set, is every
// answer.
type fakeSecrets struct {
	byCarrier map[string][]string
	err       error
}

func (f fakeSecrets) CarrierSecrets(_ context.Context, carrier string) ([]string, error) {
	if f.err != nil {
		return nil, f.err
	}
	s, ok := f.byCarrier[carrier]
	if !ok {
		return nil, fmt.Errorf("carrier %s: %w", carrier, carrierpush.ErrUnknownCarrier)
	}
	return s, nil
}

// The fixture's clock: the signatures and the body's time rules are
// checked against it.
var now = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

// Personal data of the sample push, which must never reach the log.
const (
	trackingNumber = "1Z999AA10123456784"
	signer         = "Erika Mustermann"
)

var validBody = []byte(`{"events": [
  {"event_id": "evt-1", "tracking_number": "` + trackingNumber + `",
   "checkpoint": {"time": "2026-03-04T09:30:00Z", "status": "SHIPMENT_STATUS_DELIVERED", "substatus": "delivered.signed",
     "carrier_message": "Delivered", "location": {"city": "Leipzig", "country_code": "DE"}},
   "signed_by": "` + signer + `"},
  {"event_id": "evt-2", "tracking_number": "` + trackingNumber + `",
   "checkpoint": {"time": "2026-03-04T08:00:00Z", "status": "SHIPMENT_STATUS_OUT_FOR_DELIVERY"}}
]}`)

type fixture struct {
	url    string
	ing    *fakeIngester
	secret string
	logs   *testkit.SyncBuffer
}

func newFixture(t *testing.T, sec carrierpush.Secrets, maxBody int64) *fixture {
	t.Helper()
	logs := &testkit.SyncBuffer{}
	ing := &fakeIngester{recorded: 2, duplicates: 1}
	h := carrierpush.NewHandler(ing, sec, carrierpush.Options{
		Logger:       slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(logs, nil))),
		Now:          func() time.Time { return now },
		MaxBodyBytes: maxBody,
	})
	return &fixture{url: newServer(t, h), ing: ing, logs: logs}
}

func newServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// standard returns a fixture whose carrier "acme" signs with secret.
func standard(t *testing.T) *fixture {
	t.Helper()
	secret := stdwebhook.NewSecret()
	f := newFixture(t, fakeSecrets{byCarrier: map[string][]string{"acme": {secret}}}, 0)
	f.secret = secret
	return f
}

// signed returns the webhook-* headers of body, signed with secret at.
func signed(t *testing.T, secret, id string, at time.Time, body []byte) http.Header {
	t.Helper()
	h := http.Header{}
	if err := stdwebhook.SetHeaders(h, []string{secret}, id, at, body); err != nil {
		t.Fatal(err)
	}
	return h
}

type reply struct {
	code   int
	header http.Header
	body   []byte
}

// err is the reply's google.rpc.Status as an error, for testkit's
// assertions; nil for a 2xx.
func (r reply) err(t *testing.T) error {
	t.Helper()
	if r.code < 300 {
		return nil
	}
	var st spb.Status
	if err := protojson.Unmarshal(r.body, &st); err != nil {
		t.Fatalf("reply %d is not a JSON google.rpc.Status: %v: %s", r.code, err, r.body)
	}
	return status.ErrorProto(&st)
}

func send(t *testing.T, method, url string, h http.Header, body []byte) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{code: resp.StatusCode, header: resp.Header, body: raw}
}

func (f *fixture) push(t *testing.T, carrier string, h http.Header, body []byte) reply {
	t.Helper()
	return send(t, http.MethodPost, f.url+"/v1/carriers/"+carrier+"/trackingEvents", h, body)
}

func TestAValidPushIsIngested(t *testing.T) {
	t.Parallel()
	f := standard(t)
	r := f.push(t, "acme", signed(t, f.secret, "push-1", now, validBody), validBody)
	if r.code != http.StatusOK {
		t.Fatalf("status %d, body %s", r.code, r.body)
	}
	var resp shippingv1.CarrierPushResponse
	if err := protojson.Unmarshal(r.body, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.GetRecordedCount() != 2 || resp.GetDuplicateCount() != 1 {
		t.Errorf("response = %s, want recorded 2, duplicates 1", r.body)
	}
	if got := string(r.body); !strings.Contains(got, `"recorded_count":2`) {
		t.Errorf("body %s: want proto field names, as the gateway writes", got)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	calls := f.ing.Calls()
	if len(calls) != 1 {
		t.Fatalf("Ingest called %d times", len(calls))
	}
	c := calls[0]
	var want shippingv1.CarrierPush
	if err := protojson.Unmarshal(validBody, &want); err != nil {
		t.Fatal(err)
	}
	if c.carrier != "acme" || c.pushID != "push-1" || !proto.Equal(c.push, &want) {
		t.Errorf("Ingest(%q, %q, %v), want acme, push-1 and the body's events", c.carrier, c.pushID, c.push)
	}

	logs := f.logs.String()
	for _, want := range []string{`"msg":"carrier push"`, `"bankbridge.carrier":"acme"`, `"bankbridge.outcome":"ok"`,
		`"bankbridge.event_count":2`, `"bankbridge.recorded_count":2`, `"bankbridge.duplicate_count":1`, `"duration_ms":`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s: %s", want, logs)
		}
	}
	for _, secretData := range []string{trackingNumber, signer, "Leipzig", f.secret, strings.TrimPrefix(f.secret, stdwebhook.SecretPrefix)} {
		if strings.Contains(logs, secretData) {
			t.Errorf("the log carries %q: %s", secretData, logs)
		}
	}
}

func TestRotationAcceptsThePreviousSecret(t *testing.T) {
	t.Parallel()
	current, previous := stdwebhook.NewSecret(), stdwebhook.NewSecret()
	f := newFixture(t, fakeSecrets{byCarrier: map[string][]string{"acme": {current, previous}}}, 0)
	for _, sec := range []string{current, previous} {
		if r := f.push(t, "acme", signed(t, sec, "p-"+sec[len(sec)-6:], now, validBody), validBody); r.code != http.StatusOK {
			t.Errorf("status %d, body %s", r.code, r.body)
		}
	}
}

func TestUnauthenticatedPushesAreRefused(t *testing.T) {
	t.Parallel()
	f := standard(t)
	other := stdwebhook.NewSecret()
	tests := []struct {
		name    string
		carrier string
		header  http.Header
		body    []byte
	}{
		{"signed with another secret", "acme", signed(t, other, "p1", now, validBody), validBody},
		{"body changed after signing", "acme", signed(t, f.secret, "p1", now, validBody), append(bytes.Clone(validBody), ' ')},
		{"no signature headers", "acme", http.Header{}, validBody},
		{"no webhook-id", "acme", func() http.Header {
			h := signed(t, f.secret, "p1", now, validBody)
			h.Del(stdwebhook.HeaderID)
			return h
		}(), validBody},
		{"timestamp 6 minutes old", "acme", signed(t, f.secret, "p1", now.Add(-6*time.Minute), validBody), validBody},
		{"timestamp 6 minutes ahead", "acme", signed(t, f.secret, "p1", now.Add(6*time.Minute), validBody), validBody},
		{"unknown carrier", "globex", signed(t, f.secret, "p1", now, validBody), validBody},
		{"not a carrier id", "ACME", signed(t, f.secret, "p1", now, validBody), validBody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.push(t, tt.carrier, tt.header, tt.body)
			if r.code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401; body %s", r.code, r.body)
			}
			testkit.RequireReason(t, r.err(t), commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID)
		})
	}
	if n := len(f.ing.Calls()); n != 0 {
		t.Errorf("Ingest called %d times for refused pushes", n)
	}
	if logs := f.logs.String(); !strings.Contains(logs, `"bankbridge.log_type":"security"`) {
		t.Errorf("refusals are not in the security log: %s", logs)
	}
}

// TestAnUnknownCarrierLooksLikeABadSignature: the answer must not tell
// which carriers exist.
func TestAnUnknownCarrierLooksLikeABadSignature(t *testing.T) {
	t.Parallel()
	f := standard(t)
	h := signed(t, stdwebhook.NewSecret(), "p1", now, validBody)
	bad := f.push(t, "acme", h, validBody)
	for _, carrier := range []string{"globex", "no", "ACME"} {
		unknown := f.push(t, carrier, h, validBody)
		if unknown.code != bad.code || !bytes.Equal(unknown.body, bad.body) {
			t.Errorf("carrier %s: %d %s; a bad signature for a known one: %d %s", carrier, unknown.code, unknown.body, bad.code, bad.body)
		}
		for _, k := range []string{"Content-Type", "Cache-Control", "Content-Length", "Allow"} {
			if unknown.header.Get(k) != bad.header.Get(k) {
				t.Errorf("carrier %s: header %s = %q; for a bad signature %q", carrier, k, unknown.header.Get(k), bad.header.Get(k))
			}
		}
	}
	if strings.Contains(string(bad.body), "acme") {
		t.Errorf("the refusal names the carrier: %s", bad.body)
	}
}

func TestAReplayedPushIsRefused(t *testing.T) {
	t.Parallel()
	f := standard(t)
	f.ing.err = fmt.Errorf("push-1: %w", carrierpush.ErrReplayed)
	r := f.push(t, "acme", signed(t, f.secret, "push-1", now, validBody), validBody)
	if r.code != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401; body %s", r.code, r.body)
	}
	testkit.RequireReason(t, r.err(t), commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID)
	if logs := f.logs.String(); !strings.Contains(logs, `"bankbridge.outcome":"replayed"`) {
		t.Errorf("log: %s", logs)
	}
}

func TestBadBodiesNameTheField(t *testing.T) {
	t.Parallel()
	f := standard(t)
	event := func(trackingNumber string) string {
		return `{"event_id": "e1", "tracking_number": "` + trackingNumber + `",
			"checkpoint": {"time": "2026-03-04T09:30:00Z", "status": "SHIPMENT_STATUS_IN_TRANSIT"}}`
	}
	tests := []struct {
		name  string
		body  string
		field string // "" for a body that is no CarrierPush at all
		msg   string // a part of the message
	}{
		{"not JSON", `{"events": [`, "", "not a CarrierPush"},
		{"an unknown field", `{"events": [` + event("1Z999AA10123456784") + `], "shipment": "x"}`, "", `"shipment"`},
		{"no events", `{"events": []}`, "events", ""},
		{"a bad tracking number", `{"events": [` + event("no spaces allowed") + `]}`, "events[0].tracking_number", ""},
		{"no checkpoint", `{"events": [{"event_id": "e1", "tracking_number": "1Z999AA10123456784"}]}`, "events[0].checkpoint", ""},
		{"a checkpoint in the future", `{"events": [{"event_id": "e1", "tracking_number": "1Z999AA10123456784",
			"checkpoint": {"time": "2026-03-04T10:10:00Z", "status": "SHIPMENT_STATUS_IN_TRANSIT"}}]}`, "events[0].checkpoint.time", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			r := f.push(t, "acme", signed(t, f.secret, fmt.Sprint("p", i), now, body), body)
			if r.code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400; body %s", r.code, r.body)
			}
			err := r.err(t)
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT)
			if tt.field != "" {
				testkit.RequireFieldViolation(t, err, tt.field)
			}
			if !strings.Contains(status.Convert(err).Message(), tt.msg) {
				t.Errorf("message %q lacks %q", status.Convert(err).Message(), tt.msg)
			}
		})
	}
	if n := len(f.ing.Calls()); n != 0 {
		t.Errorf("Ingest called %d times for bad bodies", n)
	}
}

func TestHTTPEdges(t *testing.T) {
	t.Parallel()
	secret := stdwebhook.NewSecret()
	f := newFixture(t, fakeSecrets{byCarrier: map[string][]string{"acme": {secret}}}, 512)
	t.Run("a body over the limit", func(t *testing.T) {
		big := []byte(`{"events": [], "pad": "` + strings.Repeat("x", 1024) + `"}`)
		r := f.push(t, "acme", signed(t, secret, "big", now, big), big)
		if r.code != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413; body %s", r.code, r.body)
		}
		testkit.RequireReason(t, r.err(t), commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT)
	})
	t.Run("GET", func(t *testing.T) {
		r := send(t, http.MethodGet, f.url+"/v1/carriers/acme/trackingEvents", nil, nil)
		if r.code != http.StatusMethodNotAllowed || r.header.Get("Allow") != http.MethodPost {
			t.Fatalf("status %d, Allow %q; want 405, POST; body %s", r.code, r.header.Get("Allow"), r.body)
		}
		r.err(t) // a JSON google.rpc.Status
	})
	t.Run("another path", func(t *testing.T) {
		r := send(t, http.MethodPost, f.url+"/v1/carriers/acme/somethingElse", nil, nil)
		if r.code != http.StatusNotFound {
			t.Fatalf("status %d, want 404; body %s", r.code, r.body)
		}
		r.err(t)
	})
	if n := len(f.ing.Calls()); n != 0 {
		t.Errorf("Ingest called %d times", n)
	}
}

func TestFailuresBehindTheSignature(t *testing.T) {
	t.Parallel()
	t.Run("a bankbridge error from Ingest keeps its status", func(t *testing.T) {
		f := standard(t)
		f.ing.err = apierr.New(commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION, "not now")
		r := f.push(t, "acme", signed(t, f.secret, "p1", now, validBody), validBody)
		if r.code != http.StatusBadRequest {
			t.Fatalf("status %d, want 400 (FAILED_PRECONDITION); body %s", r.code, r.body)
		}
		testkit.RequireReason(t, r.err(t), commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION)
	})
	t.Run("any other error from Ingest is masked", func(t *testing.T) {
		f := standard(t)
		f.ing.err = errors.New("database on fire near " + trackingNumber)
		r := f.push(t, "acme", signed(t, f.secret, "p1", now, validBody), validBody)
		if r.code != http.StatusInternalServerError {
			t.Fatalf("status %d, want 500; body %s", r.code, r.body)
		}
		md := testkit.RequireReason(t, r.err(t), commonv1.ErrorReason_ERROR_REASON_INTERNAL)
		if strings.Contains(string(r.body), "fire") {
			t.Errorf("the cause reached the carrier: %s", r.body)
		}
		if id := md["incident_id"]; id == "" || !strings.Contains(f.logs.String(), `"bankbridge.incident_id":"`+id+`"`) {
			t.Errorf("incident %q is not in the log: %s", id, f.logs.String())
		}
	})
	t.Run("secrets Vault cannot give now", func(t *testing.T) {
		f := newFixture(t, fakeSecrets{err: fmt.Errorf("read bankbridge/carriers/acme: vault unreachable: %w", credentials.ErrUnavailable)}, 0)
		body := validBody
		r := f.push(t, "acme", signed(t, stdwebhook.NewSecret(), "p1", now, body), body)
		if r.code != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503; body %s", r.code, r.body)
		}
		err := r.err(t)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_UNAVAILABLE)
		if testkit.RetryInfo(err) == nil {
			t.Error("no RetryInfo")
		}
		if n := len(f.ing.Calls()); n != 0 {
			t.Errorf("Ingest called %d times", n)
		}
	})
	t.Run("a malformed secret in Vault", func(t *testing.T) {
		f := newFixture(t, fakeSecrets{byCarrier: map[string][]string{"acme": {"not-a-secret"}}}, 0)
		r := f.push(t, "acme", signed(t, stdwebhook.NewSecret(), "p1", now, validBody), validBody)
		if r.code != http.StatusInternalServerError {
			t.Fatalf("status %d, want 500; body %s", r.code, r.body)
		}
		if strings.Contains(f.logs.String(), "not-a-secret") {
			t.Errorf("the log carries the secret: %s", f.logs.String())
		}
	})
}
