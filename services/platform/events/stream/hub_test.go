package stream_test

// These tests read the hub both ways a process does: in-process (Watch,
// as Serve does) for what needs many watchers or a watcher that never
// reads, and over gRPC through the real server kit for what a client
// sees. They run on an embedded NATS server and on the real one.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/events/stream"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// shipmentTypes are the types WatchShipments streams, which the shipping
// service's hub reads.
var shipmentTypes = []string{typeCreated, typeUpdated, typeDeleted}

// With parcels' audience events, a stream reads resumeTypes from a cursor
// (each user's own copy of a checkpoint) and liveTypes from now (the
// parcel's one event instead); the hub reads hubTypes, both.
var (
	resumeTypes = []string{typeCreated, typeUpdated, typeDeleted, typeTracked}
	liveTypes   = []string{typeCreated, typeUpdated, typeDeleted, typeParcelTracked}
	hubTypes    = []string{typeCreated, typeUpdated, typeDeleted, typeTracked, typeParcelTracked}
)

// newHub is a hub over bus, closed when the test ends.
func newHub(t testing.TB, bus stream.HubBus, o stream.HubOptions) *stream.Hub {
	t.Helper()
	if o.Types == nil {
		o.Types = shipmentTypes
	}
	h, err := stream.NewHub(bus, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// hubBus is a bus a hub can read that the tests can write.
type hubBus interface {
	stream.HubBus
	publisher
}

// serveHub starts one replica whose streams from now read hub.
func serveHub(t *testing.T, bus hubBus, consent *fakeConsent, hub *stream.Hub) *replica {
	t.Helper()
	return serveShipments(t, bus, consent, &watchServer{feed: stream.Feed{Bus: bus, Hub: hub, Consent: consent}})
}

// watch registers a watcher of user's shipments, taken off when the test
// ends.
func watch(t testing.TB, h *stream.Hub, user string) *stream.Watcher {
	t.Helper()
	return watchOf(t, h, user, shipmentTypes)
}

// watchOf registers a watcher of user's events of types, taken off when
// the test ends.
func watchOf(t testing.TB, h *stream.Hub, user string, types []string) *stream.Watcher {
	t.Helper()
	w, err := h.Watch(user, types)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

// take reads n events from w, failing if it ends or they take longer than
// within.
func take(t testing.TB, w *stream.Watcher, n int, within time.Duration) []events.Delivered {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	var got []events.Delivered
	for len(got) < n {
		select {
		case d, ok := <-w.Events():
			if !ok {
				t.Fatalf("watcher ended after %d of %d events: %v", len(got), n, w.Err())
			}
			got = append(got, *d)
		case <-deadline.C:
			t.Fatalf("watcher received %d of %d events in %s", len(got), n, within)
		}
	}
	return got
}

// nothingMore fails when w delivers an event within d.
func nothingMore(t testing.TB, w *stream.Watcher, d time.Duration) {
	t.Helper()
	select {
	case e, ok := <-w.Events():
		if ok {
			t.Fatalf("unexpected extra event %s of %s", e.ID, e.User)
		}
		t.Fatalf("watcher ended: %v", w.Err())
	case <-time.After(d):
	}
}

// drain reads w until the hub ends it, failing if that takes longer than
// within.
func drain(t testing.TB, w *stream.Watcher, within time.Duration) []events.Delivered {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	var got []events.Delivered
	for {
		select {
		case d, ok := <-w.Events():
			if !ok {
				return got
			}
			got = append(got, *d)
		case <-deadline.C:
			t.Fatalf("watcher not ended after %d events in %s", len(got), within)
		}
	}
}

func eventIDs(ds []events.Delivered) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

// consumers is how many consumers the server has on the test's stream.
func (s testStream) consumers(t *testing.T) int {
	t.Helper()
	nc, err := nats.Connect(s.url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(t.Context(), s.name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Consumers
}

// requireRetrySoon checks that err tells the client to come back within
// a second.
func requireRetrySoon(t testing.TB, err error) {
	t.Helper()
	ri := testkit.RetryInfo(err)
	if ri == nil {
		t.Fatalf("%v carries no RetryInfo", err)
	}
	if d := ri.GetRetryDelay().AsDuration(); d <= 0 || d > time.Second {
		t.Fatalf("RetryInfo says %s, want up to a second", d)
	}
}

// TestHubFansOut: many watchers of many users, two per user, each get
// exactly their user's events of the types they asked for, in order, and
// nothing else; the server holds one consumer for all of them.
func TestHubFansOut(t *testing.T) {
	t.Parallel()
	const users, perUser, publishers = 60, 5, 6
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ts := b.bus(t, events.StreamConfig{})
			bus := ts.connect()
			hub := newHub(t, bus, stream.HubOptions{})
			r := newRun(t)
			user := func(i int) string { return fmt.Sprintf("%s-%d", r.user, i) }
			watchers := make([][2]*stream.Watcher, users)
			for i := range users {
				watchers[i] = [2]*stream.Watcher{watch(t, hub, user(i)), watch(t, hub, user(i))}
			}
			if n := ts.consumers(t); n != 1 {
				t.Fatalf("the server holds %d consumers for %d watchers, want 1", n, 2*users)
			}

			// Each publisher writes its users' events in order, the users
			// interleaved; a type no watcher asked for goes in between.
			var wg sync.WaitGroup
			for p := range publishers {
				wg.Go(func() {
					for n := range perUser {
						for i := p; i < users; i += publishers {
							publish(t, bus, r.event(user(i), "consent.link.expiring", 100+n), r.event(user(i), typeUpdated, n))
						}
					}
				})
			}
			wg.Wait()
			for i, ws := range watchers {
				var want []string
				for n := range perUser {
					want = append(want, r.event(user(i), typeUpdated, n).ID)
				}
				for _, w := range ws {
					got := take(t, w, perUser, 20*time.Second)
					if ids := eventIDs(got); !slices.Equal(ids, want) {
						t.Fatalf("watcher of user %d got %v, want %v", i, ids, want)
					}
					for _, d := range got {
						if d.User != user(i) || d.Cursor == "" {
							t.Fatalf("watcher of user %d got an event of %q with cursor %q", i, d.User, d.Cursor)
						}
					}
				}
			}
			for _, ws := range watchers {
				for _, w := range ws {
					nothingMore(t, w, 10*time.Millisecond)
				}
			}
		})
	}
}

// TestHubWatchThenPublishIsNeverMissed: an event published once Watch has
// returned always arrives, whether the watch started the hub's
// subscription (a hub of its own each round) or joined it (one hub, many
// rounds, many at once).
func TestHubWatchThenPublishIsNeverMissed(t *testing.T) {
	t.Parallel()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			bus := b.bus(t, events.StreamConfig{}).connect()
			r := newRun(t)
			t.Run("first watcher", func(t *testing.T) {
				for i := range 100 {
					h, err := stream.NewHub(bus, stream.HubOptions{Types: shipmentTypes})
					if err != nil {
						t.Fatal(err)
					}
					w := watch(t, h, r.user)
					publish(t, bus, r.event(r.user, typeUpdated, i))
					take(t, w, 1, 10*time.Second)
					h.Close()
				}
			})
			t.Run("later watchers", func(t *testing.T) {
				hub := newHub(t, bus, stream.HubOptions{})
				watch(t, hub, "someone") // the subscription is on
				var wg sync.WaitGroup
				for g := range 8 {
					wg.Go(func() {
						for i := range 50 {
							u := fmt.Sprintf("%s-%d-%d", r.user, g, i)
							w := watch(t, hub, u)
							publish(t, bus, r.event(u, typeCreated, i))
							if d := take(t, w, 1, 10*time.Second)[0]; d.User != u {
								t.Errorf("watcher of %s got an event of %s", u, d.User)
							}
							w.Close()
						}
					})
				}
				wg.Wait()
			})
		})
	}
}

