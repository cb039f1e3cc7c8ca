// Package eventstest gives a service's tests the event bus as the service
// runs on it: a NATS server, a stream of the test's own on it, and the
// service database's outbox relayed there.
package eventstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/storage"
)

// EmbeddedNATS starts a NATS server with JetStream in the test's
// temporary directory, stopped when the test ends, and returns its URL.
func EmbeddedNATS(t testing.TB) string {
	t.Helper()
	s, err := events.Embedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s.URL()
}

// Relayed is a bus on a stream of the test's own, with db's outbox
// relayed to it.
type Relayed struct {
	Bus    *events.Bus
	Outbox *events.SQLOutbox
	// Stream is the stream's name.
	Stream string
}

// Relay migrates db's outbox, connects to a new stream on the NATS server
// at url (named after service, with a random suffix, deleted when the test
// ends) and relays the outbox to it until the test ends.
func Relay(t testing.TB, url string, db *storage.DB, service string) Relayed {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := events.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	outbox := events.NewOutbox(db)
	var b [6]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	name := strings.ToUpper(service) + "TEST_" + id
	bus, err := events.Connect(ctx, events.Config{URL: url, Name: service + "-test", SubjectKey: []byte(service + "-test-subject-key-32-bytes!!"),
		Stream: events.StreamConfig{Name: name, SubjectPrefix: service + "test." + id + ".events"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteStream(t, url, name) })
	t.Cleanup(bus.Close)
	relay := events.NewRelay(outbox, bus, events.RelayConfig{Poll: 20 * time.Millisecond})
	done := make(chan struct{})
	go func() { defer close(done); _ = relay.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return Relayed{Bus: bus, Outbox: outbox, Stream: name}
}

// deleteStream removes the test's stream from a server that outlives the
// test.
func deleteStream(t testing.TB, url, name string) {
	nc, err := nats.Connect(url)
	if err != nil {
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, name); err != nil {
		t.Logf("stream %s not deleted: %v", name, err)
	}
}
