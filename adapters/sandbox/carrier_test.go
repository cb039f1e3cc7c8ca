package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/bankbridge/bankbridge/adapters/internal/adaptertest"
	"github.com/bankbridge/bankbridge/adapters/sandbox"
	"github.com/bankbridge/bankbridge/adapters/stdwebhook"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
)

const testStep = 10 * time.Millisecond

// received is one POST as the receiver saw it.
type received struct {
	pushID string
	code   int // what the receiver answered
	event  *shippingv1.CarrierEvent
}

// receiver is bankbridge's carrier push endpoint as a carrier meets it: it
// verifies the Standard Webhooks signature with its secret, refuses a push
// id it answered 2xx before (replay) with 401, validates the body against
// the proto's rules, and answers with fail's code for the nth request
// (from 0) when fail gives one.
type receiver struct {
	t      *testing.T
	secret string
	fail   func(n int) int
	url    string

	mu   sync.Mutex
	got  []received
	done map[string]bool // push ids answered 2xx
}

func newReceiver(t *testing.T, secret string, fail func(n int) int) *receiver {
	t.Helper()
	r := &receiver{t: t, secret: secret, fail: fail, done: map[string]bool{}}
	v, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		rec := received{pushID: req.Header.Get(stdwebhook.HeaderID)}
		answer := func(code int) {
			rec.code = code
			r.got = append(r.got, rec)
			w.WriteHeader(code)
		}
		if req.URL.Path != "/v1/carriers/sandbox/trackingEvents" || req.Method != http.MethodPost {
			answer(http.StatusNotFound)
			return
		}
		id, err := stdwebhook.Verify([]string{r.secret}, req.Header, body, time.Now(), stdwebhook.DefaultTolerance)
		if err != nil || r.done[id] {
			answer(http.StatusUnauthorized)
			return
		}
		var push shippingv1.CarrierPush
		if err := protojson.Unmarshal(body, &push); err != nil {
			t.Errorf("push body %s: %v", body, err)
			answer(http.StatusBadRequest)
			return
		}
		if err := v.Validate(&push); err != nil {
			t.Errorf("push body breaks the proto's rules: %v\n%s", err, body)
			answer(http.StatusBadRequest)
			return
		}
		if len(push.GetEvents()) != 1 {
			t.Errorf("push carries %d events, want 1", len(push.GetEvents()))
		}
		rec.event = push.GetEvents()[0]
		code := http.StatusOK
		if r.fail != nil {
			if c := r.fail(len(r.got)); c != 0 {
				code = c
			}
		}
		if code/100 != 2 {
			answer(code)
			return
		}
		r.done[id] = true
		rec.code = code
		r.got = append(r.got, rec)
		w.Header().Set("Content-Type", "application/json")
		resp, _ := protojson.Marshal(&shippingv1.CarrierPushResponse{RecordedCount: 1})
		_, _ = w.Write(resp)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL + "/v1/carriers/sandbox/trackingEvents"
	return r
}

// received returns what reached the receiver so far.
func (r *receiver) received() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// accepted returns the events answered 2xx, in order.
func (r *receiver) accepted() []*shippingv1.CarrierEvent {
	var evs []*shippingv1.CarrierEvent
	for _, g := range r.received() {
		if g.code/100 == 2 {
			evs = append(evs, g.event)
		}
	}
	return evs
}