// TestHubEndsASlowWatcherAlone: a watcher that stops reading is ended with
// UNAVAILABLE (STREAM_BEHIND) and a RetryInfo once its buffer is full,
// after what its buffer holds; the user's other watcher and other users'
// watchers get every event meanwhile, and the hub never waits.
func TestHubEndsASlowWatcherAlone(t *testing.T) {
	t.Parallel()
	const buffer, count = 4, 20
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			bus := b.bus(t, events.StreamConfig{}).connect()
			hub := newHub(t, bus, stream.HubOptions{Buffer: buffer})
			r := newRun(t)
			other := "o" + r.id
			slow, same, others := watch(t, hub, r.user), watch(t, hub, r.user), watch(t, hub, other)

			// The fast watchers read as the events come: each must have
			// every event within a second of the last one's publication.
			var wg sync.WaitGroup
			var sameGot, othersGot []events.Delivered
			published := make(chan struct{})
			read := func(w *stream.Watcher, into *[]events.Delivered) {
				*into = take(t, w, count, 20*time.Second)
				<-published
			}
			wg.Go(func() { read(same, &sameGot) })
			wg.Go(func() { read(others, &othersGot) })
			for n := range count {
				publish(t, bus, r.event(r.user, typeUpdated, n), r.event(other, typeUpdated, n))
			}
			close(published)
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("the fast watchers were held back")
			}
			if len(sameGot) != count || len(othersGot) != count {
				t.Fatalf("fast watchers got %d and %d events, want %d", len(sameGot), len(othersGot), count)
			}

			var kept []string
			for d := range slow.Events() {
				kept = append(kept, d.ID)
			}
			var want []string
			for n := range buffer {
				want = append(want, r.event(r.user, typeUpdated, n).ID)
			}
			if !slices.Equal(kept, want) {
				t.Fatalf("the slow watcher kept %v, want its first %d events", kept, buffer)
			}
			err := slow.Err()
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_STREAM_BEHIND)
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("code %s, want UNAVAILABLE", status.Code(err))
			}
			requireRetrySoon(t, err)
			slow.Close() // after the hub ended it: harmless
			nothingMore(t, same, 10*time.Millisecond)
		})
	}
}

