package stream_test

// These tests watch shipments the way a product does: over gRPC, with a
// bearer token and a declared purpose, through the real server kit (token,
// user binding, validation, the access rule of the ShippingService
// contract, consent, access log) on 127.0.0.1:0, with WatchShipments served
// by the helper from a bus. Consent is a fake that can be revoked
// mid-stream.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/events/stream"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// testBus is a bus as the tests use it: the streams read, the test writes.
type testBus interface {
	stream.Bus
	publisher
}

// publisher is how a test writes events: straight to a bus, or through a
// service's outbox and relay.
type publisher interface {
	Publish(ctx context.Context, e events.Event) error
}

// replica is one instance of the service, its own server and bus client.
type replica struct {
	bus    testBus
	srv    *servertest.Server
	client shippingv1.ShippingServiceClient
}

// serve starts one replica reading from bus.
func serve(t *testing.T, bus testBus, consent *fakeConsent) *replica {
	t.Helper()
	return serveShipments(t, bus, consent, &watchServer{feed: stream.Feed{Bus: bus, Consent: consent}})
}

// serveShipments starts one replica whose WatchShipments is ws, reading
// from bus.
func serveShipments(t *testing.T, bus testBus, consent *fakeConsent, ws *watchServer) *replica {
	t.Helper()
	srv := servertest.Start(t, server.Deps{Consent: consent, Recorder: consent},
		func(r grpc.ServiceRegistrar) { shippingv1.RegisterShippingServiceServer(r, ws) },
		servertest.Options{Name: "shipping"})
	return &replica{bus: bus, srv: srv, client: shippingv1.NewShippingServiceClient(srv.Conn)}
}

// as is a call by user for ORDER_TRACKING, ending with ctx.
func (r *replica) as(t *testing.T, ctx context.Context, user string) context.Context {
	t.Helper()
	tok, err := r.srv.Issuer.Mint(user, servertest.Client, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok, "bankbridge-purpose", "ORDER_TRACKING")
}

// watch opens user's watch from cursor and waits for the headers, which
// the helper sends once it has subscribed (or the call's end brings, when
// it failed: then the first Recv fails). The watch ends with the returned
// cancel, or with the test.
func (r *replica) watch(t *testing.T, user, cursor string) (grpc.ServerStreamingClient[shippingv1.WatchShipmentsResponse], context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	st, err := r.client.WatchShipments(r.as(t, ctx, user), &shippingv1.WatchShipmentsRequest{Parent: "users/" + user, ResumeCursor: cursor})
	if err == nil {
		_, err = st.Header()
	}
	if err != nil {
		cancel()
		t.Fatalf("watch: %v", err)
	}
	return st, cancel
}

// refused opens a watch that must fail before sending anything, and
// returns how it failed.
func (r *replica) refused(t *testing.T, user, cursor string) error {
	t.Helper()
	st, cancel := r.watch(t, user, cursor)
	defer cancel()
	m, err := st.Recv()
	if err == nil {
		t.Fatalf("watch sent %v, want a refusal", m)
	}
	return err
}

// recv receives n events and returns them.
func recv(t *testing.T, st grpc.ServerStreamingClient[shippingv1.WatchShipmentsResponse], n int) []*shippingv1.WatchShipmentsResponse {
	t.Helper()
	var out []*shippingv1.WatchShipmentsResponse
	for range n {
		m, err := st.Recv()
		if err != nil {
			t.Fatalf("after %d of %d events: %v", len(out), n, err)
		}
		out = append(out, m)
	}
	return out
}

// run is a set of events of one test: unique ids, so tests sharing a real
// NATS server (and its duplicate window) never meet.
type run struct {
	id   string
	user string
}

func newRun(t *testing.T) run {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	return run{id: id, user: "u" + id}
}

// shipment is the n-th event of the run: shipment sn of the run's user
// was updated.
func (r run) shipment(n int) events.Event { return r.event(r.user, typeUpdated, n) }

func (r run) event(user, typ string, n int) events.Event {
	name := fmt.Sprintf("users/%s/shipments/s%d", user, n)
	data, err := protojson.Marshal(&shippingv1.ShipmentEvent{
		Type:     shippingv1.ShipmentEventType_SHIPMENT_EVENT_TYPE_UPDATED,
		Shipment: &shippingv1.Shipment{Name: name, Status: shippingv1.ShipmentStatus_SHIPMENT_STATUS_IN_TRANSIT},
	})
	if err != nil {
		panic(err)
	}
	return events.Event{
		ID: fmt.Sprintf("%s-%s-%d", r.id, user, n), Type: typ, Source: "shipping", User: user,
		Resource: name, Time: time.Now().UTC(), Data: data,
	}
}

