package transport_test

// These tests call the shipping service the way a product, a partner and a
// carrier do: over gRPC, with bearer tokens (and a declared purpose for
// users), through the real server kit (token check, user and client
// binding, validation, access rules, consent check, access log) on
// 127.0.0.1:0, and over HTTP to the real carrier endpoint with signed
// pushes; on a real store (SQLite) whose outbox a real relay publishes to
// a NATS server. Consent and the carriers' secrets are fakes at the ports.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/adapters/stdwebhook"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck/consenttest"
	"github.com/bankbridge/bankbridge/services/platform/events/eventstest"
	"github.com/bankbridge/bankbridge/services/platform/events/stream"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/shipping/internal/app"
	"github.com/bankbridge/bankbridge/services/shipping/internal/carrier"
	"github.com/bankbridge/bankbridge/services/shipping/internal/carrierpush"
	"github.com/bankbridge/bankbridge/services/shipping/internal/store"
	"github.com/bankbridge/bankbridge/services/shipping/internal/transport"
)

// Tracking numbers with valid check digits.
const (
	// upsNumber is UPS's published example.
	upsNumber = "1Z999AA10123456784"
	// upsOther is another UPS parcel.
	upsOther = "1Z5R89390357567127"
	// dhlNumber is a DHL Express waybill.
	dhlNumber = "3318810025"
	// ambiguous is a 22-digit "96" number both FedEx Ground and USPS
	// IMpb accept.
	ambiguous = "9600009098765431234565"
)

const partnerParent = "clients/" + servertest.Partner

type env struct {
	svc      *app.Service
	db       *storage.DB
	consent  *consenttest.Consent
	clock    *testkit.Clock
	issuer   *auth.DevIssuer
	srv      *servertest.Server
	shipping shippingv1.ShippingServiceClient
	partner  shippingv1.PartnerShippingServiceClient
	// carrierURL is the carrier endpoint's base URL; secret signs pushes
	// of every carrier.
	carrierURL string
	secret     string
	// stream is the name of the bus's stream.
	stream string
}

// busURL is a NATS server for one test: embedded in it, or the real one.
type busURL func(t *testing.T) string

func embeddedNATS(t *testing.T) string { return eventstest.EmbeddedNATS(t) }

// secrets gives every carrier the one secret.
type secrets struct{ secret string }

func (s secrets) CarrierSecrets(_ context.Context, c string) ([]string, error) {
	if !carrier.Supported(c) {
		return nil, carrierpush.ErrUnknownCarrier
	}
	return []string{s.secret}, nil
}

// start serves the shipping service, its events relayed to a stream of
// the test's own on the NATS server url gives, with the app's clock at now.
func start(t *testing.T, url busURL) *env {
	t.Helper()
	return startOn(t, url, storagetest.OpenSQLite(t))
}

