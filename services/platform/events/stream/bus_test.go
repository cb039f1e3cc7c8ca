package stream_test

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

var subjectKey = []byte("stream-test-subject-key-of-32-bytes!")

// backend is a NATS server the tests run on.
type backend struct {
	name string
	url  func(t *testing.T) string
}

// backends are a NATS server embedded in the test and the real one.
func backends(*testing.T) []backend {
	return []backend{
		{name: "embedded", url: func(t *testing.T) string {
			s, err := events.Embedded(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			return s.URL()
		}},
		{name: "nats-server", url: func(t *testing.T) string { return testkit.RealNATS(t) }},
	}
}

// testStream is a stream of the test's own on a backend (so tests can
// share the real server), deleted when the test ends.
type testStream struct {
	url, name string
	sc        events.StreamConfig
	t         *testing.T
}

func (b backend) bus(t *testing.T, sc events.StreamConfig) testStream {
	t.Helper()
	u := b.url(t)
	id := newRun(t).id
	sc.Name, sc.SubjectPrefix = "BBSTREAMTEST_"+id, "bbstreamtest."+id+".events"
	t.Cleanup(func() { deleteStream(t, u, sc.Name) })
	return testStream{url: u, name: sc.Name, sc: sc, t: t}
}

// connect is one more process's client of the stream (a replica).
func (s testStream) connect() *events.Bus {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bus, err := events.Connect(ctx, events.Config{URL: s.url, Name: "stream-test", SubjectKey: subjectKey, Stream: s.sc})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(bus.Close)
	return bus
}

func deleteStream(t *testing.T, u, name string) {
	nc, err := nats.Connect(u)
	if err != nil {
		t.Logf("stream %s not deleted: %v", name, err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = js.DeleteStream(ctx, name)
	}
	if err != nil {
		t.Logf("stream %s not deleted: %v", name, err)
	}
}

// firstSeq is the oldest sequence the stream keeps.
func (s testStream) firstSeq(t *testing.T) uint64 {
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
	return info.State.FirstSeq
}

// relayed writes events as a service does, into its outbox in a
// transaction, and a relay (of its own process) publishes them to a bus;
// restart stops that relay and starts a new one, as a process restart
// does.
type relayed struct {
	db     *storage.DB
	outbox *events.SQLOutbox
	bus    *events.Bus

	mu   sync.Mutex
	stop func()
}

func newRelayed(t *testing.T, bus *events.Bus) *relayed {
	t.Helper()
	db, err := storage.Open(t.Context(), storage.SQLiteURL(t.TempDir(), "shipping"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := events.Migrate(t.Context(), db); err != nil {
		t.Fatal(err)
	}
	r := &relayed{db: db, outbox: events.NewOutbox(db), bus: bus}
	r.start()
	t.Cleanup(r.halt)
	return r
}

func (r *relayed) start() {
	ctx, cancel := context.WithCancel(context.Background())
	relay := events.NewRelay(r.outbox, r.bus, events.RelayConfig{Poll: 20 * time.Millisecond})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = relay.Run(ctx)
	}()
	r.mu.Lock()
	r.stop = func() { cancel(); <-done }
	r.mu.Unlock()
}

// halt stops the relay and waits until it has.
func (r *relayed) halt() {
	r.mu.Lock()
	stop := r.stop
	r.stop = nil
	r.mu.Unlock()
	if stop != nil {
		stop()
	}
}

func (r *relayed) restart() {
	r.halt()
	r.start()
}

// Publish writes e in a transaction of the service's database.
func (r *relayed) Publish(ctx context.Context, e events.Event) error {
	return r.db.InTx(ctx, func(tx *sql.Tx) error { return r.outbox.Add(ctx, tx, e) })
}
