package transport_test

// Issue 14's fault row "duplicate concurrent writes with one idempotency
// key" for shipping's keyed writes, through the gRPC server on SQLite and
// PostgreSQL: calls made at once with one key get one answer and track
// one shipment.

import (
	"os"
	"sync"
	"testing"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
)

// sameAnswers makes n calls of call at once and fails the test unless
// every caller got the first's answer.
func sameAnswers[R proto.Message](t *testing.T, what string, n int, call func() (R, error)) {
	t.Helper()
	resps := make([]R, n)
	errs := make([]error, n)
	begin := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-begin
			resps[i], errs[i] = call()
		})
	}
	close(begin)
	wg.Wait()
	if errs[0] != nil {
		t.Errorf("%s: %v", what, errs[0])
	}
	for i := 1; i < n; i++ {
		if !proto.Equal(status.Convert(errs[i]).Proto(), status.Convert(errs[0]).Proto()) || !proto.Equal(resps[i], resps[0]) {
			t.Errorf("%s: call %d got %v, %v; call 0 got %v, %v", what, i, resps[i], errs[i], resps[0], errs[0])
		}
	}
}

func TestWritesAtOnceWithOneKeyGetOneAnswer(t *testing.T) {
	t.Parallel()
	dbs := map[string]func(t *testing.T) *storage.DB{
		"sqlite": func(t *testing.T) *storage.DB { return storagetest.OpenSQLite(t) },
		"postgres": func(t *testing.T) *storage.DB {
			url := os.Getenv(storagetest.PostgresURLEnv)
			if url == "" {
				t.Skipf("%s is not set: no PostgreSQL to run on", storagetest.PostgresURLEnv)
			}
			return storagetest.OpenPostgres(t, url)
		},
	}
	for name, open := range dbs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := startOn(t, embeddedNATS, open(t))
			e.link("alice")
			alice := e.as(t, "alice")
			const n = 8
			create := &shippingv1.CreateShipmentRequest{Parent: "users/alice", IdempotencyKey: "key-00000001",
				Shipment: &shippingv1.Shipment{TrackingNumber: "1z999aa1-0123456784"}}
			sameAnswers(t, "CreateShipment", n, func() (*shippingv1.CreateShipmentResponse, error) {
				return e.shipping.CreateShipment(alice, create)
			})
			e.optIn("bob", "puid-bob-0001")
			register := &shippingv1.RegisterShipmentRequest{Parent: partnerParent, PartnerUserId: "puid-bob-0001", TrackingNumber: "3318-8100-25", IdempotencyKey: "key-00000002"}
			sameAnswers(t, "RegisterShipment", n, func() (*shippingv1.RegisterShipmentResponse, error) {
				return e.partner.RegisterShipment(e.asPartner(t), register)
			})
			if got := e.stored(t, "alice"); got != 1 {
				t.Errorf("alice has %d shipments, want 1", got)
			}
			if got := e.stored(t, "bob"); got != 1 {
				t.Errorf("bob has %d shipments, want 1", got)
			}
		})
	}
}