func newCarrier(t *testing.T, cfg sandbox.CarrierConfig) *sandbox.Carrier {
	t.Helper()
	if cfg.Step == 0 {
		cfg.Step = testStep
	}
	c, err := sandbox.NewCarrier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func statuses(evs []*shippingv1.CarrierEvent) []string {
	var s []string
	for _, e := range evs {
		s = append(s, strings.TrimPrefix(e.GetCheckpoint().GetStatus().String(), "SHIPMENT_STATUS_"))
	}
	return s
}

// eventIDPattern is "sbx-<number>-<run>-<step>".
var eventIDPattern = regexp.MustCompile(`^sbx-(SBX[0-9]{10})-([a-z0-9]+)-([0-9]+)$`)

// TestCarrierTrackingNumbers recomputes the numbers: "SBX", nine digits and
// a check digit that makes all ten pass the Luhn check.
func TestCarrierTrackingNumbers(t *testing.T) {
	t.Parallel()
	luhnValid := func(digits string) bool {
		sum := 0
		for i := range len(digits) {
			d := int(digits[len(digits)-1-i] - '0')
			if i%2 == 1 {
				d *= 2
				if d > 9 {
					d -= 9
				}
			}
			sum += d
		}
		return sum%10 == 0
	}
	tests := []struct {
		name, got, body string
	}{
		{"delivered", sandbox.TrackingDelivered, "000000001"},
		{"exception", sandbox.TrackingException, "000000002"},
		{"returned", sandbox.TrackingReturned, "000000003"},
		{"failed then delivered", sandbox.TrackingFailedThenDelivered, "000000004"},
	}
	for i, tt := range tests {
		digits, ok := strings.CutPrefix(tt.got, "SBX")
		if !ok || len(digits) != 10 || digits[:9] != tt.body || !luhnValid(digits) {
			t.Errorf("%s: %q is not SBX%s plus its Luhn check digit", tt.name, tt.got, tt.body)
		}
		for d := range byte(10) {
			if other := tt.body + string('0'+d); other != digits && luhnValid(other) {
				t.Errorf("%s: %s passes the Luhn check too", tt.name, other)
			}
		}
		if sandbox.TrackingNumbers()[i] != tt.got {
			t.Errorf("TrackingNumbers()[%d] = %q, want %q", i, sandbox.TrackingNumbers()[i], tt.got)
		}
	}
	// Worked by hand: the last of the nine digits is doubled.
	if want := "SBX0000000018 SBX0000000026 SBX0000000034 SBX0000000042"; strings.Join(sandbox.TrackingNumbers(), " ") != want {
		t.Errorf("TrackingNumbers() = %v, want %s", sandbox.TrackingNumbers(), want)
	}
}

// TestCarrierPlaysEachScript plays every number and checks what the
// receiver stored: verified pushes, the script's statuses in order, one run's
// stable ids, a place and the carrier's words on every event.
func TestCarrierPlaysEachScript(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		number string
		want   string
		last   func(*shippingv1.CarrierEvent) bool
	}{
		{"delivered", sandbox.TrackingDelivered, "INFO_RECEIVED IN_TRANSIT IN_TRANSIT OUT_FOR_DELIVERY DELIVERED",
			func(e *shippingv1.CarrierEvent) bool {
				return e.GetCheckpoint().GetSubstatus() == "delivered.signed" && e.GetSignedBy() == "A. Example"
			}},
		{"exception", sandbox.TrackingException, "INFO_RECEIVED IN_TRANSIT EXCEPTION",
			func(e *shippingv1.CarrierEvent) bool { return e.GetCheckpoint().GetSubstatus() == "exception.customs" }},
		{"returned", sandbox.TrackingReturned, "INFO_RECEIVED IN_TRANSIT ATTEMPT_FAILED RETURNED",
			func(e *shippingv1.CarrierEvent) bool { return e.GetSignedBy() == "" }},
		{"failed then delivered", sandbox.TrackingFailedThenDelivered,
			"INFO_RECEIVED IN_TRANSIT OUT_FOR_DELIVERY ATTEMPT_FAILED OUT_FOR_DELIVERY DELIVERED",
			func(e *shippingv1.CarrierEvent) bool { return e.GetCheckpoint().GetSubstatus() != "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			secret := stdwebhook.NewSecret()
			rcv := newReceiver(t, secret, nil)
			c := newCarrier(t, sandbox.CarrierConfig{PushURL: rcv.url, Secret: secret})
			began := time.Now()
			if err := c.Play(t.Context(), tt.number); err != nil {
				t.Fatal(err)
			}
			evs := rcv.accepted()
			if got := strings.Join(statuses(evs), " "); got != tt.want {
				t.Fatalf("statuses %s, want %s", got, tt.want)
			}
			if n, err := c.Steps(tt.number); n != len(evs) || err != nil {
				t.Errorf("Steps = %d, %v; want %d", n, err, len(evs))
			}
			if !tt.last(evs[len(evs)-1]) {
				t.Errorf("last event %v", evs[len(evs)-1])
			}
			if evs[0].GetEstimatedDeliveryTime() == nil {
				t.Error("the first event has no estimated delivery time")
			}
			pushIDs := map[string]bool{}
			var run string
			prev := began.Add(-time.Second)
			for i, e := range evs {
				m := eventIDPattern.FindStringSubmatch(e.GetEventId())
				switch {
				case m == nil || m[1] != tt.number || m[3] != strconv.Itoa(i+1):
					t.Errorf("event %d: id %q, want sbx-%s-<run>-%d", i, e.GetEventId(), tt.number, i+1)
				case i == 0:
					run = m[2]
				case m[2] != run:
					t.Errorf("event %d: run %q, want the run of the first event, %q", i, m[2], run)
				}
				cp := e.GetCheckpoint()
				if e.GetTrackingNumber() != tt.number || cp.GetLocation().GetCity() == "" || cp.GetLocation().GetCountryCode() == "" ||
					cp.GetCarrierStatusCode() == "" || cp.GetCarrierMessage() == "" {
					t.Errorf("event %d lacks a field: %v", i, e)
				}
				if at := cp.GetTime().AsTime(); at.Before(prev) || at.After(time.Now()) {
					t.Errorf("event %d: checkpoint time %s, want between the previous one (%s) and now", i, at, prev)
				} else {
					prev = at
				}
			}
			for _, g := range rcv.received() {
				if pushIDs[g.pushID] {
					t.Errorf("push id %q sent for two steps", g.pushID)
				}
				pushIDs[g.pushID] = true
			}
			if tt.number == sandbox.TrackingDelivered {
				if a, b := evs[1].GetCheckpoint().GetLocation().GetCity(), evs[2].GetCheckpoint().GetLocation().GetCity(); a == b {
					t.Errorf("both in-transit checkpoints are in %s", a)
				}
			}
		})
	}
}