// TestHubAudience: an audience event reaches every watcher of each user
// it lists that asked for its type, as that user's own event (the user,
// the user's resource, no word of the other recipients or of the parcel's
// reference), in stream order with the users' own events, and reaches
// nobody else.
func TestHubAudience(t *testing.T) {
	t.Parallel()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			bus := b.bus(t, events.StreamConfig{}).connect()
			hub := newHub(t, bus, stream.HubOptions{Types: hubTypes})
			r := newRun(t)
			alice := watchOf(t, hub, "alice", liveTypes)
			bob := []*stream.Watcher{watchOf(t, hub, "bob", liveTypes), watchOf(t, hub, "bob", liveTypes)}
			carol := watchOf(t, hub, "carol", liveTypes)
			dave := watchOf(t, hub, "dave", shipmentTypes) // listed, but not for the parcel's type

			parcel := r.parcel(1, "users/alice/shipments/a1", "users/bob/shipments/b1", "users/dave/shipments/d1")
			publish(t, bus, parcel)
			// Then each user's own event: what each watcher gets next, or
			// first when the parcel's is not for it.
			own := map[string]events.Event{}
			for _, u := range []string{"alice", "bob", "carol", "dave"} {
				own[u] = r.event(u, typeUpdated, 2)
				publish(t, bus, own[u])
			}

			recipient := func(w *stream.Watcher, user, resource string) {
				t.Helper()
				got := take(t, w, 2, 20*time.Second)
				d := got[0]
				if d.ID != parcel.ID || d.Type != parcel.Type || compact(t, d.Data) != compact(t, parcel.Data) || d.Cursor == "" {
					t.Errorf("%s's watcher got %s (%s, %s, cursor %q), want the parcel's %s (%s) with a cursor", user, d.ID, d.Type, d.Data, d.Cursor, parcel.ID, parcel.Data)
				}
				if d.User != user || d.Resource != resource {
					t.Errorf("%s's watcher got the parcel's event as %s's, about %s; want %s's, about %s", user, d.User, d.Resource, user, resource)
				}
				if d.Audience != nil || d.UserRef != "" {
					t.Errorf("%s's watcher got the parcel's event with audience %q and reference %q, want neither", user, d.Audience, d.UserRef)
				}
				if got[1].ID != own[user].ID {
					t.Errorf("%s's watcher got %s after the parcel's, want its own %s", user, got[1].ID, own[user].ID)
				}
			}
			recipient(alice, "alice", "users/alice/shipments/a1")
			for _, w := range bob {
				recipient(w, "bob", "users/bob/shipments/b1")
			}
			for user, w := range map[string]*stream.Watcher{"carol": carol, "dave": dave} {
				if d := take(t, w, 1, 20*time.Second)[0]; d.ID != own[user].ID {
					t.Errorf("%s's watcher got %s of %s first, want its own %s", user, d.ID, d.User, own[user].ID)
				}
			}
			for _, w := range []*stream.Watcher{alice, bob[0], bob[1], carol, dave} {
				nothingMore(t, w, 10*time.Millisecond)
			}
		})
	}
}

