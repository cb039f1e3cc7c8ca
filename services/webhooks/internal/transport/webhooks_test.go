package transport_test

// These tests use WebhooksService the way a product team does: over gRPC,
// with the client's own client-credentials token, through the real server
// kit on 127.0.0.1:0. Behind it everything is real: a Vault dev server for
// the signing secrets (with the service's own policy), SQLite, a NATS
// JetStream bus embedded in the test that events are published to, and
// HTTP receivers on 127.0.0.1 that check each webhook's signature with
// their own code, written from the published Standard Webhooks format.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	webhooksv1 "github.com/bankbridge/bankbridge/gen/bankbridge/webhooks/v1"
	"github.com/bankbridge/bankbridge/services/platform/credentials"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/platform/vaulttest"
	"github.com/bankbridge/bankbridge/services/webhooks/internal/app"
	"github.com/bankbridge/bankbridge/services/webhooks/internal/egress"
	"github.com/bankbridge/bankbridge/services/webhooks/internal/secrets"
	"github.com/bankbridge/bankbridge/services/webhooks/internal/store"
	"github.com/bankbridge/bankbridge/services/webhooks/internal/transport"
)

const (
	client   = "chat-app"
	parent   = "clients/" + client
	expiring = "consent.link.expiring"
	revoked  = "consent.link.revoked"
)

// verify checks a webhook as a receiver following the Standard Webhooks
// specification does, independently of the service's code: the secret is
// "whsec_" + base64; the signed content is "<webhook-id>.<webhook-timestamp>.<body>";
// webhook-signature holds space-separated "v1,<base64 HMAC-SHA256>", any of
// which may match; the timestamp must be within 5 minutes.
func verify(secret string, h http.Header, body []byte) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	ts, err := strconv.ParseInt(h.Get("webhook-timestamp"), 10, 64)
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > 5*time.Minute {
		return errors.New("timestamp missing or too far from now")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(h.Get("webhook-id") + "." + h.Get("webhook-timestamp") + "."))
	mac.Write(body)
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		if v, value, _ := strings.Cut(sig, ","); v == "v1" && hmac.Equal([]byte(value), []byte(want)) {
			return nil
		}
	}
	return errors.New("no signature matches")
}

// hook is one request a receiver got.
type hook struct {
	header http.Header
	body   []byte
}

func (h hook) id() string { return h.header.Get("webhook-id") }

// receiver is a product team's webhook endpoint on 127.0.0.1. It answers
// 500 to its first failFirst requests, then 204.
type receiver struct {
	*httptest.Server
	mu        sync.Mutex
	failFirst int
	hooks     []hook
}

func newReceiver(t *testing.T, failFirst int) *receiver {
	t.Helper()
	r := &receiver{failFirst: failFirst}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.hooks = append(r.hooks, hook{header: req.Header.Clone(), body: body})
		fail := len(r.hooks) <= r.failFirst
		r.mu.Unlock()
		if fail {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte("a body bankbridge must not keep"))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) got() []hook {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hook(nil), r.hooks...)
}

// waitFor waits until the receiver has n requests and returns them.
func (r *receiver) waitFor(t *testing.T, n int) []hook {
	t.Helper()
	testkit.Eventually(t, func() bool { return len(r.got()) >= n }, 20*time.Second)
	return r.got()
}

// env is the webhooks service behind the real kit, its bus and its Vault.
type env struct {
	api    webhooksv1.WebhooksServiceClient
	srv    *servertest.Server
	bus    *events.Bus
	vault  *vaulttest.Server
	ctx    context.Context // the client's own token
	policy egress.Policy
}

type options struct {
	// strict: registration and delivery as outside dev mode.
	strict   bool
	resolver egress.Resolver
	window   time.Duration // retry window; default 24h
}

// policyToken is a Vault token with the webhooks service's policy.
func policyToken(t *testing.T, v *vaulttest.Server) string {
	t.Helper()
	rules, err := os.ReadFile("../../../../deploy/vault/policies/bankbridge-webhooks.hcl")
	if err != nil {
		t.Fatal(err)
	}
	v.PutPolicy(t, "bankbridge-webhooks", string(rules))
	return v.CreateToken(t, vaulttest.TokenRequest{Policies: []string{"bankbridge-webhooks"}})
}