// startOn is start on the database db.
func startOn(t *testing.T, url busURL, db *storage.DB) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e := &env{db: db, consent: consenttest.New(commonv1.Scope_SCOPE_ACCOUNTS, commonv1.Scope_SCOPE_SHIPPING), clock: testkit.NewClock(time.Now()), secret: stdwebhook.NewSecret()}
	relayed := eventstest.Relay(t, url(t), e.db, "shipping")
	bus := relayed.Bus
	e.stream = relayed.Stream
	st, err := store.New(ctx, e.db, relayed.Outbox)
	if err != nil {
		t.Fatal(err)
	}

	e.svc, err = app.New(app.Config{Store: st, Consent: e.consent, Pages: pagetoken.Random(), Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	// Wired as the service's start wires it: a hub for the live streams,
	// and the consumer writing each parcel event's per-user events.
	hub, err := stream.NewHub(bus, stream.HubOptions{Types: transport.LiveWatchTypes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hub.Close)
	expandDone := make(chan struct{})
	go func() {
		defer close(expandDone)
		_ = transport.ExpandParcelEvents(bus, e.svc, slog.New(slog.DiscardHandler))(ctx)
	}()
	t.Cleanup(func() { cancel(); <-expandDone })
	feed := stream.Feed{Bus: bus, Hub: hub, Consent: e.consent, Logger: slog.New(slog.DiscardHandler)}
	srv := servertest.Start(t, server.Deps{Consent: e.consent, Recorder: e.consent},
		func(r grpc.ServiceRegistrar) {
			shippingv1.RegisterShippingServiceServer(r, transport.NewShippingServer(e.svc, feed))
			shippingv1.RegisterPartnerShippingServiceServer(r, transport.NewPartnerServer(e.svc))
		}, servertest.Options{Name: "shipping"})
	e.issuer, e.srv = srv.Issuer, srv
	e.shipping = shippingv1.NewShippingServiceClient(srv.Conn)
	e.partner = shippingv1.NewPartnerShippingServiceClient(srv.Conn)

	h := carrierpush.NewHandler(transport.NewCarrierIngester(e.svc), secrets{e.secret}, carrierpush.Options{Logger: slog.New(slog.DiscardHandler)})
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	e.carrierURL = hs.URL
	return e
}

// token mints a token of user for client, valid for ttl.
func (e *env) token(t *testing.T, user, client string, ttl time.Duration) string {
	t.Helper()
	tok, err := e.issuer.Mint(user, client, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// as is a call by user through the chat app, for ORDER_TRACKING.
func (e *env) as(t *testing.T, user string) context.Context {
	t.Helper()
	return e.asFor(t, user, "ORDER_TRACKING")
}

func (e *env) asFor(t *testing.T, user, purpose string) context.Context {
	t.Helper()
	return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+e.token(t, user, servertest.Client, time.Hour),
		"bankbridge-purpose", purpose)
}

// asPartner is a call by the test partner with its own token.
func (e *env) asPartner(t *testing.T) context.Context {
	t.Helper()
	return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+e.token(t, servertest.Partner, servertest.Partner, time.Hour))
}

// link gives user a VALID link covering shipping.
func (e *env) link(user string) string { return e.consent.AddLink(user, "sandbox") }

// optIn gives user a link covering shipping and an opt-in to the test
// partner under puid.
func (e *env) optIn(user, puid string) {
	e.link(user)
	e.consent.OptIn(user, servertest.Partner, puid)
}

// newKey is a fresh idempotency key.
func newKey() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "key-" + hex.EncodeToString(b[:])
}

// create starts tracking number (carrier "" to detect it) for user and
// fails the test on an error.
func (e *env) create(t *testing.T, user, number, carrierCode string) *shippingv1.Shipment {
	t.Helper()
	resp, err := e.shipping.CreateShipment(e.as(t, user), &shippingv1.CreateShipmentRequest{Parent: "users/" + user, IdempotencyKey: newKey(),
		Shipment: &shippingv1.Shipment{TrackingNumber: number, Carrier: carrierCode}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetShipment()
}

// get reads a shipment of user.
func (e *env) get(t *testing.T, user, name string) *shippingv1.Shipment {
	t.Helper()
	resp, err := e.shipping.GetShipment(e.as(t, user), &shippingv1.GetShipmentRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetShipment()
}

// list returns all of user's shipments, through every page.
func (e *env) list(t *testing.T, user string, req *shippingv1.ListShipmentsRequest) []*shippingv1.Shipment {
	t.Helper()
	if req == nil {
		req = &shippingv1.ListShipmentsRequest{}
	}
	req.Parent = "users/" + user
	var out []*shippingv1.Shipment
	for {
		resp, err := e.shipping.ListShipments(e.as(t, user), req)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, resp.GetShipments()...)
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			return out
		}
	}
}

// stored counts the shipments rows of user, straight from the database.
func (e *env) stored(t *testing.T, user string) int {
	t.Helper()
	var n int
	if err := e.db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM shipments WHERE user_id = $1`, user).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// rows counts the rows of table, straight from the database.
func (e *env) rows(t *testing.T, table string) int {
	t.Helper()
	var n int
	if err := e.db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// ev is one carrier event of number: status at, with a random id.
func ev(number string, status shippingv1.ShipmentStatus, at time.Time) *shippingv1.CarrierEvent {
	return &shippingv1.CarrierEvent{EventId: "evt-" + newKey(), TrackingNumber: number,
		Checkpoint: &shippingv1.Checkpoint{Time: timestamppb.New(at), Status: status, CarrierMessage: status.String()}}
}

// pushed is a carrier push's answer.
type pushed struct {
	code int
	resp *shippingv1.CarrierPushResponse
	body string
}

// push POSTs a push of carrierCode under pushID ("" for a fresh one),
// signed with the carriers' secret, to the carrier endpoint.
func (e *env) push(t *testing.T, carrierCode, pushID string, evs ...*shippingv1.CarrierEvent) pushed {
	t.Helper()
	if pushID == "" {
		pushID = "msg_" + newKey()
	}
	body, err := protojson.Marshal(&shippingv1.CarrierPush{Events: evs})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.carrierURL+"/v1/carriers/"+carrierCode+"/trackingEvents", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if err := stdwebhook.SetHeaders(req.Header, []string{e.secret}, pushID, time.Now(), body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := pushed{code: resp.StatusCode, body: string(b)}
	if resp.StatusCode == http.StatusOK {
		out.resp = &shippingv1.CarrierPushResponse{}
		if err := protojson.Unmarshal(b, out.resp); err != nil {
			t.Fatalf("push answer %s: %v", b, err)
		}
	}
	return out
}

// mustPush pushes and fails the test unless the push is answered 200.
func (e *env) mustPush(t *testing.T, carrierCode string, evs ...*shippingv1.CarrierEvent) *shippingv1.CarrierPushResponse {
	t.Helper()
	p := e.push(t, carrierCode, "", evs...)
	if p.code != http.StatusOK {
		t.Fatalf("push = %d %s", p.code, p.body)
	}
	return p.resp
}

// watcher is an open WatchShipments stream.
type watcher struct {
	t *testing.T
	s grpc.ServerStreamingClient[shippingv1.WatchShipmentsResponse]
}

// watch opens user's stream from cursor and waits until it is open.
func (e *env) watch(t *testing.T, ctx context.Context, user, cursor string) watcher {
	t.Helper()
	if ctx == nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(e.as(t, user), 30*time.Second)
		t.Cleanup(cancel)
	}
	s, err := e.shipping.WatchShipments(ctx, &shippingv1.WatchShipmentsRequest{Parent: "users/" + user, ResumeCursor: cursor})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Header(); err != nil { // the watch is open
		t.Fatal(err)
	}
	return watcher{t: t, s: s}
}

// next receives the next event, failing the test on an error.
func (w watcher) next() *shippingv1.WatchShipmentsResponse {
	w.t.Helper()
	r, err := w.s.Recv()
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

// withHeader adds one metadata entry to a call.
func withHeader(ctx context.Context, key, value string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, key, value)
}