// TestHubAudienceEndsASlowRecipientAlone: a recipient's watcher whose
// buffer the audience events fill is ended with UNAVAILABLE
// (STREAM_BEHIND) and a RetryInfo, after what its buffer holds; the same
// user's other watcher and the other recipients get every event, before
// and after.
func TestHubAudienceEndsASlowRecipientAlone(t *testing.T) {
	t.Parallel()
	const buffer = 2
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			bus := b.bus(t, events.StreamConfig{}).connect()
			hub := newHub(t, bus, stream.HubOptions{Types: hubTypes, Buffer: buffer})
			r := newRun(t)
			slow := watchOf(t, hub, "alice", liveTypes)
			fast := map[string]*stream.Watcher{"alice": watchOf(t, hub, "alice", liveTypes), "bob": watchOf(t, hub, "bob", liveTypes)}

			// The fast watchers read each event before the next is
			// published, so only the slow one's buffer fills: the event
			// after buffer of them finds no room.
			var sent []string
			for n := range buffer + 2 {
				p := r.parcel(n, "users/alice/shipments/a1", "users/bob/shipments/b1")
				publish(t, bus, p)
				sent = append(sent, p.ID)
				for user, w := range fast {
					if d := take(t, w, 1, 20*time.Second)[0]; d.ID != p.ID || d.User != user {
						t.Fatalf("%s's fast watcher got %s as %s's, want %s", user, d.ID, d.User, p.ID)
					}
				}
			}

			kept := drain(t, slow, 10*time.Second)
			if ids := eventIDs(kept); !slices.Equal(ids, sent[:buffer]) {
				t.Fatalf("the slow watcher kept %v, want its first %d events %v", ids, buffer, sent[:buffer])
			}
			for _, d := range kept {
				if d.User != "alice" || d.Resource != "users/alice/shipments/a1" {
					t.Fatalf("the slow watcher kept %s as %s's, about %s", d.ID, d.User, d.Resource)
				}
			}
			err := slow.Err()
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_STREAM_BEHIND)
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("code %s, want UNAVAILABLE", status.Code(err))
			}
			requireRetrySoon(t, err)
			if n := hub.Watchers(); n != len(fast) {
				t.Fatalf("%d watchers on the hub, want the %d fast ones", n, len(fast))
			}
			for _, w := range fast {
				nothingMore(t, w, 10*time.Millisecond)
			}
		})
	}
}

