package transport_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck/consenttest"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/shipping/internal/carrier"
)

// shipmentName is a shipment's name: the user's, with an opaque random id
// that names neither the tracking number nor the carrier.
var shipmentName = regexp.MustCompile(`^users/alice/shipments/[0-9a-f]{32}$`)

// TestCreateShipment is a product starting to track a parcel, retrying,
// and tracking it again.
func TestCreateShipment(t *testing.T) {
	t.Parallel()
	e := start(t, embeddedNATS)
	e.link("alice")
	alice := e.as(t, "alice")
	req := &shippingv1.CreateShipmentRequest{Parent: "users/alice", IdempotencyKey: "key-00000001",
		Shipment: &shippingv1.Shipment{TrackingNumber: "1z999aa1-0123456784", Receipt: "users/alice/receipts/r1"}}
	resp, err := e.shipping.CreateShipment(alice, req)
	if err != nil {
		t.Fatal(err)
	}
	first := resp.GetShipment()
	if !shipmentName.MatchString(first.GetName()) || first.GetTrackingNumber() != upsNumber || first.GetCarrier() != carrier.UPS ||
		!first.GetCarrierDetected() || len(first.GetCarrierCandidates()) != 0 || first.GetStatus() != shippingv1.ShipmentStatus_SHIPMENT_STATUS_PENDING ||
		first.GetReceipt() != "users/alice/receipts/r1" || first.GetPartner() != "" || first.GetCreateTime() == nil ||
		!first.GetUpdateTime().AsTime().Equal(first.GetCreateTime().AsTime()) || len(first.GetCheckpoints()) != 0 || first.GetEstimatedDeliveryTime() != nil {
		t.Fatalf("created = %v", first)
	}
	if got := e.get(t, "alice", first.GetName()); !proto.Equal(got, first) {
		t.Errorf("read back = %v, want %v", got, first)
	}

	t.Run("a retry with the same key answers the first answer", func(t *testing.T) {
		again, err := e.shipping.CreateShipment(alice, req)
		if err != nil || !proto.Equal(again.GetShipment(), first) {
			t.Errorf("retry = %v, %v; want %v", again, err, first)
		}
	})
	t.Run("the same key with another request", func(t *testing.T) {
		changed := proto.Clone(req).(*shippingv1.CreateShipmentRequest)
		changed.Shipment.TrackingNumber = dhlNumber
		_, err := e.shipping.CreateShipment(alice, changed)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
		testkit.RequireFieldViolation(t, err, "idempotency_key")
	})
	t.Run("output-only fields are no part of the request", func(t *testing.T) {
		same := proto.Clone(req).(*shippingv1.CreateShipmentRequest)
		same.Shipment.Status, same.Shipment.SignedBy = shippingv1.ShipmentStatus_SHIPMENT_STATUS_DELIVERED, "Mallory"
		again, err := e.shipping.CreateShipment(alice, same)
		if err != nil || !proto.Equal(again.GetShipment(), first) {
			t.Errorf("retry = %v, %v; want %v", again, err, first)
		}
	})
	t.Run("a parcel the user tracks already is that shipment", func(t *testing.T) {
		for _, c := range []string{"", carrier.UPS} {
			got := e.create(t, "alice", upsNumber, c)
			if !proto.Equal(got, first) {
				t.Errorf("created again with carrier %q = %v, want %v", c, got, first)
			}
		}
		if n := e.stored(t, "alice"); n != 1 {
			t.Errorf("alice has %d shipments of one parcel", n)
		}
		if got := e.list(t, "alice", nil); len(got) != 1 {
			t.Errorf("alice lists %d shipments", len(got))
		}
	})
	t.Run("another user tracks the same parcel on their own", func(t *testing.T) {
		e.link("bob")
		bob := e.create(t, "bob", upsNumber, "")
		if bob.GetName() == first.GetName() || !strings.HasPrefix(bob.GetName(), "users/bob/shipments/") {
			t.Errorf("bob's shipment = %v", bob)
		}
	})
	t.Run("the Idempotency-Key header fills the key", func(t *testing.T) {
		ctx := withHeader(e.as(t, "alice"), "idempotency-key", "key-00000002")
		r := &shippingv1.CreateShipmentRequest{Parent: "users/alice", Shipment: &shippingv1.Shipment{TrackingNumber: dhlNumber}}
		resp, err := e.shipping.CreateShipment(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		r.IdempotencyKey = "key-00000002"
		again, err := e.shipping.CreateShipment(e.as(t, "alice"), r)
		if err != nil || !proto.Equal(again, resp) || resp.GetShipment().GetCarrier() != carrier.DHLExpress {
			t.Errorf("retry with the key in the body = %v, %v; want %v", again, err, resp)
		}
	})
	t.Run("creations are in the access log", func(t *testing.T) {
		var logged int
		for _, en := range e.consent.Entries() {
			if en.Method == shippingv1.ShippingService_CreateShipment_FullMethodName && en.User == "alice" && en.Allowed &&
				en.Scope == commonv1.Scope_SCOPE_SHIPPING && en.Purpose == commonv1.Purpose_PURPOSE_ORDER_TRACKING {
				logged++
			}
		}
		if logged == 0 {
			t.Error("no creation in alice's access log")
		}
	})
}

// TestAmbiguousNumber: a number that fits two carriers waits for the
// user's choice, with the carrier's checkpoints kept for it meanwhile.
func TestAmbiguousNumber(t *testing.T) {
	t.Parallel()
	e := start(t, embeddedNATS)
	e.link("alice")
	w := e.watch(t, nil, "alice", "")
	sh := e.create(t, "alice", ambiguous, "")
	if sh.GetCarrier() != "" || sh.GetCarrierDetected() || !slices.Equal(sh.GetCarrierCandidates(), []string{carrier.FedEx, carrier.USPS}) ||
		sh.GetStatus() != shippingv1.ShipmentStatus_SHIPMENT_STATUS_PENDING {
		t.Fatalf("created = %v, want candidates and no carrier", sh)
	}
	if again := e.create(t, "alice", ambiguous, ""); again.GetName() != sh.GetName() {
		t.Errorf("created again = %v, want the same shipment", again)
	}
	if got := w.next().GetEvent(); got.GetType() != created || len(got.GetShipment().GetCarrierCandidates()) != 2 {
		t.Fatalf("event = %v, want the creation, once", got)
	}

	// Both carriers report on the number before alice chooses.
	at := time.Now().Add(-time.Hour).UTC()
	if r := e.mustPush(t, carrier.USPS, ev(ambiguous, shippingv1.ShipmentStatus_SHIPMENT_STATUS_IN_TRANSIT, at)); r.GetRecordedCount() != 1 {
		t.Errorf("usps push = %v", r)
	}
	e.mustPush(t, carrier.FedEx, ev(ambiguous, shippingv1.ShipmentStatus_SHIPMENT_STATUS_DELIVERED, at))
	if got := e.get(t, "alice", sh.GetName()); got.GetStatus() != shippingv1.ShipmentStatus_SHIPMENT_STATUS_PENDING || len(got.GetCheckpoints()) != 0 {
		t.Errorf("before the choice = %v, want it pending, without checkpoints", got)
	}

	alice := e.as(t, "alice")
	_, err := e.shipping.SelectCarrier(alice, &shippingv1.SelectCarrierRequest{Name: sh.GetName(), Carrier: carrier.UPS})
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT)
	testkit.RequireFieldViolation(t, err, "carrier")

	resp, err := e.shipping.SelectCarrier(alice, &shippingv1.SelectCarrierRequest{Name: sh.GetName(), Carrier: carrier.USPS})
	if err != nil {
		t.Fatal(err)
	}
	chosen := resp.GetShipment()
	if chosen.GetCarrier() != carrier.USPS || len(chosen.GetCarrierCandidates()) != 0 || chosen.GetCarrierDetected() ||
		chosen.GetStatus() != shippingv1.ShipmentStatus_SHIPMENT_STATUS_IN_TRANSIT || len(chosen.GetCheckpoints()) != 1 {
		t.Fatalf("chosen = %v, want usps with its stored checkpoint applied", chosen)
	}
	// The next event the watch sees is the choice: the pushes before it
	// reached no shipment.
	if got := w.next().GetEvent(); got.GetType() != shippingv1.ShipmentEventType_SHIPMENT_EVENT_TYPE_UPDATED ||
		got.GetShipment().GetCarrier() != carrier.USPS || got.GetCheckpoint() != nil {
		t.Errorf("event = %v, want the carrier chosen", got)
	}
	var fedex int
	_ = e.db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM tracking_events WHERE carrier = 'fedex'`).Scan(&fedex)
	if fedex != 0 {
		t.Errorf("%d events of the carrier not chosen kept", fedex)
	}

	_, err = e.shipping.SelectCarrier(alice, &shippingv1.SelectCarrierRequest{Name: sh.GetName(), Carrier: carrier.FedEx})
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION)

	t.Run("naming a candidate on create chooses it", func(t *testing.T) {
		e.link("bob")
		amb := e.create(t, "bob", ambiguous, "")
		got := e.create(t, "bob", ambiguous, carrier.USPS)
		if got.GetName() != amb.GetName() || got.GetCarrier() != carrier.USPS || got.GetStatus() != shippingv1.ShipmentStatus_SHIPMENT_STATUS_IN_TRANSIT {
			t.Errorf("created with usps = %v, want %s with the carrier chosen", got, amb.GetName())
		}
		if n := e.stored(t, "bob"); n != 1 {
			t.Errorf("bob has %d shipments of one parcel", n)
		}
	})
}

// TestRegisterShipment is a partner registering a parcel for a user, and
// retrying it.
func TestRegisterShipment(t *testing.T) {
	t.Parallel()
	e := start(t, embeddedNATS)
	e.optIn("alice", "puid-alice-0001")
	req := &shippingv1.RegisterShipmentRequest{Parent: partnerParent, PartnerUserId: "puid-alice-0001", TrackingNumber: "3318-8100-25", IdempotencyKey: "key-00000001"}
	first, err := e.partner.RegisterShipment(e.asPartner(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if first.GetTrackingNumber() != "3318-8100-25" || first.GetCarrier() != carrier.DHLExpress || len(first.GetCarrierCandidates()) != 0 || first.GetCreateTime() == nil {
		t.Fatalf("response = %v", first)
	}
	if b, _ := protojson.Marshal(first); strings.Contains(string(b), "alice") || strings.Contains(string(b), "users/") {
		t.Errorf("the response names the user: %s", b)
	}
	got := e.list(t, "alice", nil)
	if len(got) != 1 || !shipmentName.MatchString(got[0].GetName()) || got[0].GetPartner() != servertest.Partner ||
		got[0].GetTrackingNumber() != dhlNumber || !got[0].GetCarrierDetected() || !got[0].GetCreateTime().AsTime().Equal(first.GetCreateTime().AsTime()) {
		t.Fatalf("alice's shipments = %v", got)
	}
	var logged bool
	for _, en := range e.consent.Entries() {
		if en.Method == shippingv1.PartnerShippingService_RegisterShipment_FullMethodName {
			logged = en.User == "alice" && en.ClientID == servertest.Partner && en.Resource == got[0].GetName() && en.Allowed &&
				en.Purpose == commonv1.Purpose_PURPOSE_ORDER_TRACKING && en.Scope == commonv1.Scope_SCOPE_SHIPPING
		}
	}
	if !logged {
		t.Errorf("access log = %+v, want the registration", e.consent.Entries())
	}

	t.Run("a retry with the same key answers the first answer", func(t *testing.T) {
		again, err := e.partner.RegisterShipment(e.asPartner(t), req)
		if err != nil || !proto.Equal(again, first) {
			t.Errorf("retry = %v, %v; want %v", again, err, first)
		}
	})
	t.Run("the same key with another request", func(t *testing.T) {
		changed := proto.Clone(req).(*shippingv1.RegisterShipmentRequest)
		changed.TrackingNumber = upsNumber
		_, err := e.partner.RegisterShipment(e.asPartner(t), changed)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
		testkit.RequireFieldViolation(t, err, "idempotency_key")
	})
	t.Run("the same parcel under another key is the same shipment", func(t *testing.T) {
		again := proto.Clone(req).(*shippingv1.RegisterShipmentRequest)
		again.IdempotencyKey = "key-00000002"
		resp, err := e.partner.RegisterShipment(e.asPartner(t), again)
		if err != nil || !proto.Equal(resp, first) {
			t.Errorf("answer = %v, %v; want %v", resp, err, first)
		}
		if mine := e.create(t, "alice", dhlNumber, ""); mine.GetName() != got[0].GetName() {
			t.Errorf("alice's own create = %v, want the partner's shipment", mine)
		}
		if n := e.stored(t, "alice"); n != 1 {
			t.Errorf("%d shipments stored", n)
		}
	})
	t.Run("an ambiguous number waits for the user's choice", func(t *testing.T) {
		r := &shippingv1.RegisterShipmentRequest{Parent: partnerParent, PartnerUserId: "puid-alice-0001", TrackingNumber: ambiguous, IdempotencyKey: newKey()}
		resp, err := e.partner.RegisterShipment(e.asPartner(t), r)
		if err != nil || resp.GetCarrier() != "" || !slices.Equal(resp.GetCarrierCandidates(), []string{carrier.FedEx, carrier.USPS}) {
			t.Errorf("answer = %v, %v", resp, err)
		}
	})
}

// TestRegisterRefused: what a partner may not register, and that nothing
// of it is stored.
func TestRegisterRefused(t *testing.T) {
	t.Parallel()
	e := start(t, embeddedNATS)
	e.optIn("alice", "puid-alice-0001")
	e.consent.OptIn("carol", servertest.Partner, "puid-carol-0001") // carol has no link covering shipping
	e.consent.AddLink("carol", "sandbox", commonv1.Scope_SCOPE_ACCOUNTS)
	e.optIn("dave", "puid-dave-00001")
	e.consent.RevokeOptIn(servertest.Partner, "puid-dave-00001")
	reg := func(puid, number, carrierCode string) *shippingv1.RegisterShipmentRequest {
		return &shippingv1.RegisterShipmentRequest{Parent: partnerParent, PartnerUserId: puid, TrackingNumber: number, Carrier: carrierCode, IdempotencyKey: newKey()}
	}

	tests := []struct {
		name   string
		user   string // whose shipments must stay untouched
		req    *shippingv1.RegisterShipmentRequest
		reason commonv1.ErrorReason
		field  string
	}{
		{"a wrong check digit", "alice", reg("puid-alice-0001", "1Z999AA10123456785", ""), commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "tracking_number"},
		{"a wrong check digit for the carrier named", "alice", reg("puid-alice-0001", "3318810026", carrier.DHLExpress), commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "tracking_number"},
		{"a number no carrier issues", "alice", reg("puid-alice-0001", "ABCD-1234", ""), commonv1.ErrorReason_ERROR_REASON_CARRIER_UNKNOWN, "tracking_number"},
		{"a carrier not supported", "alice", reg("puid-alice-0001", upsNumber, "acme-parcels"), commonv1.ErrorReason_ERROR_REASON_CARRIER_UNKNOWN, "carrier"},
		{"a number the carrier named never issues", "alice", reg("puid-alice-0001", upsNumber, carrier.DHLExpress), commonv1.ErrorReason_ERROR_REASON_CARRIER_UNKNOWN, "tracking_number"},
		{"a partner user id nobody opted in under", "alice", reg("puid-nobody-001", upsNumber, ""), commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, ""},
		{"a user without consent covering shipping", "carol", reg("puid-carol-0001", upsNumber, ""), commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, ""},
		{"a revoked opt-in", "dave", reg("puid-dave-00001", upsNumber, ""), commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.partner.RegisterShipment(e.asPartner(t), tt.req)
			testkit.RequireReason(t, err, tt.reason)
			if tt.field != "" {
				testkit.RequireFieldViolation(t, err, tt.field)
			}
			if n := e.stored(t, tt.user); n != 0 {
				t.Errorf("%d shipments stored for %s", n, tt.user)
			}
		})
	}

	t.Run("the access log is unavailable: nothing is stored", func(t *testing.T) {
		e.consent.FailRecord(consenttest.ErrRecord)
		defer e.consent.FailRecord(nil)
		r := reg("puid-alice-0001", upsNumber, "")
		_, err := e.partner.RegisterShipment(e.asPartner(t), r)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_AUDIT_UNAVAILABLE)
		if testkit.RetryInfo(err) == nil {
			t.Error("no RetryInfo")
		}
		if n, events, keys := e.stored(t, "alice"), e.rows(t, "events_outbox"), e.rows(t, "idempotency_keys"); n != 0 || events != 0 || keys != 0 {
			t.Errorf("%d shipments, %d events and %d keys stored without an access log entry", n, events, keys)
		}
		// The key was not spent: the retry, once the log is back, stores it.
		e.consent.FailRecord(nil)
		if resp, err := e.partner.RegisterShipment(e.asPartner(t), r); err != nil || resp.GetCarrier() != carrier.UPS {
			t.Errorf("retry = %v, %v", resp, err)
		}
	})
	t.Run("a user's token", func(t *testing.T) {
		_, err := e.partner.RegisterShipment(e.as(t, "alice"), reg("puid-alice-0001", dhlNumber, ""))
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED)
	})
	t.Run("another client's parent", func(t *testing.T) {
		r := reg("puid-alice-0001", dhlNumber, "")
		r.Parent = "clients/other-partner"
		_, err := e.partner.RegisterShipment(e.asPartner(t), r)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED)
	})
}