// TestCarrierPlayAgainIsANewRun: a second play sends new event ids, so the
// receiver stores the parcel's journey again.
func TestCarrierPlayAgainIsANewRun(t *testing.T) {
	t.Parallel()
	secret := stdwebhook.NewSecret()
	rcv := newReceiver(t, secret, nil)
	c := newCarrier(t, sandbox.CarrierConfig{PushURL: rcv.url, Secret: secret})
	for range 2 {
		if err := c.Play(t.Context(), sandbox.TrackingException); err != nil {
			t.Fatal(err)
		}
	}
	evs := rcv.accepted()
	if len(evs) != 6 {
		t.Fatalf("%d events, want two runs of 3", len(evs))
	}
	ids := map[string]bool{}
	runs := map[string]bool{}
	for _, e := range evs {
		if ids[e.GetEventId()] {
			t.Errorf("event id %q sent twice", e.GetEventId())
		}
		ids[e.GetEventId()] = true
		if m := eventIDPattern.FindStringSubmatch(e.GetEventId()); m != nil {
			runs[m[2]] = true
		}
	}
	if len(runs) != 2 {
		t.Errorf("event ids %v name %d runs, want 2", ids, len(runs))
	}
}

// TestCarrierRetries: a step answered 503 is sent again with its push id,
// which the receiver does not count as a replay; the next step has a new
// one. A step that keeps failing stops the run after a few attempts.
func TestCarrierRetries(t *testing.T) {
	t.Parallel()
	t.Run("503 once", func(t *testing.T) {
		t.Parallel()
		secret := stdwebhook.NewSecret()
		rcv := newReceiver(t, secret, func(n int) int {
			if n == 1 { // the second step's first attempt
				return http.StatusServiceUnavailable
			}
			return 0
		})
		c := newCarrier(t, sandbox.CarrierConfig{PushURL: rcv.url, Secret: secret})
		if err := c.Play(t.Context(), sandbox.TrackingException); err != nil {
			t.Fatal(err)
		}
		got := rcv.received()
		if len(got) != 4 {
			t.Fatalf("%d requests, want 4 (3 steps, one sent twice): %+v", len(got), got)
		}
		if got[1].code != http.StatusServiceUnavailable || got[2].code != http.StatusOK {
			t.Errorf("answers %d then %d, want 503 then 200", got[1].code, got[2].code)
		}
		if got[1].pushID != got[2].pushID || got[1].event.GetEventId() != got[2].event.GetEventId() {
			t.Errorf("the retry is push %q event %q, want the failed push's %q event %q",
				got[2].pushID, got[2].event.GetEventId(), got[1].pushID, got[1].event.GetEventId())
		}
		if got[0].pushID == got[1].pushID || got[2].pushID == got[3].pushID {
			t.Errorf("push ids %q %q %q %q: want a new one for each step", got[0].pushID, got[1].pushID, got[2].pushID, got[3].pushID)
		}
		if s := strings.Join(statuses(rcv.accepted()), " "); s != "INFO_RECEIVED IN_TRANSIT EXCEPTION" {
			t.Errorf("stored %s", s)
		}
	})
	t.Run("503 always", func(t *testing.T) {
		t.Parallel()
		secret := stdwebhook.NewSecret()
		rcv := newReceiver(t, secret, func(int) int { return http.StatusBadGateway })
		c := newCarrier(t, sandbox.CarrierConfig{PushURL: rcv.url, Secret: secret})
		if err := c.Play(t.Context(), sandbox.TrackingException); err == nil || !strings.Contains(err.Error(), "502") {
			t.Fatalf("Play = %v, want the run stopped on 502", err)
		}
		got := rcv.received()
		if len(got) < 2 || len(got) > 10 {
			t.Fatalf("%d attempts, want a few", len(got))
		}
		for _, g := range got {
			if g.pushID != got[0].pushID || g.event.GetEventId() != got[0].event.GetEventId() {
				t.Errorf("attempt %+v, want the first step again", g)
			}
		}
	})
	t.Run("400 is not retried", func(t *testing.T) {
		t.Parallel()
		secret := stdwebhook.NewSecret()
		rcv := newReceiver(t, secret, func(int) int { return http.StatusBadRequest })
		c := newCarrier(t, sandbox.CarrierConfig{PushURL: rcv.url, Secret: secret})
		if err := c.Play(t.Context(), sandbox.TrackingReturned); err == nil {
			t.Fatal("Play succeeded against a receiver answering 400")
		}
		if n := len(rcv.received()); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	})
	// lossy forwards to rcv, but breaks the connection of the first
	// request without an answer: before forwarding it or, with afterwards,
	// after the receiver accepted it. It returns the push id it broke.
	lossy := func(t *testing.T, rcv *receiver, afterwards bool) (string, func() string) {
		var mu sync.Mutex
		broken := ""
		proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			first := broken == ""
			if first {
				broken = r.Header.Get(stdwebhook.HeaderID)
			}
			mu.Unlock()
			hangUp := func() {
				if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
					_ = conn.Close()
				}
			}
			if first && !afterwards {
				hangUp()
				return
			}
			body, _ := io.ReadAll(r.Body)
			req, _ := http.NewRequestWithContext(r.Context(), r.Method, rcv.url, bytes.NewReader(body))
			req.Header = r.Header.Clone()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			if first {
				hangUp()
				return
			}
			w.WriteHeader(resp.StatusCode)
			_, _ = io.Copy(w, resp.Body)
		}))
		t.Cleanup(proxy.Close)
		return proxy.URL + "/v1/carriers/sandbox/trackingEvents", func() string {
			mu.Lock()
			defer mu.Unlock()
			return broken
		}
	}
	t.Run("connection lost before the receiver", func(t *testing.T) {
		t.Parallel()
		secret := stdwebhook.NewSecret()
		rcv := newReceiver(t, secret, nil)
		url, broken := lossy(t, rcv, false)
		c := newCarrier(t, sandbox.CarrierConfig{PushURL: url, Secret: secret})
		if err := c.Play(t.Context(), sandbox.TrackingException); err != nil {
			t.Fatal(err)
		}
		got := rcv.received()
		if len(got) != 3 || got[0].pushID != broken() {
			t.Errorf("after a dropped connection the receiver got %+v; want 3 steps, the first with push id %q", got, broken())
		}
	})
	t.Run("answer lost after the receiver accepted", func(t *testing.T) {
		t.Parallel()
		secret := stdwebhook.NewSecret()
		rcv := newReceiver(t, secret, nil)
		url, broken := lossy(t, rcv, true)
		c := newCarrier(t, sandbox.CarrierConfig{PushURL: url, Secret: secret})
		if err := c.Play(t.Context(), sandbox.TrackingException); err != nil {
			t.Fatalf("Play = %v; want the step sent again under a new push id after the replay's 401", err)
		}
		got := rcv.received()
		// The accepted push, its retry refused as a replay, the same event
		// under a new push id, then the next two steps.
		if len(got) != 5 || got[0].pushID != broken() || got[1].pushID != broken() || got[1].code != http.StatusUnauthorized ||
			got[2].pushID == broken() || got[2].code != http.StatusOK || got[2].event.GetEventId() != got[0].event.GetEventId() {
			t.Fatalf("receiver got %+v", got)
		}
	})
}