// TestServeLiveTypes: a stream from now on a replica whose hub reads the
// method's LiveTypes reads those instead of its Types: a carrier's
// checkpoint reaches it once, as the parcel's audience event, naming the
// user's own shipment (update_mask status), and not again as the user's
// own copy. A stream from a cursor reads Types from the bus: the user's
// own copy, never the parcel's event. Without a hub, or with one that
// does not read LiveTypes, every stream reads Types from the bus.
func TestServeLiveTypes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// hub is what the replica's hub reads; nil: the replica has none.
		hub []string
		// parcel: a live stream hears the checkpoint as the parcel's event.
		parcel bool
	}{
		{"a hub reading the live types", hubTypes, true},
		{"no hub", nil, false},
		{"a hub not reading the parcel's type", resumeTypes, false},
	}
	for _, b := range backends(t) {
		for _, tt := range tests {
			t.Run(b.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				bus := b.bus(t, events.StreamConfig{}).connect()
				r := newRun(t)
				other := "o" + r.id
				consent := newFakeConsent(r.user, other)
				feed := stream.Feed{Bus: bus, Consent: consent}
				if tt.hub != nil {
					feed.Hub = newHub(t, bus, stream.HubOptions{Types: tt.hub})
				}
				rep := serveShipments(t, bus, consent, &watchServer{feed: feed, types: resumeTypes, live: liveTypes})

				live, _ := rep.watch(t, r.user, "")
				theirs, _ := rep.watch(t, other, "")
				mine, their := fmt.Sprintf("users/%s/shipments/s2", r.user), fmt.Sprintf("users/%s/shipments/s2", other)
				publish(t, bus,
					r.shipment(1),
					r.parcel(2, mine, their),
					r.event(r.user, typeTracked, 2), r.event(other, typeTracked, 2), // each user's copy, moments later
					r.shipment(3))

				checkpoint := "[]" // the user's own copy: every field
				if tt.parcel {
					checkpoint = "[status]" // the parcel's: the tracking fields
				}
				got := recv(t, live, 3)
				if want := []string{r.want(1, 1)[0] + " []", mine + " " + checkpoint, r.want(3, 3)[0] + " []"}; !slices.Equal(described(got), want) {
					t.Fatalf("the live stream sent %v, want %v", described(got), want)
				}
				if got, want := described(recv(t, theirs, 1)), []string{their + " " + checkpoint}; !slices.Equal(got, want) {
					t.Fatalf("the other recipient's live stream sent %v, want %v", got, want)
				}

				// From the cursor of s1: the user's own copy of the
				// checkpoint, then s3.
				st, _ := rep.watch(t, r.user, got[0].GetCursor())
				if resumed, want := described(recv(t, st, 2)), []string{mine + " []", r.want(3, 3)[0] + " []"}; !slices.Equal(resumed, want) {
					t.Fatalf("resumed after s1 with %v, want %v", resumed, want)
				}
				// From the checkpoint's cursor: what follows it in the bus.
				want := []string{r.want(3, 3)[0] + " []"}
				if tt.parcel {
					want = append([]string{mine + " []"}, want...)
				}
				st, _ = rep.watch(t, r.user, got[1].GetCursor())
				if resumed := described(recv(t, st, len(want))); !slices.Equal(resumed, want) {
					t.Fatalf("resumed after the checkpoint with %v, want %v", resumed, want)
				}
			})
		}
	}
}

// compact is JSON without its spaces (which protojson varies).
func compact(t testing.TB, b []byte) string {
	t.Helper()
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// described are the responses' shipment names, each with the fields its
// event sets ([] for every field).
func described(ms []*shippingv1.WatchShipmentsResponse) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = fmt.Sprintf("%s %v", m.GetEvent().GetShipment().GetName(), m.GetEvent().GetUpdateMask().GetPaths())
	}
	return out
}

