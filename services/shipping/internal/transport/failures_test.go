package transport_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"testing"
	"time"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/shipping/internal/carrier"
)

// TestEveryFailureTheContractNames provokes each failure each RPC's
// comment names, as a caller would meet it.
func TestEveryFailureTheContractNames(t *testing.T) {
	t.Parallel()
	e := start(t, embeddedNATS)
	e.optIn("alice", "puid-alice-0001")
	e.consent.OptIn("carol", "test-partner", "puid-carol-0001") // carol has no consent at all
	e.link("bob")
	e.consent.SetLinkState("users/bob/links/l-sandbox-0", consentv1.ConsentState_CONSENT_STATE_REVOKED)
	e.optIn("dave", "puid-dave-00001")
	e.consent.RevokeOptIn("test-partner", "puid-dave-00001")
	name := e.create(t, "alice", upsNumber, "").GetName()
	amb := e.create(t, "alice", ambiguous, "").GetName()
	if _, err := e.partner.RegisterShipment(e.asPartner(t), &shippingv1.RegisterShipmentRequest{Parent: partnerParent, PartnerUserId: "puid-alice-0001",
		TrackingNumber: dhlNumber, IdempotencyKey: "key-00000001"}); err != nil {
		t.Fatal(err)
	}

	bearer := func(tok string) context.Context { return withHeader(t.Context(), "authorization", "Bearer "+tok) }
	noToken := withHeader(t.Context(), "bankbridge-purpose", "ORDER_TRACKING")
	badToken := withHeader(bearer("not-a-token"), "bankbridge-purpose", "ORDER_TRACKING")
	expiredToken := withHeader(bearer(e.token(t, "alice", "chat-app", -time.Minute)), "bankbridge-purpose", "ORDER_TRACKING")
	alice, carol, bob := e.as(t, "alice"), e.as(t, "carol"), e.as(t, "bob")
	otherPurpose := e.asFor(t, "alice", "PURCHASE_HISTORY")
	advertising := e.asFor(t, "alice", "ADVERTISING")
	notServed := e.asFor(t, "alice", "ACCOUNT_INFORMATION")
	partnerExpired := bearer(e.token(t, "test-partner", "test-partner", -time.Minute))
	partner := e.asPartner(t)

	create := func(ctx context.Context, parent, number, carrierCode, key string) error {
		if key == "" {
			key = newKey()
		}
		_, err := e.shipping.CreateShipment(ctx, &shippingv1.CreateShipmentRequest{Parent: parent, IdempotencyKey: key,
			Shipment: &shippingv1.Shipment{TrackingNumber: number, Carrier: carrierCode}})
		return err
	}
	get := func(ctx context.Context, n string) error {
		_, err := e.shipping.GetShipment(ctx, &shippingv1.GetShipmentRequest{Name: n})
		return err
	}
	list := func(ctx context.Context, req *shippingv1.ListShipmentsRequest) error {
		if req.Parent == "" {
			req.Parent = "users/alice"
		}
		_, err := e.shipping.ListShipments(ctx, req)
		return err
	}
	del := func(ctx context.Context, n string) error {
		_, err := e.shipping.DeleteShipment(ctx, &shippingv1.DeleteShipmentRequest{Name: n})
		return err
	}
	sel := func(ctx context.Context, n, c string) error {
		_, err := e.shipping.SelectCarrier(ctx, &shippingv1.SelectCarrierRequest{Name: n, Carrier: c})
		return err
	}
	watch := func(ctx context.Context, parent, cursor string) error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		w, err := e.shipping.WatchShipments(ctx, &shippingv1.WatchShipmentsRequest{Parent: parent, ResumeCursor: cursor})
		if err != nil {
			return err
		}
		_, err = w.Recv()
		if err == io.EOF {
			return fmt.Errorf("stream ended without an error")
		}
		return err
	}
	register := func(ctx context.Context, puid, number, carrierCode, key string) error {
		if key == "" {
			key = newKey()
		}
		_, err := e.partner.RegisterShipment(ctx, &shippingv1.RegisterShipmentRequest{Parent: partnerParent, PartnerUserId: puid,
			TrackingNumber: number, Carrier: carrierCode, IdempotencyKey: key})
		return err
	}
	firstPage, err := e.shipping.ListShipments(alice, &shippingv1.ListShipmentsRequest{Parent: "users/alice", PageSize: 1})
	if err != nil || firstPage.GetNextPageToken() == "" {
		t.Fatalf("first page = %v, %v", firstPage, err)
	}
	badCursor := base64.RawURLEncoding.EncodeToString([]byte("1:" + e.stream + ":1:1"))

	tests := []struct {
		rpc, name string
		call      func() error
		reason    commonv1.ErrorReason
		field     string
	}{
		// What every public RPC can meet, on one of them each.
		{"CreateShipment", "no token", func() error { return create(noToken, "users/alice", dhlNumber, "", "") }, commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID, ""},
		{"CreateShipment", "a bad token", func() error { return create(badToken, "users/alice", dhlNumber, "", "") }, commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID, ""},
		{"CreateShipment", "an expired token", func() error { return create(expiredToken, "users/alice", dhlNumber, "", "") }, commonv1.ErrorReason_ERROR_REASON_TOKEN_EXPIRED, ""},
		{"CreateShipment", "a purpose the client may not declare", func() error { return create(otherPurpose, "users/alice", dhlNumber, "", "") },
			commonv1.ErrorReason_ERROR_REASON_CLIENT_PURPOSE_NOT_ALLOWED, ""},
		{"CreateShipment", "a revoked consent", func() error { return create(bob, "users/bob", dhlNumber, "", "") }, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, ""},

		{"CreateShipment", "no tracking number", func() error { return create(alice, "users/alice", "", "", "") }, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "shipment.tracking_number"},
		{"CreateShipment", "a wrong check digit", func() error { return create(alice, "users/alice", "1Z999AA10123456785", "", "") },
			commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "shipment.tracking_number"},
		{"CreateShipment", "a receipt of another user", func() error {
			_, err := e.shipping.CreateShipment(alice, &shippingv1.CreateShipmentRequest{Parent: "users/alice", IdempotencyKey: newKey(),
				Shipment: &shippingv1.Shipment{TrackingNumber: dhlNumber, Receipt: "users/bob/receipts/r1"}})
			return err
		}, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, ""},
		{"CreateShipment", "a carrier not supported", func() error { return create(alice, "users/alice", dhlNumber, "acme-parcels", "") },
			commonv1.ErrorReason_ERROR_REASON_CARRIER_UNKNOWN, "shipment.carrier"},
		{"CreateShipment", "a number no carrier issues", func() error { return create(alice, "users/alice", "ABCD-1234", "", "") },
			commonv1.ErrorReason_ERROR_REASON_CARRIER_UNKNOWN, "shipment.tracking_number"},
		{"CreateShipment", "another user", func() error { return create(alice, "users/bob", dhlNumber, "", "") }, commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH, ""},
		{"CreateShipment", "advertising", func() error { return create(advertising, "users/alice", dhlNumber, "", "") }, commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED, ""},
		{"CreateShipment", "a purpose the method does not serve", func() error { return create(notServed, "users/alice", dhlNumber, "", "") },
			commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED, ""},
		{"CreateShipment", "no consent", func() error { return create(carol, "users/carol", dhlNumber, "", "") }, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, ""},
		{"CreateShipment", "a reused key", func() error {
			if err := create(alice, "users/alice", upsOther, "", "key-00000009"); err != nil {
				return err
			}
			return create(alice, "users/alice", dhlNumber, "", "key-00000009")
		}, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED, "idempotency_key"},

		{"GetShipment", "not a shipment name", func() error { return get(alice, "users/alice/shipments/a/b") }, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "name"},
		{"GetShipment", "another user's name", func() error { return get(carol, name) }, commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH, ""},
		{"GetShipment", "advertising", func() error { return get(advertising, name) }, commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED, ""},
		{"GetShipment", "no consent", func() error { return get(carol, "users/carol/shipments/s1") }, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, ""},
		{"GetShipment", "no such shipment", func() error { return get(alice, "users/alice/shipments/nope") }, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, ""},

		{"ListShipments", "page_size over 100", func() error { return list(alice, &shippingv1.ListShipmentsRequest{PageSize: 101}) },
			commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "page_size"},
		{"ListShipments", "an unspecified status", func() error {
			return list(alice, &shippingv1.ListShipmentsRequest{Statuses: []shippingv1.ShipmentStatus{shippingv1.ShipmentStatus_SHIPMENT_STATUS_UNSPECIFIED}})
		}, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "statuses[0]"},
		{"ListShipments", "a made-up page token", func() error { return list(alice, &shippingv1.ListShipmentsRequest{PageToken: "b2Zmc2V0PTI"}) },
			commonv1.ErrorReason_ERROR_REASON_PAGE_TOKEN_INVALID, "page_token"},
		{"ListShipments", "a page token of other filters", func() error {
			return list(alice, &shippingv1.ListShipmentsRequest{PageSize: 1, PageToken: firstPage.GetNextPageToken(),
				Statuses: []shippingv1.ShipmentStatus{shippingv1.ShipmentStatus_SHIPMENT_STATUS_DELIVERED}})
		}, commonv1.ErrorReason_ERROR_REASON_PAGE_TOKEN_INVALID, "page_token"},
		{"ListShipments", "another user", func() error { return list(alice, &shippingv1.ListShipmentsRequest{Parent: "users/bob"}) }, commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH, ""},
		{"ListShipments", "advertising", func() error { return list(advertising, &shippingv1.ListShipmentsRequest{}) }, commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED, ""},
		{"ListShipments", "no consent", func() error { return list(carol, &shippingv1.ListShipmentsRequest{Parent: "users/carol"}) }, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, ""},

		{"DeleteShipment", "not a shipment name", func() error { return del(alice, "users/alice/shipments/") }, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "name"},
		{"DeleteShipment", "another user's name", func() error { return del(carol, name) }, commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH, ""},
		{"DeleteShipment", "advertising", func() error { return del(advertising, name) }, commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED, ""},
		{"DeleteShipment", "no consent", func() error { return del(carol, "users/carol/shipments/s1") }, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, ""},
		{"DeleteShipment", "no such shipment", func() error { return del(alice, "users/alice/shipments/nope") }, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, ""},

		{"SelectCarrier", "not a carrier code", func() error { return sel(alice, amb, "USPS") }, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "carrier"},
		{"SelectCarrier", "not a candidate", func() error { return sel(alice, amb, carrier.UPS) }, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "carrier"},
		{"SelectCarrier", "another user's name", func() error { return sel(carol, amb, carrier.USPS) }, commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH, ""},
		{"SelectCarrier", "advertising", func() error { return sel(advertising, amb, carrier.USPS) }, commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED, ""},
		{"SelectCarrier", "no consent", func() error { return sel(carol, "users/carol/shipments/s1", carrier.USPS) }, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, ""},
		{"SelectCarrier", "no such shipment", func() error { return sel(alice, "users/alice/shipments/nope", carrier.USPS) }, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, ""},
		{"SelectCarrier", "a carrier set already", func() error { return sel(alice, name, carrier.UPS) }, commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION, ""},

		{"WatchShipments", "a bad parent", func() error { return watch(alice, "alice", "") }, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "parent"},
		{"WatchShipments", "a malformed cursor", func() error { return watch(alice, "users/alice", "not-a-cursor") }, commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID, "resume_cursor"},
		{"WatchShipments", "a cursor of a stream since made anew", func() error { return watch(alice, "users/alice", badCursor) }, commonv1.ErrorReason_ERROR_REASON_CURSOR_EXPIRED, ""},
		{"WatchShipments", "another user", func() error { return watch(alice, "users/bob", "") }, commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH, ""},
		{"WatchShipments", "advertising", func() error { return watch(advertising, "users/alice", "") }, commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED, ""},
		{"WatchShipments", "no consent", func() error { return watch(carol, "users/carol", "") }, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, ""},

		{"RegisterShipment", "no token", func() error { return register(t.Context(), "puid-alice-0001", upsOther, "", "") }, commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID, ""},
		{"RegisterShipment", "an expired token", func() error { return register(partnerExpired, "puid-alice-0001", upsOther, "", "") }, commonv1.ErrorReason_ERROR_REASON_TOKEN_EXPIRED, ""},
		{"RegisterShipment", "a user's token", func() error { return register(alice, "puid-alice-0001", upsOther, "", "") }, commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED, ""},
		{"RegisterShipment", "another client's parent", func() error {
			_, err := e.partner.RegisterShipment(partner, &shippingv1.RegisterShipmentRequest{Parent: "clients/other-partner", PartnerUserId: "puid-alice-0001",
				TrackingNumber: upsOther, IdempotencyKey: newKey()})
			return err
		}, commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED, ""},
		{"RegisterShipment", "a bad partner user id", func() error { return register(partner, "short", upsOther, "", "") }, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "partner_user_id"},
		{"RegisterShipment", "a wrong check digit", func() error { return register(partner, "puid-alice-0001", "1Z999AA10123456785", "", "") },
			commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "tracking_number"},
		{"RegisterShipment", "a number no carrier issues", func() error { return register(partner, "puid-alice-0001", "ABCD-1234", "", "") },
			commonv1.ErrorReason_ERROR_REASON_CARRIER_UNKNOWN, "tracking_number"},
		{"RegisterShipment", "no opt-in", func() error { return register(partner, "puid-nobody-01", upsOther, "", "") }, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, ""},
		{"RegisterShipment", "no consent covering shipping", func() error { return register(partner, "puid-carol-0001", upsOther, "", "") },
			commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, ""},
		{"RegisterShipment", "a revoked opt-in", func() error { return register(partner, "puid-dave-00001", upsOther, "", "") }, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, ""},
		{"RegisterShipment", "a reused key", func() error { return register(partner, "puid-alice-0001", upsOther, "", "key-00000001") },
			commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED, "idempotency_key"},
	}
	for _, tt := range tests {
		t.Run(tt.rpc+"/"+tt.name, func(t *testing.T) {
			err := tt.call()
			testkit.RequireReason(t, err, tt.reason)
			if tt.field != "" {
				testkit.RequireFieldViolation(t, err, tt.field)
			}
		})
	}
}

// TestFailuresOfTheServer: the failures no caller provokes.
func TestFailuresOfTheServer(t *testing.T) {
	t.Parallel()
	t.Run("an open watch ends when the server stops", func(t *testing.T) {
		t.Parallel()
		e := start(t, embeddedNATS)
		e.link("alice")
		w := e.watch(t, nil, "alice", "")
		e.srv.Stop()
		_, err := w.s.Recv()
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SERVER_STOPPING)
		if err := <-e.srv.Done; err != nil {
			t.Errorf("Serve returned %v", err)
		}
		e.srv.Done <- nil // for the cleanup
	})
	t.Run("an unexpected error is INTERNAL with an incident id", func(t *testing.T) {
		t.Parallel()
		e := start(t, embeddedNATS)
		e.link("alice")
		if err := e.db.Close(); err != nil {
			t.Fatal(err)
		}
		_, err := e.shipping.GetShipment(e.as(t, "alice"), &shippingv1.GetShipmentRequest{Name: "users/alice/shipments/s1"})
		if md := testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_INTERNAL); md["incident_id"] == "" {
			t.Errorf("metadata = %v, want an incident_id", md)
		}
	})
}