// parcel is the run's n-th carrier checkpoint of one parcel, as an
// audience event of the shipments (resources) that track it: the parcel
// names it, and its payload holds the tracking fields only (update_mask
// status), for every recipient's stream to name its own shipment.
func (r run) parcel(n int, resources ...string) events.Event {
	data, err := protojson.Marshal(&shippingv1.ShipmentEvent{
		Type:       shippingv1.ShipmentEventType_SHIPMENT_EVENT_TYPE_UPDATED,
		Shipment:   &shippingv1.Shipment{Status: shippingv1.ShipmentStatus_SHIPMENT_STATUS_OUT_FOR_DELIVERY},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"status"}},
	})
	if err != nil {
		panic(err)
	}
	topic := "parcels/test/" + r.id
	return events.Event{
		ID: fmt.Sprintf("%s-parcel-%d", r.id, n), Type: typeParcelTracked, Source: "shipping", User: topic,
		Resource: topic, Time: time.Now().UTC(), Data: data, Audience: resources,
	}
}

func publish(t *testing.T, to publisher, evs ...events.Event) {
	t.Helper()
	for _, e := range evs {
		if err := to.Publish(context.WithoutCancel(t.Context()), e); err != nil {
			t.Fatalf("publish %s: %v", e.ID, err)
		}
	}
}

// shipments are the shipment names of the responses, in order.
func shipments(ms []*shippingv1.WatchShipmentsResponse) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.GetEvent().GetShipment().GetName()
	}
	return out
}

func (r run) want(from, to int) []string {
	var out []string
	for n := from; n <= to; n++ {
		out = append(out, fmt.Sprintf("users/%s/shipments/s%d", r.user, n))
	}
	return out
}

// TestResume is the stream test: a client receives 3 events, drops
// the stream, and reopens it with the last cursor while 5 more arrive (2
// before it reconnects, 3 while it does); it ends with all 8, in order,
// once, then live events. On one replica; reconnecting to the other of two
// replicas that share the bus; and with the events written through a
// service's outbox, its relay stopped while the client is away (the 2
// events written meanwhile wait in the outbox) and restarted twice while
// it reconnects.
func TestResume(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		replicas int
		relay    bool
	}{
		{"one replica", 1, false},
		{"two replicas", 2, false},
		{"relay restarted", 1, true},
		{"two replicas, relay restarted", 2, true},
	}
	for _, b := range backends(t) {
		for _, tt := range tests {
			t.Run(b.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				connect := b.bus(t, events.StreamConfig{}).connect
				r := newRun(t)
				consent := newFakeConsent(r.user)
				first := serve(t, connect(), consent)
				second := first
				if tt.replicas == 2 {
					second = serve(t, connect(), consent)
				}
				// Direct, each replica publishes some; relayed, the first
				// replica's process writes and relays everything.
				before, while := publisher(first.bus), publisher(second.bus)
				var relay *relayed
				if tt.relay {
					relay = newRelayed(t, first.bus.(*events.Bus))
					before, while = relay, relay
				}

				st, drop := first.watch(t, r.user, "")
				publish(t, before, r.shipment(1), r.shipment(2), r.shipment(3))
				got := recv(t, st, 3)
				drop()

				if relay != nil {
					relay.halt()
				}
				publish(t, while, r.shipment(4), r.shipment(5))
				var wg sync.WaitGroup
				wg.Go(func() {
					if relay != nil {
						relay.start()
					}
					publish(t, before, r.shipment(6))
					if relay != nil {
						relay.restart()
					}
					publish(t, before, r.shipment(7), r.shipment(8))
				})
				st, _ = second.watch(t, r.user, got[len(got)-1].GetCursor())
				got = append(got, recv(t, st, 5)...)
				wg.Wait()

				if names := shipments(got); !slices.Equal(names, r.want(1, 8)) {
					t.Fatalf("events = %v, want s1..s8 in order, once each", names)
				}
				cursors := map[string]bool{}
				for _, m := range got {
					if m.GetCursor() == "" || cursors[m.GetCursor()] {
						t.Fatalf("cursor %q empty or repeated", m.GetCursor())
					}
					cursors[m.GetCursor()] = true
				}
				// Nothing more was queued: the next event is a live one.
				publish(t, before, r.shipment(9))
				if next := shipments(recv(t, st, 1)); !slices.Equal(next, r.want(9, 9)) {
					t.Fatalf("after the 8: %v, want the live s9 (no duplicate)", next)
				}
			})
		}
	}
}

// TestWatchSendsOnlyTheUsersShipments: another user's events, and the
// user's events of other types, never reach the stream.
func TestWatchSendsOnlyTheUsersShipments(t *testing.T) {
	t.Parallel()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			r := newRun(t)
			other := "o" + r.id
			rep := serve(t, b.bus(t, events.StreamConfig{}).connect(), newFakeConsent(r.user, other))
			st, _ := rep.watch(t, r.user, "")
			publish(t, rep.bus, r.event(other, typeUpdated, 1), r.event(r.user, "consent.link.expiring", 2), r.shipment(3))
			if got := shipments(recv(t, st, 1)); !slices.Equal(got, r.want(3, 3)) {
				t.Fatalf("first event = %v, want the user's own shipment s3", got)
			}
		})
	}
}

