package events_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

var testKey = []byte("test-subject-key-of-at-least-32-bytes!")

// eachNATS runs suite against a NATS server embedded in the test (a fresh
// one in a temporary directory) and against the real nats-server.
func eachNATS(t *testing.T, suite func(t *testing.T, url string)) {
	t.Helper()
	t.Run("embedded", func(t *testing.T) {
		suite(t, embedded(t, t.TempDir()).URL())
	})
	t.Run("nats-server", func(t *testing.T) {
		suite(t, testkit.RealNATS(t))
	})
}

// embedded starts an embedded server in dir, stopped when the test ends.
//
// It keeps one stream of its own: when the last stream of an account is
// deleted, nats-server removes the account's empty directory in the
// background, and a stream created meanwhile (the next case's) fails to
// create its store. The tests delete their streams; services never do.
func embedded(t testing.TB, dir string, opts ...events.EmbeddedOption) *events.Server {
	t.Helper()
	s, err := events.Embedded(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if len(opts) == 0 {
		nc, err := nats.Connect(s.URL())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.CreateOrUpdateStream(context.Background(), jetstream.StreamConfig{
			Name: "BBTEST_KEEP", Subjects: []string{"bbtest-keep"}, Storage: jetstream.FileStorage,
		}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// uniqueStream is a stream of its own for one test, so tests can share the
// real server.
func uniqueStream() events.StreamConfig {
	var b [6]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	return events.StreamConfig{Name: "BBTEST_" + id, SubjectPrefix: "bbtest." + id + ".events"}
}

// connect connects to url with a stream of its own, deleted when the test
// ends.
func connect(t testing.TB, url string, sc events.StreamConfig) *events.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := events.Connect(ctx, events.Config{URL: url, Name: "events-test", SubjectKey: testKey, Stream: sc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = events.JetStream(b).DeleteStream(ctx, b.Stream())
		b.Close()
	})
	return b
}

// receive reads n deliveries from ch, or fails after the deadline.
func receive(t testing.TB, ch <-chan events.Delivered, n int) []events.Delivered {
	t.Helper()
	var got []events.Delivered
	deadline := time.After(20 * time.Second)
	for len(got) < n {
		select {
		case d, ok := <-ch:
			if !ok {
				t.Fatalf("subscription closed after %d of %d events", len(got), n)
			}
			got = append(got, d)
		case <-deadline:
			t.Fatalf("received %d of %d events", len(got), n)
		}
	}
	return got
}

// quiet fails when ch delivers anything within d.
func quiet(t testing.TB, ch <-chan events.Delivered, d time.Duration) {
	t.Helper()
	select {
	case e, ok := <-ch:
		if ok {
			t.Fatalf("unexpected extra event %s (%s)", e.ID, e.Type)
		}
	case <-time.After(d):
	}
}

// ids are the events' ids, in order.
func ids(ds []events.Delivered) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}
