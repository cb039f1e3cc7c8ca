package events_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/bankbridge/bankbridge/services/platform/events"
)

func event(user, typ string, n int) events.Event {
	return events.Event{
		ID:       fmt.Sprintf("%s-%s-%d", user, typ, n),
		Type:     typ,
		Source:   "test",
		User:     user,
		Client:   "client-1",
		Resource: fmt.Sprintf("users/%s/things/t%d", user, n),
		Data:     fmt.Appendf(nil, `{"n":%d}`, n),
	}
}

func publish(t testing.TB, b *events.Bus, es ...events.Event) {
	t.Helper()
	for _, e := range es {
		if err := b.Publish(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBus(t *testing.T) {
	eachNATS(t, func(t *testing.T, url string) {
		t.Run("a subscription gets what its filter selects, in order", func(t *testing.T) {
			b := connect(t, url, uniqueStream())
			ctx := t.Context()
			alice, err := b.Subscribe(ctx, events.Filter{User: "alice"}, "")
			if err != nil {
				t.Fatal(err)
			}
			revoked, err := b.Subscribe(ctx, events.Filter{Types: []string{"consent.link.revoked"}}, "")
			if err != nil {
				t.Fatal(err)
			}
			aliceRevoked, err := b.Subscribe(ctx, events.Filter{User: "alice", Types: []string{"consent.link.revoked", "shipping.>"}}, "")
			if err != nil {
				t.Fatal(err)
			}
			all, err := b.Subscribe(ctx, events.Filter{}, "")
			if err != nil {
				t.Fatal(err)
			}
			publish(t, b,
				event("alice", "consent.link.expiring", 1),
				event("bob", "consent.link.revoked", 2),
				event("alice", "consent.link.revoked", 3),
				event("alice", "shipping.shipment.updated", 4),
			)
			tests := []struct {
				name string
				ch   <-chan events.Delivered
				want []string
			}{
				{"user", alice, []string{"alice-consent.link.expiring-1", "alice-consent.link.revoked-3", "alice-shipping.shipment.updated-4"}},
				{"type", revoked, []string{"bob-consent.link.revoked-2", "alice-consent.link.revoked-3"}},
				{"user and types", aliceRevoked, []string{"alice-consent.link.revoked-3", "alice-shipping.shipment.updated-4"}},
				{"everything", all, []string{"alice-consent.link.expiring-1", "bob-consent.link.revoked-2", "alice-consent.link.revoked-3", "alice-shipping.shipment.updated-4"}},
			}
			for _, tt := range tests {
				got := receive(t, tt.ch, len(tt.want))
				if !slices.Equal(ids(got), tt.want) {
					t.Errorf("%s: got %v, want %v", tt.name, ids(got), tt.want)
				}
				quiet(t, tt.ch, 100*time.Millisecond)
			}
		})

		t.Run("the event arrives whole, with the user's reference", func(t *testing.T) {
			b := connect(t, url, uniqueStream())
			ch, err := b.Subscribe(t.Context(), events.Filter{User: "carol"}, "")
			if err != nil {
				t.Fatal(err)
			}
			e := event("carol", "receipts.receipt.created", 7)
			e.Time = time.Date(2031, 1, 2, 3, 4, 5, 6000, time.UTC)
			publish(t, b, e)
			got := receive(t, ch, 1)[0]
			if got.ID != e.ID || got.Type != e.Type || got.Source != e.Source || got.User != e.User ||
				got.Client != e.Client || got.Resource != e.Resource || !got.Time.Equal(e.Time) || string(got.Data) != string(e.Data) {
				t.Errorf("delivered %+v, want %+v", got.Event, e)
			}
			if got.UserRef != b.Refs().User("carol") {
				t.Errorf("UserRef = %q, want %q", got.UserRef, b.Refs().User("carol"))
			}
			if got.Cursor == "" {
				t.Error("no cursor")
			}
		})

		t.Run("subjects and headers carry no personal data", func(t *testing.T) {
			sc := uniqueStream()
			b := connect(t, url, sc)
			nc, err := nats.Connect(url)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			raw, err := nc.SubscribeSync(sc.SubjectPrefix + ".>")
			if err != nil {
				t.Fatal(err)
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			e := event("dave@example.com", "consent.link.revoked", 1)
			e.ID = "01JD7Z6Q4V8M3K2N1P0R9S8T7W"
			e.Resource = "users/dave@example.com/links/secret-link"
			publish(t, b, e)
			m, err := raw.NextMsg(10 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if want := sc.SubjectPrefix + "." + b.Refs().User(e.User) + ".consent.link.revoked"; m.Subject != want {
				t.Errorf("subject %q, want %q", m.Subject, want)
			}
			onWire := m.Subject
			for k, vs := range m.Header {
				onWire += "\n" + k + ": " + strings.Join(vs, ",")
			}
			for _, personal := range []string{"dave", "example.com", "secret-link", "users/"} {
				if strings.Contains(onWire, personal) {
					t.Errorf("%q on the wire outside the payload:\n%s", personal, onWire)
				}
			}
			for k, want := range map[string]string{"Nats-Msg-Id": e.ID, "Bankbridge-Event-Type": e.Type,
				"Bankbridge-Event-Source": "test", "Bankbridge-Event-Client": "client-1"} {
				if got := m.Header.Get(k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
		})

		t.Run("an audience event's recipients ride in its payload only, and other payloads are as before", func(t *testing.T) {
			sc := uniqueStream()
			b := connect(t, url, sc)
			nc, err := nats.Connect(url)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			raw, err := nc.SubscribeSync(sc.SubjectPrefix + ".>")
			if err != nil {
				t.Fatal(err)
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			ch, err := b.Subscribe(t.Context(), events.Filter{}, "")
			if err != nil {
				t.Fatal(err)
			}
			parcel := audienceEvent("01JD7Z6Q4V8M3K2N1P0R9S8T7X", []string{"users/alice/shipments/a1", "users/bob@example.com/shipments/b1"})
			plain := event("carol", "shipping.shipment.updated", 1)
			publish(t, b, parcel, plain)

			m, err := raw.NextMsg(10 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if want := sc.SubjectPrefix + "." + b.Refs().User(parcel.User) + "." + parcel.Type; m.Subject != want {
				t.Errorf("subject %q, want %q (the parcel's reference)", m.Subject, want)
			}
			onWire := m.Subject
			for k, vs := range m.Header {
				onWire += "\n" + k + ": " + strings.Join(vs, ",")
			}
			for _, personal := range []string{"alice", "bob", "example.com", "users/"} {
				if strings.Contains(onWire, personal) {
					t.Errorf("%q on the wire outside the payload:\n%s", personal, onWire)
				}
			}
			var payload struct {
				Audience []string `json:"audience"`
			}
			if err := json.Unmarshal(m.Data, &payload); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(payload.Audience, parcel.Audience) {
				t.Errorf("payload audience %q, want %q", payload.Audience, parcel.Audience)
			}
			m, err = raw.NextMsg(10 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(m.Data, &fields); err != nil {
				t.Fatal(err)
			}
			if a, ok := fields["audience"]; ok {
				t.Errorf("a per-user event's payload has an audience: %s", a)
			}

			got := receive(t, ch, 2)
			if got[0].ID != parcel.ID || got[0].User != parcel.User || got[0].Client != "" || !slices.Equal(got[0].Audience, parcel.Audience) {
				t.Errorf("delivered %+v, want %+v", got[0].Event, parcel)
			}
			if got[1].ID != plain.ID || got[1].Audience != nil {
				t.Errorf("delivered %s with audience %q, want %s with none", got[1].ID, got[1].Audience, plain.ID)
			}
		})

		t.Run("a republished id is dropped", func(t *testing.T) {
			b := connect(t, url, uniqueStream())
			e := event("erin", "consent.link.revoked", 1)
			publish(t, b, e, e, e)
			info, err := events.StreamInfo(t.Context(), b)
			if err != nil {
				t.Fatal(err)
			}
			if info.State.Msgs != 1 {
				t.Errorf("stream holds %d messages, want 1", info.State.Msgs)
			}
		})

		t.Run("a cursor resumes with exactly what was missed, in order, then live", func(t *testing.T) {
			b := connect(t, url, uniqueStream())
			first, stop := context.WithCancel(t.Context())
			ch, err := b.Subscribe(first, events.Filter{User: "frank"}, "")
			if err != nil {
				t.Fatal(err)
			}
			for n := range 3 {
				publish(t, b, event("frank", "shipping.shipment.updated", n))
				publish(t, b, event("grace", "shipping.shipment.updated", n)) // not frank's
			}
			got := receive(t, ch, 3)
			stop()
			for n := 3; n < 8; n++ {
				publish(t, b, event("frank", "shipping.shipment.updated", n))
			}
			ch, err = b.Subscribe(t.Context(), events.Filter{User: "frank"}, got[2].Cursor)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, receive(t, ch, 5)...)
			publish(t, b, event("frank", "shipping.shipment.updated", 8))
			got = append(got, receive(t, ch, 1)...)
			var want []string
			for n := range 9 {
				want = append(want, fmt.Sprintf("frank-shipping.shipment.updated-%d", n))
			}
			if !slices.Equal(ids(got), want) {
				t.Errorf("got %v, want %v", ids(got), want)
			}
			quiet(t, ch, 100*time.Millisecond)
		})

		t.Run("cursors that are not, or no longer, valid", func(t *testing.T) {
			sc := uniqueStream()
			b := connect(t, url, sc)
			ctx := t.Context()
			ch, err := b.Subscribe(ctx, events.Filter{}, "")
			if err != nil {
				t.Fatal(err)
			}
			publish(t, b, event("heidi", "a.b", 1), event("heidi", "a.b", 2))
			got := receive(t, ch, 2)
			valid := got[0].Cursor
			if _, err := b.Subscribe(ctx, events.Filter{}, valid); err != nil {
				t.Fatalf("a fresh cursor: %v", err)
			}
			enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
			raw, _ := base64.RawURLEncoding.DecodeString(valid)
			parts := strings.Split(string(raw), ":")
			invalid := map[string]string{
				"not base64":       "!!!",
				"not a cursor":     enc("hello"),
				"unknown version":  enc("2:" + strings.Join(parts[1:], ":")),
				"another stream":   enc(strings.Join([]string{parts[0], "OTHER", parts[2], parts[3]}, ":")),
				"sequence zero":    enc(strings.Join([]string{parts[0], parts[1], parts[2], "0"}, ":")),
				"past the last":    enc(strings.Join([]string{parts[0], parts[1], parts[2], "99"}, ":")),
				"sequence garbage": enc(strings.Join([]string{parts[0], parts[1], parts[2], "x"}, ":")),
			}
			for name, c := range invalid {
				if _, err := b.Subscribe(ctx, events.Filter{}, c); !errors.Is(err, events.ErrCursorInvalid) {
					t.Errorf("%s: Subscribe = %v, want ErrCursorInvalid", name, err)
				}
			}
			// Events gone (as retention would drop them): the first cursor
			// is expired; the last one, with nothing after it gone, is not.
			st, err := events.JetStream(b).Stream(ctx, sc.Name)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Purge(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Subscribe(ctx, events.Filter{}, valid); !errors.Is(err, events.ErrCursorExpired) {
				t.Errorf("cursor before the first kept event: %v, want ErrCursorExpired", err)
			}
			if _, err := b.Subscribe(ctx, events.Filter{}, got[1].Cursor); err != nil {
				t.Errorf("cursor at the last event after a purge: %v", err)
			}
			// The stream created anew: old cursors are expired, even where
			// the sequence exists again.
			if err := events.JetStream(b).DeleteStream(ctx, sc.Name); err != nil {
				t.Fatal(err)
			}
			b2 := connect(t, url, sc)
			publish(t, b2, event("heidi", "a.b", 3), event("heidi", "a.b", 4))
			if _, err := b2.Subscribe(ctx, events.Filter{}, got[0].Cursor); !errors.Is(err, events.ErrCursorExpired) {
				t.Errorf("cursor of a deleted stream: %v, want ErrCursorExpired", err)
			}
		})

		t.Run("a subscription from now that restarts before its first event misses nothing", func(t *testing.T) {
			// The ordered consumer is recreated when it is lost (here: deleted
			// on the server; also a reconnect, missed heartbeats). One that
			// had delivered nothing yet must resume where it started, not
			// at the new end, or what was stored meanwhile is lost.
			b := connect(t, url, uniqueStream())
			publish(t, b, event("kim", "a.b", 1)) // before: not delivered
			for round := range 5 {
				ctx, cancel := context.WithCancel(t.Context())
				ch, err := b.Subscribe(ctx, events.Filter{}, "")
				if err != nil {
					t.Fatal(err)
				}
				st, err := events.JetStream(b).Stream(t.Context(), b.Stream())
				if err != nil {
					t.Fatal(err)
				}
				names := st.ConsumerNames(t.Context())
				for name := range names.Name() {
					if err := st.DeleteConsumer(t.Context(), name); err != nil {
						t.Fatal(err)
					}
				}
				e := event("kim", "a.b", 10+round)
				publish(t, b, e)
				if got := receive(t, ch, 1)[0].ID; got != e.ID {
					t.Fatalf("round %d: got %s, want %s", round, got, e.ID)
				}
				cancel()
			}
		})

		t.Run("a bad filter is refused", func(t *testing.T) {
			b := connect(t, url, uniqueStream())
			for _, typ := range []string{"", "a..b", "a b", ">.a", "a.>.b"} {
				if _, err := b.Subscribe(t.Context(), events.Filter{Types: []string{typ}}, ""); err == nil {
					t.Errorf("type %q accepted", typ)
				}
			}
			if err := b.Publish(t.Context(), events.Event{ID: "x", User: "u", Type: "a.*"}); err == nil {
				t.Error("published a wildcard type")
			}
		})

		t.Run("a worker retries with backoff until the handler succeeds", func(t *testing.T) {
			b := connect(t, url, uniqueStream())
			publish(t, b, event("ivan", "consent.link.revoked", 1)) // before the consumer exists
			var mu sync.Mutex
			var attempts []time.Time
			var handled []string
			done := make(chan struct{}, 10)
			handle := func(_ context.Context, d events.Delivered) error {
				mu.Lock()
				defer mu.Unlock()
				if d.ID == "ivan-consent.link.revoked-1" {
					attempts = append(attempts, time.Now())
					if len(attempts) < 3 {
						return errors.New("bank down")
					}
				}
				handled = append(handled, d.ID)
				done <- struct{}{}
				return nil
			}
			ctx, stop := context.WithCancel(t.Context())
			ended := make(chan error, 1)
			go func() {
				// A short ack wait: a message the stopped iterator had pulled
				// but not handled is redelivered within it after a restart.
				ended <- b.Consume(ctx, "revocations", events.Filter{Types: []string{"consent.link.revoked"}}, handle,
					events.WithBackoff(200*time.Millisecond, time.Second), events.WithAckWait(2*time.Second))
			}()
			waitDone(t, done)
			mu.Lock()
			if len(attempts) != 3 {
				t.Errorf("%d attempts, want 3", len(attempts))
			}
			for i := 1; i < len(attempts); i++ {
				// 200ms then 400ms, less 20% jitter.
				if gap, least := attempts[i].Sub(attempts[i-1]), time.Duration(i)*160*time.Millisecond; gap < least {
					t.Errorf("retry %d after %s, want at least %s", i, gap, least)
				}
			}
			mu.Unlock()
			stop()
			if err := <-ended; err != nil {
				t.Fatalf("Consume = %v", err)
			}
			// The durable consumer resumes after a restart with what it
			// has not handled, and only that.
			publish(t, b, event("ivan", "consent.link.revoked", 2), event("ivan", "consent.link.expiring", 3))
			ctx, stop = context.WithCancel(t.Context())
			defer stop()
			go func() {
				ended <- b.Consume(ctx, "revocations", events.Filter{Types: []string{"consent.link.revoked"}}, handle, events.WithAckWait(2*time.Second))
			}()
			waitDone(t, done)
			time.Sleep(200 * time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			if want := []string{"ivan-consent.link.revoked-1", "ivan-consent.link.revoked-2"}; !slices.Equal(handled, want) {
				t.Errorf("handled %v, want %v", handled, want)
			}
		})
	})
}

func waitDone(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("handler not called in time")
	}
}

func TestConsumerNameIsChecked(t *testing.T) {
	b := connect(t, embedded(t, t.TempDir()).URL(), uniqueStream())
	err := b.Consume(t.Context(), "no spaces", events.Filter{}, func(context.Context, events.Delivered) error { return nil })
	if err == nil {
		t.Fatal("Consume accepted a bad durable name")
	}
}

func TestBackoffDoublesUpToTheCap(t *testing.T) {
	for attempt, want := range map[uint64]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 10: time.Minute, 100: time.Minute} {
		for range 20 {
			got := events.Backoff(attempt, time.Second, time.Minute)
			if got < want*8/10 || got > want*12/10 {
				t.Fatalf("attempt %d: %s, want %s ±20%%", attempt, got, want)
			}
		}
	}
}

func TestEmbeddedServer(t *testing.T) {
	dir := t.TempDir()
	sc := uniqueStream()
	s, err := events.Embedded(dir, events.WithToken("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := events.Connect(t.Context(), events.Config{URL: s.URL(), SubjectKey: testKey, Stream: sc}); err == nil {
		t.Fatal("connected without the token")
	}
	token := func(context.Context) (events.Credentials, error) { return events.Credentials{Token: "s3cret"}, nil }
	b, err := events.Connect(t.Context(), events.Config{URL: s.URL(), SubjectKey: testKey, Stream: sc, Credentials: token})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := b.Subscribe(t.Context(), events.Filter{}, "")
	if err != nil {
		t.Fatal(err)
	}
	publish(t, b, event("judy", "a.b", 1))
	last := receive(t, ch, 1)[0].Cursor
	b.Close()
	s.Close()

	// Restarted on the same directory: the stream, and so the cursors,
	// survive.
	s = embedded(t, dir, events.WithToken("s3cret"))
	b, err = events.Connect(t.Context(), events.Config{URL: s.URL(), SubjectKey: testKey, Stream: sc, Credentials: token})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	publish(t, b, event("judy", "a.b", 2))
	ch, err = b.Subscribe(t.Context(), events.Filter{}, last)
	if err != nil {
		t.Fatalf("cursor after a restart: %v", err)
	}
	if got := receive(t, ch, 1)[0].ID; got != "judy-a.b-2" {
		t.Errorf("resumed at %s, want judy-a.b-2", got)
	}
}

func TestSubjectMatch(t *testing.T) {
	tests := []struct {
		pattern, subject string
		want             bool
	}{
		{"p.u1.a.b", "p.u1.a.b", true},
		{"p.u1.a.b", "p.u1.a.b.c", false},
		{"p.*.a.b", "p.u2.a.b", true},
		{"p.*.a.>", "p.u2.a.b.c", true},
		{"p.*.a.>", "p.u2.a", false},
		{"p.u1.>", "p.u2.a", false},
	}
	for _, tt := range tests {
		if got := events.SubjectMatch(tt.pattern, tt.subject); got != tt.want {
			t.Errorf("match(%q, %q) = %v, want %v", tt.pattern, tt.subject, got, tt.want)
		}
	}
}

// TestCredentialsAreReadAtEachConnection: the server's token changes (a
// rotation) while the bus is connected; the bus reads the new one when it
// reconnects, without a restart.
func TestCredentialsAreReadAtEachConnection(t *testing.T) {
	dir := t.TempDir()
	addr := "127.0.0.1:" + freePort(t)
	s, err := events.Embedded(dir, events.WithListenAddr(addr), events.WithToken("t1"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	token := "t1"
	get := func(context.Context) (events.Credentials, error) {
		mu.Lock()
		defer mu.Unlock()
		return events.Credentials{Token: token}, nil
	}
	b, err := events.Connect(t.Context(), events.Config{URL: s.URL(), SubjectKey: testKey, Stream: uniqueStream(), Credentials: get})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	publish(t, b, event("kate", "a.b", 1))

	s.Close()
	mu.Lock()
	token = "t2"
	mu.Unlock()
	embedded(t, dir, events.WithListenAddr(addr), events.WithToken("t2"))
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		err := b.Publish(ctx, event("kate", "a.b", 2))
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no publish after the rotation: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}