// blockingStream is a server stream whose client does not read: Send
// waits until release closes.
type blockingStream struct {
	grpc.ServerStream
	ctx     context.Context
	release chan struct{}
	sent    chan *shippingv1.WatchShipmentsResponse
}

func (s *blockingStream) Context() context.Context     { return s.ctx }
func (s *blockingStream) SendHeader(metadata.MD) error { return nil }
func (s *blockingStream) SetHeader(metadata.MD) error  { return nil }
func (s *blockingStream) SetTrailer(metadata.MD)       {}
func (s *blockingStream) SendMsg(any) error            { return nil }
func (s *blockingStream) RecvMsg(any) error            { return nil }
func (s *blockingStream) Send(m *shippingv1.WatchShipmentsResponse) error {
	select {
	case <-s.release:
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
	s.sent <- m
	return nil
}

// TestServeEndsASlowStreamToBeResumed: Serve on the hub, for a client that
// stops reading: the stream sends what its watcher kept, ends with
// UNAVAILABLE (STREAM_BEHIND), and a resume from its last cursor gets
// every later event, once and in order.
func TestServeEndsASlowStreamToBeResumed(t *testing.T) {
	t.Parallel()
	const buffer, total = 2, 10
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			bus := b.bus(t, events.StreamConfig{}).connect()
			hub := newHub(t, bus, stream.HubOptions{Buffer: buffer})
			r := newRun(t)
			feed := stream.Feed{Bus: bus, Hub: hub}
			ctx := access.WithGrant(t.Context(), access.Grant{
				Method: shippingv1.ShippingService_WatchShipments_FullMethodName, Principal: auth.Principal{User: r.user, Client: servertest.Client},
				User: r.user, Purpose: commonv1.Purpose_PURPOSE_ORDER_TRACKING,
			})
			srv := &blockingStream{ctx: ctx, release: make(chan struct{}), sent: make(chan *shippingv1.WatchShipmentsResponse, total)}
			ended := make(chan error, 1)
			go func() { ended <- (&watchServer{feed: feed}).WatchShipments(&shippingv1.WatchShipmentsRequest{}, srv) }()
			testkit.Eventually(t, func() bool { return hub.Watchers() == 1 }, 10*time.Second)

			// One event waits in Send (or not yet), buffer more in the
			// watcher, and one after them finds no room.
			for n := range total {
				publish(t, bus, r.shipment(n))
			}
			testkit.Eventually(t, func() bool { return hub.Watchers() == 0 }, 10*time.Second)
			close(srv.release)
			var err error
			select {
			case err = <-ended:
			case <-time.After(10 * time.Second):
				t.Fatal("the stream did not end")
			}
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_STREAM_BEHIND)
			requireRetrySoon(t, err)
			close(srv.sent)
			var got []*shippingv1.WatchShipmentsResponse
			for m := range srv.sent {
				got = append(got, m)
			}
			sent := len(got)
			if names := shipments(got); sent < buffer || sent > buffer+1 || !slices.Equal(names, r.want(0, sent-1)) {
				t.Fatalf("sent %v before ending, want s0 and on, %d or %d events", names, buffer, buffer+1)
			}

			rep := serveHub(t, bus, newFakeConsent(r.user), hub)
			st, _ := rep.watch(t, r.user, got[sent-1].GetCursor())
			if names := shipments(recv(t, st, total-sent)); !slices.Equal(names, r.want(sent, total-1)) {
				t.Fatalf("resumed with %v, want s%d..s%d", names, sent, total-1)
			}
		})
	}
}

