package transport_test

// Issue 14's fault row "duplicate concurrent writes with one idempotency
// key" for shipping's keyed writes, through the gRPC server on SQLite and
// PostgreSQL: calls made at once with one key get one answer and track
// one shipment.

import (
	"os"
	"testing"

	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

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
			if _, err := testkit.SameAnswers(t, "CreateShipment", n, func() (*shippingv1.CreateShipmentResponse, error) {
				return e.shipping.CreateShipment(alice, create)
			}); err != nil {
				t.Errorf("CreateShipment: %v", err)
			}
			e.optIn("bob", "puid-bob-0001")
			register := &shippingv1.RegisterShipmentRequest{Parent: partnerParent, PartnerUserId: "puid-bob-0001", TrackingNumber: "3318-8100-25", IdempotencyKey: "key-00000002"}
			if _, err := testkit.SameAnswers(t, "RegisterShipment", n, func() (*shippingv1.RegisterShipmentResponse, error) {
				return e.partner.RegisterShipment(e.asPartner(t), register)
			}); err != nil {
				t.Errorf("RegisterShipment: %v", err)
			}
			if got := e.stored(t, "alice"); got != 1 {
				t.Errorf("alice has %d shipments, want 1", got)
			}
			if got := e.stored(t, "bob"); got != 1 {
				t.Errorf("bob has %d shipments, want 1", got)
			}
		})
	}
}