// TestCarrierStopsOn401: a push refused for its signature stops the run,
// and Start logs why without the secret.
func TestCarrierStopsOn401(t *testing.T) {
	t.Parallel()
	secret := stdwebhook.NewSecret()
	rcv := newReceiver(t, stdwebhook.NewSecret(), nil) // expects another secret
	var logs adaptertest.SyncBuffer
	c := newCarrier(t, sandbox.CarrierConfig{PushURL: rcv.url, Secret: secret, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err := c.Play(t.Context(), sandbox.TrackingDelivered); !errors.Is(err, sandbox.ErrPushRefused) {
		t.Fatalf("Play = %v, want ErrPushRefused", err)
	}
	if n := len(rcv.received()); n != 1 {
		t.Errorf("%d requests after a 401, want 1", n)
	}

	if _, err := c.Start(sandbox.TrackingDelivered); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(logs.String(), "carrier run stopped") })
	if n := len(rcv.received()); n != 2 {
		t.Errorf("%d requests after two refused runs, want 2", n)
	}
	key := strings.TrimPrefix(secret, stdwebhook.SecretPrefix)
	if strings.Contains(logs.String(), key) {
		t.Errorf("the logs carry the secret:\n%s", logs.String())
	}
	if s := (sandbox.CarrierConfig{PushURL: rcv.url, Secret: secret}).String(); strings.Contains(s, key) {
		t.Errorf("CarrierConfig prints its secret: %s", s)
	}
}