// TestHubStreams is a client's view of streams the hub serves: only its
// user's shipments; a cursor from the hub resumes on another replica,
// whose hub serves the live events after; a revocation ends the stream;
// the server's stop ends it with SERVER_STOPPING.
func TestHubStreams(t *testing.T) {
	t.Parallel()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ts := b.bus(t, events.StreamConfig{})
			r := newRun(t)
			other := "o" + r.id
			consent := newFakeConsent(r.user, other)
			first, second := ts.connect(), ts.connect()
			one := serveHub(t, first, consent, newHub(t, first, stream.HubOptions{}))
			two := serveHub(t, second, consent, newHub(t, second, stream.HubOptions{}))

			st, drop := one.watch(t, r.user, "")
			publish(t, first, r.event(other, typeUpdated, 100), r.event(r.user, "consent.link.expiring", 101), r.shipment(1), r.shipment(2))
			got := recv(t, st, 2)
			if names := shipments(got); !slices.Equal(names, r.want(1, 2)) {
				t.Fatalf("events = %v, want the user's s1, s2 only", names)
			}
			drop()
			publish(t, second, r.shipment(3), r.shipment(4))
			st, _ = two.watch(t, r.user, got[1].GetCursor())
			if names := shipments(recv(t, st, 2)); !slices.Equal(names, r.want(3, 4)) {
				t.Fatalf("resumed on the other replica with %v, want s3, s4", names)
			}
			live, _ := two.watch(t, r.user, "")
			publish(t, first, r.shipment(5))
			for _, s := range []grpc.ServerStreamingClient[shippingv1.WatchShipmentsResponse]{st, live} {
				if names := shipments(recv(t, s, 1)); !slices.Equal(names, r.want(5, 5)) {
					t.Fatalf("live: %v, want s5", names)
				}
			}

			consent.revoke(r.user)
			publish(t, first, r.shipment(6))
			for _, s := range []grpc.ServerStreamingClient[shippingv1.WatchShipmentsResponse]{st, live} {
				m, err := s.Recv()
				if err == nil {
					t.Fatalf("after the revocation the stream sent %v", m)
				}
				testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED)
			}

			stopping, _ := one.watch(t, other, "")
			one.srv.Stop()
			_, err := stopping.Recv()
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SERVER_STOPPING)
			if err := <-one.srv.Done; err != nil {
				t.Fatalf("Serve returned %v", err)
			}
			one.srv.Done <- nil // for the cleanup
		})
	}
}

// cuttableBus is a real bus whose subscriptions the test can end, as a
// lost server ends them (the real client reconnects by itself, too well
// to be made to fail on cue).
type cuttableBus struct {
	*events.Bus
	mu   sync.Mutex
	subs int
	cuts []context.CancelFunc
}

func (b *cuttableBus) Subscribe(ctx context.Context, f events.Filter, cursor string) (<-chan events.Delivered, error) {
	ctx, cut := context.WithCancel(ctx)
	ch, err := b.Bus.Subscribe(ctx, f, cursor)
	if err != nil {
		cut()
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs++
	b.cuts = append(b.cuts, cut)
	return ch, nil
}

// cut ends every subscription made so far.
func (b *cuttableBus) cut() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.cuts {
		c()
	}
	b.cuts = nil
}

func (b *cuttableBus) subscriptions() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.subs
}