// TestRevocationEndsTheStream: a consent change that leaves the consent in
// force keeps the stream; a revocation mid-stream ends it with
// PERMISSION_DENIED and the consent's reason, and nothing after it is sent.
func TestRevocationEndsTheStream(t *testing.T) {
	t.Parallel()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			r := newRun(t)
			consent := newFakeConsent(r.user)
			rep := serve(t, b.bus(t, events.StreamConfig{}).connect(), consent)
			st, _ := rep.watch(t, r.user, "")
			publish(t, rep.bus, r.shipment(1))
			recv(t, st, 1)

			before := consent.decisionCount()
			consent.touch(r.user)
			testkit.Eventually(t, func() bool { return consent.decisionCount() > before }, 5*time.Second)
			publish(t, rep.bus, r.shipment(2))
			if got := shipments(recv(t, st, 1)); !slices.Equal(got, r.want(2, 2)) {
				t.Fatalf("after a change that keeps the consent: %v, want s2", got)
			}

			consent.revoke(r.user)
			publish(t, rep.bus, r.shipment(3))
			m, err := st.Recv()
			if err == nil {
				t.Fatalf("after the revocation the stream sent %v", shipments([]*shippingv1.WatchShipmentsResponse{m}))
			}
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED)
			testkit.Eventually(t, func() bool { return consent.subscribers(r.user) == 0 }, 5*time.Second)
		})
	}
}

// TestConsentDecidedAgainOnceSubscribed: a revocation that lands between
// the kit's check and the stream's subscription to changes is not missed.
func TestConsentDecidedAgainOnceSubscribed(t *testing.T) {
	t.Parallel()
	r := newRun(t)
	consent := newFakeConsent(r.user)
	rep := serve(t, newMemBus(), consent)
	consent.setDenyAfter(consent.decisionCount() + 1) // the kit's decision allows, the next refuses
	err := rep.refused(t, r.user, "")
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED)
}

// TestCursorErrors: a cursor that is not one is INVALID_ARGUMENT
// (CURSOR_INVALID) on resume_cursor; one older than the events kept (a
// stream keeping events half a second) is FAILED_PRECONDITION
// (CURSOR_EXPIRED), which sends the client to List.
func TestCursorErrors(t *testing.T) {
	t.Parallel()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			const kept = 500 * time.Millisecond
			ts := b.bus(t, events.StreamConfig{MaxAge: kept, Duplicates: kept})
			r := newRun(t)
			rep := serve(t, ts.connect(), newFakeConsent(r.user))

			err := rep.refused(t, r.user, "not-a-cursor")
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID)
			testkit.RequireFieldViolation(t, err, "resume_cursor")

			st, drop := rep.watch(t, r.user, "")
			publish(t, rep.bus, r.shipment(1))
			old := recv(t, st, 1)[0].GetCursor()
			drop()
			publish(t, rep.bus, r.shipment(2), r.shipment(3))
			// s1 and s2 (the event after the cursor) are gone.
			testkit.Eventually(t, func() bool { return ts.firstSeq(t) > 2 }, 10*time.Second)
			err = rep.refused(t, r.user, old)
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CURSOR_EXPIRED)
		})
	}
}

// TestServeGuards covers what only a misbehaving bus or payload shows, on
// the in-memory bus: an event of another user is never sent, whatever the
// bus delivers; an event the handler cannot read is skipped, not fatal to
// every stream that reaches it; a subscription that ends ends the stream
// with INTERNAL, so the client resumes from its last cursor.
func TestServeGuards(t *testing.T) {
	t.Parallel()
	r := newRun(t)
	bus := newMemBus()
	rep := serve(t, bus, newFakeConsent(r.user))
	st, _ := rep.watch(t, r.user, "")

	bus.inject(events.Delivered{Event: r.event("o"+r.id, typeUpdated, 1), Cursor: "x"})
	bad := r.shipment(2)
	bad.Data = []byte("{not json")
	publish(t, bus, bad, r.shipment(3))
	if got := shipments(recv(t, st, 1)); !slices.Equal(got, r.want(3, 3)) {
		t.Fatalf("first event = %v, want s3 (another user's and an unreadable one skipped)", got)
	}

	bus.end()
	_, err := st.Recv()
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_INTERNAL)
}

// TestServeNeedsConsentForScopedMethods: a feed without a consent checker
// cannot serve a method whose access rule lists scopes; it refuses rather
// than stream unchecked.
func TestServeNeedsConsentForScopedMethods(t *testing.T) {
	t.Parallel()
	r := newRun(t)
	consent := newFakeConsent(r.user)
	srv := servertest.Start(t, server.Deps{Consent: consent, Recorder: consent},
		func(reg grpc.ServiceRegistrar) {
			shippingv1.RegisterShippingServiceServer(reg, &watchServer{feed: stream.Feed{Bus: newMemBus()}})
		}, servertest.Options{Name: "shipping"})
	rep := &replica{srv: srv, client: shippingv1.NewShippingServiceClient(srv.Conn)}
	testkit.RequireReason(t, rep.refused(t, r.user, ""), commonv1.ErrorReason_ERROR_REASON_INTERNAL)
}