func TestNewCarrierRefusesABadConfig(t *testing.T) {
	t.Parallel()
	secret := stdwebhook.NewSecret()
	tests := []struct {
		name string
		cfg  sandbox.CarrierConfig
	}{
		{"no URL", sandbox.CarrierConfig{Secret: secret}},
		{"relative URL", sandbox.CarrierConfig{PushURL: "/v1/carriers/sandbox/trackingEvents", Secret: secret}},
		{"no secret", sandbox.CarrierConfig{PushURL: "http://127.0.0.1:1/x"}},
		{"not a whsec_ secret", sandbox.CarrierConfig{PushURL: "http://127.0.0.1:1/x", Secret: "hunter2-hunter2"}},
		{"negative step", sandbox.CarrierConfig{PushURL: "http://127.0.0.1:1/x", Secret: secret, Step: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := sandbox.NewCarrier(tt.cfg)
			if err == nil {
				t.Fatal("NewCarrier accepted it")
			}
			if tt.cfg.Secret != "" && strings.Contains(err.Error(), tt.cfg.Secret) {
				t.Errorf("the error carries the secret: %v", err)
			}
		})
	}
	c := newCarrier(t, sandbox.CarrierConfig{PushURL: "http://127.0.0.1:1/x", Secret: secret})
	if err := c.Play(t.Context(), "SBX0000000019"); !errors.Is(err, sandbox.ErrUnknownTrackingNumber) {
		t.Errorf("Play(unknown) = %v", err)
	}
}