// TestHubLossEndsItsStreams: when the hub's subscription ends, every
// stream on it ends with UNAVAILABLE (STREAM_BEHIND) and a RetryInfo;
// each resumes from its last cursor with what it missed, and a new
// stream subscribes the hub again.
func TestHubLossEndsItsStreams(t *testing.T) {
	t.Parallel()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			bus := &cuttableBus{Bus: b.bus(t, events.StreamConfig{}).connect()}
			r := newRun(t)
			other := "o" + r.id
			rep := serveHub(t, bus, newFakeConsent(r.user, other), newHub(t, bus, stream.HubOptions{}))
			mine, _ := rep.watch(t, r.user, "")
			theirs, _ := rep.watch(t, other, "")
			publish(t, bus, r.shipment(1), r.event(other, typeUpdated, 1))
			last := map[string]string{}
			for user, st := range map[string]grpc.ServerStreamingClient[shippingv1.WatchShipmentsResponse]{r.user: mine, other: theirs} {
				last[user] = recv(t, st, 1)[0].GetCursor()
			}

			bus.cut()
			for _, st := range []grpc.ServerStreamingClient[shippingv1.WatchShipmentsResponse]{mine, theirs} {
				_, err := st.Recv()
				testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_STREAM_BEHIND)
				requireRetrySoon(t, err)
			}
			publish(t, bus, r.shipment(2))
			st, _ := rep.watch(t, r.user, last[r.user])
			if names := shipments(recv(t, st, 1)); !slices.Equal(names, r.want(2, 2)) {
				t.Fatalf("resumed with %v, want s2", names)
			}
			fresh, _ := rep.watch(t, other, "")
			publish(t, bus, r.event(other, typeUpdated, 3))
			if got := recv(t, fresh, 1)[0].GetEvent().GetShipment().GetName(); got != fmt.Sprintf("users/%s/shipments/s3", other) {
				t.Fatalf("a new stream got %s, want the live s3", got)
			}
			// The hub's first and second subscriptions, and the resume's.
			if n := bus.subscriptions(); n != 3 {
				t.Fatalf("%d subscriptions, want 3", n)
			}
		})
	}
}

// TestHubClose: Close ends the watchers still on the hub with
// SERVER_STOPPING, and Watch fails after it.
func TestHubClose(t *testing.T) {
	t.Parallel()
	bus := backends(t)[0].bus(t, events.StreamConfig{}).connect()
	hub, err := stream.NewHub(bus, stream.HubOptions{Types: shipmentTypes})
	if err != nil {
		t.Fatal(err)
	}
	w := watch(t, hub, "alice")
	hub.Close()
	if _, ok := <-w.Events(); ok {
		t.Fatal("an event after Close")
	}
	testkit.RequireReason(t, w.Err(), commonv1.ErrorReason_ERROR_REASON_SERVER_STOPPING)
	if _, err := hub.Watch("alice", shipmentTypes); err == nil {
		t.Fatal("Watch after Close succeeded")
	}
	hub.Close() // twice: harmless
}

// TestHubTypes: the hub serves the streams of the types it reads; a
// stream of another type, or of every type, is refused by Watch (Serve
// subscribes for it); a hub of no types serves every stream; types that
// are not types are refused at the start.
func TestHubTypes(t *testing.T) {
	t.Parallel()
	bus := backends(t)[0].bus(t, events.StreamConfig{}).connect()
	tests := []struct {
		name   string
		hub    []string
		stream []string
		served bool
	}{
		{"the same types", shipmentTypes, shipmentTypes, true},
		{"some of them", shipmentTypes, []string{typeUpdated}, true},
		{"a type of a pattern", []string{"shipping.>"}, []string{typeUpdated}, true},
		{"the same pattern", []string{"shipping.>"}, []string{"shipping.>"}, true},
		{"another type", shipmentTypes, []string{typeUpdated, "consent.link.revoked"}, false},
		{"every type", shipmentTypes, nil, false},
		{"a wider pattern", []string{"shipping.*"}, []string{"shipping.>"}, false},
		{"a hub of every type", nil, []string{"consent.link.revoked"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := stream.NewHub(bus, stream.HubOptions{Types: tt.hub})
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			w, err := h.Watch("alice", tt.stream)
			if (err == nil) != tt.served {
				t.Fatalf("Watch(%q) on a hub of %q: %v, want served: %v", tt.stream, tt.hub, err, tt.served)
			}
			if w != nil {
				w.Close()
			}
		})
	}
	if _, err := stream.NewHub(bus, stream.HubOptions{Types: []string{"not a type"}}); err == nil {
		t.Fatal("a hub of a malformed type started")
	}
}