func start(t *testing.T, v *vaulttest.Server, o options) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p, err := credentials.New(ctx, credentials.Config{Address: v.Addr(),
		Auth: credentials.AuthConfig{Method: credentials.AuthToken, Token: credentials.Sensitive(policyToken(t, v))}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	sec, err := secrets.New(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.New(ctx, storagetest.OpenSQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	nats, err := events.Embedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nats.Close)
	bus, err := events.Connect(ctx, events.Config{URL: nats.URL(), Name: "webhooks-test", SubjectKey: []byte("a-test-subject-key-of-32-bytes-at-least")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)

	policy := egress.Policy{AllowPrivate: !o.strict, Resolver: o.resolver}
	svc, err := app.New(app.Config{
		Store: st, Secrets: sec, URLs: policy, Poster: egress.NewPoster(policy, 2*time.Second), Pages: pagetoken.Random(),
		RetryWindow: o.window, BackoffBase: 20 * time.Millisecond, BackoffCap: 80 * time.Millisecond,
		AttemptTimeout: 2 * time.Second, PollInterval: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = svc.Dispatch(ctx) })
	wg.Go(func() {
		_ = bus.Consume(ctx, app.Durable, events.Filter{}, svc.HandleEvent, events.WithBackoff(10*time.Millisecond, 50*time.Millisecond))
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	srv := servertest.Start(t, server.Deps{}, func(r grpc.ServiceRegistrar) {
		webhooksv1.RegisterWebhooksServiceServer(r, transport.New(svc))
	}, servertest.Options{Name: "webhooks"})
	e := &env{api: webhooksv1.NewWebhooksServiceClient(srv.Conn), srv: srv, bus: bus, vault: v, policy: policy}
	e.ctx = e.token(t, client, client)
	return e
}

// token is a context with a token for sub through azp; sub == azp is a
// client-credentials token.
func (e *env) token(t *testing.T, sub, azp string) context.Context {
	t.Helper()
	tok, err := e.srv.Issuer.Mint(sub, azp, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
}

var keys atomic.Int64

// key is a fresh idempotency key.
func key() string { return fmt.Sprintf("test-key-%06d", keys.Add(1)) }

func (e *env) register(t *testing.T, url string, types ...string) (*webhooksv1.Endpoint, string) {
	t.Helper()
	resp, err := e.api.CreateEndpoint(e.ctx, &webhooksv1.CreateEndpointRequest{Parent: parent, IdempotencyKey: key(),
		Endpoint: &webhooksv1.Endpoint{Url: url, EventTypes: types, Description: "test receiver"}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetEndpoint(), resp.GetSecret()
}

// publish puts an event for the client on the bus, as a service's outbox
// relay does.
func (e *env) publish(t *testing.T, id, typ string, at time.Time) {
	t.Helper()
	err := e.bus.Publish(t.Context(), events.Event{ID: id, Type: typ, Source: "consent", User: "alice", Client: client,
		Resource: "users/alice/links/l1", Time: at, Data: []byte(`{"link":"users/alice/links/l1","bankId":"sandbox"}`)})
	if err != nil {
		t.Fatal(err)
	}
}

func (e *env) deliveries(t *testing.T, endpoint string) []*webhooksv1.Delivery {
	t.Helper()
	resp, err := e.api.ListDeliveries(e.ctx, &webhooksv1.ListDeliveriesRequest{Parent: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetDeliveries()
}

// TestWebhooks runs every case against one Vault dev server.
func TestWebhooks(t *testing.T) {
	t.Parallel()
	v := vaulttest.Start(t)

	t.Run("a webhook is delivered, signed, thin, to subscribed endpoints of the event's client only", func(t *testing.T) {
		t.Parallel()
		e := start(t, v, options{})
		rcv, other := newReceiver(t, 0), newReceiver(t, 0)
		ep, secret := e.register(t, rcv.URL+"/hook", expiring)
		e.register(t, other.URL+"/hook", revoked)
		if !strings.HasPrefix(secret, "whsec_") {
			t.Fatalf("secret %q is not whsec_...", secret)
		}
		at := time.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond)
		e.publish(t, "evt-1", expiring, at)
		if err := e.bus.Publish(t.Context(), events.Event{ID: "evt-other-client", Type: expiring, User: "bob", Client: "other-app", Resource: "users/bob/links/l2"}); err != nil {
			t.Fatal(err)
		}
		h := rcv.waitFor(t, 1)[0]
		if err := verify(secret, h.header, h.body); err != nil {
			t.Fatalf("signature: %v", err)
		}
		if h.id() != "evt-1" || h.header.Get("content-type") != "application/json" {
			t.Errorf("headers = %v", h.header)
		}
		var body struct {
			Type      string         `json:"type"`
			Timestamp time.Time      `json:"timestamp"`
			Data      map[string]any `json:"data"`
		}
		if err := json.Unmarshal(h.body, &body); err != nil {
			t.Fatal(err)
		}
		if body.Type != expiring || !body.Timestamp.Equal(at) || body.Data["id"] != "evt-1" || body.Data["resource"] != "users/alice/links/l1" {
			t.Errorf("body = %s", h.body)
		}
		// A second event, for the other endpoint only, arriving after the
		// first proves nothing else was queued for the first.
		e.publish(t, "evt-2", revoked, at)
		other.waitFor(t, 1)
		if got := rcv.got(); len(got) != 1 {
			t.Errorf("the expiring endpoint got %d webhooks, want 1", len(got))
		}
		testkit.Eventually(t, func() bool {
			ds := e.deliveries(t, ep.GetName())
			return len(ds) == 1 && ds[0].GetState() == webhooksv1.DeliveryState_DELIVERY_STATE_SUCCEEDED
		}, 10*time.Second)
		d := e.deliveries(t, ep.GetName())[0]
		if d.GetEventId() != "evt-1" || len(d.GetAttempts()) != 1 || d.GetAttempts()[0].GetHttpStatusCode() != 204 ||
			d.GetAttempts()[0].GetOutcome() != webhooksv1.AttemptOutcome_ATTEMPT_OUTCOME_SUCCEEDED || d.GetNextAttemptTime() != nil {
			t.Errorf("delivery log = %v", d)
		}
	})

	t.Run("a receiver that fails 3 times gets the event on the 4th try", func(t *testing.T) {
		t.Parallel()
		e := start(t, v, options{})
		rcv := newReceiver(t, 3)
		ep, secret := e.register(t, rcv.URL+"/hook", "*")
		e.publish(t, "evt-retry", expiring, time.Now())
		hooks := rcv.waitFor(t, 4)
		for i, h := range hooks {
			if err := verify(secret, h.header, h.body); err != nil || h.id() != "evt-retry" {
				t.Errorf("try %d: id %q, signature %v", i+1, h.id(), err)
			}
		}
		testkit.Eventually(t, func() bool {
			ds := e.deliveries(t, ep.GetName())
			return len(ds) == 1 && ds[0].GetState() == webhooksv1.DeliveryState_DELIVERY_STATE_SUCCEEDED
		}, 10*time.Second)
		attempts := e.deliveries(t, ep.GetName())[0].GetAttempts()
		if len(attempts) != 4 {
			t.Fatalf("%d attempts in the log, want 4", len(attempts))
		}
		for i, a := range attempts[:3] {
			if a.GetHttpStatusCode() != 500 || a.GetOutcome() != webhooksv1.AttemptOutcome_ATTEMPT_OUTCOME_HTTP_ERROR {
				t.Errorf("attempt %d = %v", i+1, a)
			}
		}
		if a := attempts[3]; a.GetHttpStatusCode() != 204 || a.GetOutcome() != webhooksv1.AttemptOutcome_ATTEMPT_OUTCOME_SUCCEEDED {
			t.Errorf("attempt 4 = %v", a)
		}
		time.Sleep(200 * time.Millisecond)
		if n := len(rcv.got()); n != 4 {
			t.Errorf("the receiver got %d requests, want no more than 4", n)
		}
	})

	t.Run("a delivery failing for the whole retry window is marked failed", func(t *testing.T) {
		t.Parallel()
		e := start(t, v, options{window: 300 * time.Millisecond})
		rcv := newReceiver(t, 1<<30)
		ep, _ := e.register(t, rcv.URL+"/hook", expiring)
		e.publish(t, "evt-doomed", expiring, time.Now())
		testkit.Eventually(t, func() bool {
			ds := e.deliveries(t, ep.GetName())
			return len(ds) == 1 && ds[0].GetState() == webhooksv1.DeliveryState_DELIVERY_STATE_FAILED
		}, 10*time.Second)
		n := len(rcv.got())
		if n < 2 {
			t.Errorf("only %d attempts before giving up", n)
		}
		time.Sleep(200 * time.Millisecond)
		if len(rcv.got()) != n {
			t.Error("a FAILED delivery was attempted again")
		}
	})

	t.Run("replay re-delivers from a time or after a cursor", func(t *testing.T) {
		t.Parallel()
		e := start(t, v, options{})
		rcv := newReceiver(t, 0)
		ep, secret := e.register(t, rcv.URL+"/hook", expiring)
		base := time.Now().Add(-time.Hour).UTC()
		for i := 1; i <= 3; i++ {
			e.publish(t, fmt.Sprintf("evt-r%d", i), expiring, base.Add(time.Duration(i)*time.Minute))
		}
		e.publish(t, "evt-r-other-type", revoked, base.Add(2*time.Minute))
		rcv.waitFor(t, 3)

		resp, err := e.api.ReplayEvents(e.ctx, &webhooksv1.ReplayEventsRequest{Name: ep.GetName(), IdempotencyKey: key(),
			Since: &webhooksv1.ReplayEventsRequest_StartTime{StartTime: timestamppb.New(base)}})
		if err != nil || resp.GetEventCount() != 3 || resp.GetNextCursor() != "" {
			t.Fatalf("ReplayEvents from a time = %v, %v", resp, err)
		}
		hooks := rcv.waitFor(t, 6)
		var ids []string
		for _, h := range hooks[3:] {
			if err := verify(secret, h.header, h.body); err != nil {
				t.Error(err)
			}
			ids = append(ids, h.id())
		}
		// Deliveries run concurrently: webhooks promise no order.
		slices.Sort(ids)
		if fmt.Sprint(ids) != "[evt-r1 evt-r2 evt-r3]" {
			t.Errorf("replayed %v, want the three events of the type", ids)
		}

		req := &webhooksv1.ReplayEventsRequest{Name: ep.GetName(), IdempotencyKey: key(),
			Since: &webhooksv1.ReplayEventsRequest_Cursor{Cursor: "evt-r1"}}
		resp, err = e.api.ReplayEvents(e.ctx, req)
		if err != nil || resp.GetEventCount() != 2 {
			t.Fatalf("ReplayEvents after a cursor = %v, %v", resp, err)
		}
		hooks = rcv.waitFor(t, 8)
		if got := []string{hooks[6].id(), hooks[7].id()}; !slices.Contains(got, "evt-r2") || !slices.Contains(got, "evt-r3") {
			t.Errorf("replayed after evt-r1: %v, want evt-r2 and evt-r3", got)
		}
		// The same request again (a retry) queues nothing twice.
		if again, err := e.api.ReplayEvents(e.ctx, req); err != nil || again.GetEventCount() != 2 {
			t.Fatalf("retried ReplayEvents = %v, %v", again, err)
		}
		time.Sleep(200 * time.Millisecond)
		if n := len(rcv.got()); n != 8 {
			t.Errorf("a retried replay delivered again: %d webhooks", n)
		}
		replays := 0
		for _, d := range e.deliveries(t, ep.GetName()) {
			if d.GetReplay() {
				replays++
			}
		}
		if replays != 5 {
			t.Errorf("%d replayed deliveries in the log, want 5", replays)
		}

		_, err = e.api.ReplayEvents(e.ctx, &webhooksv1.ReplayEventsRequest{Name: ep.GetName(), IdempotencyKey: key(),
			Since: &webhooksv1.ReplayEventsRequest_Cursor{Cursor: "evt-unknown"}})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID)
		testkit.RequireFieldViolation(t, err, "cursor")
		_, err = e.api.ReplayEvents(e.ctx, &webhooksv1.ReplayEventsRequest{Name: ep.GetName(), IdempotencyKey: key()})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT)
	})

	t.Run("during a rotation both secrets sign", func(t *testing.T) {
		t.Parallel()
		e := start(t, v, options{})
		rcv := newReceiver(t, 0)
		ep, old := e.register(t, rcv.URL+"/hook", expiring)
		rot, err := e.api.RotateEndpointSecret(e.ctx, &webhooksv1.RotateEndpointSecretRequest{Name: ep.GetName(), IdempotencyKey: key()})
		if err != nil {
			t.Fatal(err)
		}
		fresh := rot.GetSecret()
		if fresh == old || !strings.HasPrefix(fresh, "whsec_") {
			t.Fatalf("rotated secret %q", fresh)
		}
		if exp := rot.GetEndpoint().GetPreviousSecretExpireTime().AsTime(); time.Until(exp) < 23*time.Hour || time.Until(exp) > 25*time.Hour {
			t.Errorf("the old secret signs until %v, want about 24h from now", exp)
		}
		e.publish(t, "evt-rot-1", expiring, time.Now())
		h := rcv.waitFor(t, 1)[0]
		if len(strings.Fields(h.header.Get("webhook-signature"))) != 2 {
			t.Errorf("webhook-signature = %q, want two signatures", h.header.Get("webhook-signature"))
		}
		for name, s := range map[string]string{"old": old, "new": fresh} {
			if err := verify(s, h.header, h.body); err != nil {
				t.Errorf("with the %s secret: %v", name, err)
			}
		}
		// Rotating with no overlap: only the newest secret signs.
		rot, err = e.api.RotateEndpointSecret(e.ctx, &webhooksv1.RotateEndpointSecretRequest{Name: ep.GetName(), IdempotencyKey: key(),
			Overlap: durationpb.New(0)})
		if err != nil {
			t.Fatal(err)
		}
		e.publish(t, "evt-rot-2", expiring, time.Now())
		h = rcv.waitFor(t, 2)[1]
		if err := verify(rot.GetSecret(), h.header, h.body); err != nil {
			t.Errorf("with the newest secret: %v", err)
		}
		for _, s := range []string{old, fresh} {
			if verify(s, h.header, h.body) == nil {
				t.Error("a secret replaced without overlap still signs")
			}
		}
	})

	t.Run("a private-range URL is refused at registration", func(t *testing.T) {
		t.Parallel()
		e := start(t, v, options{strict: true})
		for _, url := range []string{
			"https://10.0.0.1/hook",
			"https://169.254.169.254/",
			"https://localhost/hook", // a name resolving to 127.0.0.1
			"https://[::ffff:127.0.0.1]/hook",
			"https://[fd00::1]/hook",
			"https://100.64.0.1/hook",
			"http://hooks.example.com/hook", // not https
		} {
			_, err := e.api.CreateEndpoint(e.ctx, &webhooksv1.CreateEndpointRequest{Parent: parent, IdempotencyKey: key(),
				Endpoint: &webhooksv1.Endpoint{Url: url, EventTypes: []string{expiring}}})
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT)
			if v := testkit.RequireFieldViolation(t, err, "endpoint.url"); v != nil {
				t.Logf("%s: %s", url, v.GetDescription())
			}
		}
		resp, err := e.api.ListEndpoints(e.ctx, &webhooksv1.ListEndpointsRequest{Parent: parent})
		if err != nil || len(resp.GetEndpoints()) != 0 {
			t.Errorf("refused URLs left endpoints: %v, %v", resp, err)
		}
	})

	t.Run("a name that rebinds to 127.0.0.1 after registration is never connected to", func(t *testing.T) {
		t.Parallel()
		dns := &rebinding{first: netip.MustParseAddr("93.184.216.34"), then: netip.MustParseAddr("127.0.0.1")}
		e := start(t, v, options{strict: true, resolver: dns})
		rcv := newReceiver(t, 0)
		port := rcv.Listener.Addr().(interface{ String() string }).String()
		_, p, _ := strings.Cut(port, ":")
		ep, _ := e.register(t, "https://rebind.example:"+p+"/hook", expiring)
		e.publish(t, "evt-rebind", expiring, time.Now())
		testkit.Eventually(t, func() bool {
			ds := e.deliveries(t, ep.GetName())
			return len(ds) == 1 && len(ds[0].GetAttempts()) > 0
		}, 10*time.Second)
		a := e.deliveries(t, ep.GetName())[0].GetAttempts()[0]
		if a.GetOutcome() != webhooksv1.AttemptOutcome_ATTEMPT_OUTCOME_ADDRESS_REFUSED || a.GetHttpStatusCode() != 0 {
			t.Errorf("attempt = %v, want ADDRESS_REFUSED", a)
		}
		if n := len(rcv.got()); n != 0 {
			t.Errorf("the receiver on 127.0.0.1 was reached %d times", n)
		}
	})

	t.Run("endpoints: idempotent create, get, list, delete, and only the client's own", func(t *testing.T) {
		t.Parallel()
		e := start(t, v, options{})
		req := &webhooksv1.CreateEndpointRequest{Parent: parent, IdempotencyKey: key(),
			Endpoint: &webhooksv1.Endpoint{Url: "http://127.0.0.1:9/hook", EventTypes: []string{expiring}}}
		first, err := e.api.CreateEndpoint(e.ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := e.api.CreateEndpoint(e.ctx, req)
		if err != nil || again.GetEndpoint().GetName() != first.GetEndpoint().GetName() || again.GetSecret() != first.GetSecret() {
			t.Fatalf("a retried create = %v, %v; want the first endpoint", again, err)
		}
		req.Endpoint.Url = "http://127.0.0.1:9/other"
		_, err = e.api.CreateEndpoint(e.ctx, req)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)

		name := first.GetEndpoint().GetName()
		got, err := e.api.GetEndpoint(e.ctx, &webhooksv1.GetEndpointRequest{Name: name})
		if err != nil || got.GetEndpoint().GetUrl() != "http://127.0.0.1:9/hook" || got.GetEndpoint().GetCreateTime() == nil {
			t.Fatalf("GetEndpoint = %v, %v", got, err)
		}
		list, err := e.api.ListEndpoints(e.ctx, &webhooksv1.ListEndpointsRequest{Parent: parent})
		if err != nil || len(list.GetEndpoints()) != 1 {
			t.Fatalf("ListEndpoints = %v, %v", list, err)
		}

		other := e.token(t, "other-app", "other-app")
		_, err = e.api.GetEndpoint(other, &webhooksv1.GetEndpointRequest{Name: name})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED)
		_, err = e.api.GetEndpoint(e.token(t, "alice", client), &webhooksv1.GetEndpointRequest{Name: name})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED)
		_, err = e.api.GetEndpoint(other, &webhooksv1.GetEndpointRequest{Name: strings.Replace(name, client, "other-app", 1)})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)

		if _, err := e.api.DeleteEndpoint(e.ctx, &webhooksv1.DeleteEndpointRequest{Name: name}); err != nil {
			t.Fatal(err)
		}
		_, err = e.api.GetEndpoint(e.ctx, &webhooksv1.GetEndpointRequest{Name: name})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
		id := name[strings.LastIndex(name, "/")+1:]
		if meta, err := v.Client().KVv2(vaulttest.Mount).GetMetadata(t.Context(), "webhooks/"+id); err == nil && meta != nil {
			t.Errorf("the deleted endpoint's secret is still in Vault: %v", meta.Versions)
		}
	})
}

// rebinding answers first at the first lookup of a name and then after
// it, as a DNS server under an attacker's control does.
type rebinding struct {
	mu          sync.Mutex
	looked      bool
	first, then netip.Addr
}

func (r *rebinding) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.looked {
		r.looked = true
		return []netip.Addr{r.first}, nil
	}
	return []netip.Addr{r.then}, nil
}