// TestCarrierPlayAll moves all four parcels.
func TestCarrierPlayAll(t *testing.T) {
	t.Parallel()
	secret := stdwebhook.NewSecret()
	rcv := newReceiver(t, secret, nil)
	c := newCarrier(t, sandbox.CarrierConfig{PushURL: rcv.url, Secret: secret})
	if err := c.PlayAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	per := map[string][]*shippingv1.CarrierEvent{}
	for _, e := range rcv.accepted() {
		per[e.GetTrackingNumber()] = append(per[e.GetTrackingNumber()], e)
	}
	for _, n := range sandbox.TrackingNumbers() {
		steps, _ := c.Steps(n)
		if len(per[n]) != steps {
			t.Errorf("%s: %d events, want %d", n, len(per[n]), steps)
		}
	}
}

// TestCarrierCloseEndsRuns: Close stops a run between steps.
func TestCarrierCloseEndsRuns(t *testing.T) {
	t.Parallel()
	secret := stdwebhook.NewSecret()
	rcv := newReceiver(t, secret, nil)
	c := newCarrier(t, sandbox.CarrierConfig{PushURL: rcv.url, Secret: secret, Step: time.Hour})
	if _, err := c.Start(sandbox.TrackingDelivered); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(rcv.received()) == 1 })
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if _, err := c.Start(sandbox.TrackingDelivered); !errors.Is(err, sandbox.ErrCarrierClosed) {
		t.Errorf("Start after Close = %v", err)
	}
}

func TestCarrierAdmin(t *testing.T) {
	t.Parallel()
	secret := stdwebhook.NewSecret()
	rcv := newReceiver(t, secret, nil)
	c := newCarrier(t, sandbox.CarrierConfig{PushURL: rcv.url, Secret: secret})
	with, without := httptest.NewServer(sandbox.CarrierAdminHandler(c)), httptest.NewServer(sandbox.CarrierAdminHandler(nil))
	defer with.Close()
	defer without.Close()
	post := func(base, number string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Post(base+"/admin/carrier/play?tracking_number="+number, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}

	if code, _ := post(without.URL, sandbox.TrackingDelivered); code != http.StatusConflict {
		t.Errorf("without a carrier: %d, want 409", code)
	}
	if code, _ := post(with.URL, "SBX0000000059"); code != http.StatusNotFound {
		t.Errorf("a number not in the fixtures: %d, want 404", code)
	}
	if code, _ := post(with.URL, ""); code != http.StatusBadRequest {
		t.Errorf("no number: %d, want 400", code)
	}
	resp, err := http.Get(with.URL + "/admin/carrier/play?tracking_number=" + sandbox.TrackingDelivered)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405", resp.StatusCode)
	}

	code, body := post(with.URL, sandbox.TrackingReturned)
	if code != http.StatusAccepted || body["tracking_number"] != sandbox.TrackingReturned || body["steps"] != float64(4) {
		t.Fatalf("play: %d %v; want 202 with the number and 4 steps", code, body)
	}
	waitFor(t, func() bool { return len(rcv.accepted()) == 4 })
	if s := strings.Join(statuses(rcv.accepted()), " "); s != "INFO_RECEIVED IN_TRANSIT ATTEMPT_FAILED RETURNED" {
		t.Errorf("stored %s", s)
	}
}

// waitFor polls cond for up to 10s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatal("condition not met within 10s")
		case <-time.After(5 * time.Millisecond):
		}
	}
}
