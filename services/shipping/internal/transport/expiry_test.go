package transport_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/shipping/internal/app"
	"github.com/bankbridge/bankbridge/services/shipping/internal/carrier"
)

// TestExpiry: a shipment whose carrier reports nothing for 30 days (from
// its last event, or its creation) expires, with an event; a delivered one
// stays delivered; a carrier that speaks again brings it back.
func TestExpiry(t *testing.T) {
	t.Parallel()
	e := start(t, embeddedNATS)
	e.link("alice")
	w := e.watch(t, nil, "alice", "")
	quiet := e.create(t, "alice", dhlNumber, "")
	heard := e.create(t, "alice", upsNumber, "")
	done := e.create(t, "alice", upsOther, "")
	at := time.Now().Add(-time.Hour).UTC()
	early := ev(upsOther, delivered, at)
	if p := e.push(t, carrier.UPS, "msg_early", early); p.code != http.StatusOK {
		t.Fatalf("push = %d %s", p.code, p.body)
	}

	e.clock.Add(20 * 24 * time.Hour)
	e.mustPush(t, carrier.UPS, ev(upsNumber, inTransit, at))
	e.clock.Add(11 * 24 * time.Hour) // 31 days after creation, 11 after heard's last event
	for _, want := range []shippingv1.ShipmentEventType{created, created, created, updated, updated} {
		if ev := w.next().GetEvent(); ev.GetType() != want {
			t.Fatalf("event = %v, want %v", ev, want)
		}
	}
	n, err := e.svc.Sweep(t.Context())
	if err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1 expired", n, err)
	}
	for name, want := range map[string]shippingv1.ShipmentStatus{quiet.GetName(): expired, heard.GetName(): inTransit, done.GetName(): delivered} {
		if got := e.get(t, "alice", name); got.GetStatus() != want {
			t.Errorf("%s = %v, want %v", name, got.GetStatus(), want)
		}
	}
	if ev := w.next().GetEvent(); ev.GetType() != updated || ev.GetShipment().GetName() != quiet.GetName() || ev.GetShipment().GetStatus() != expired || ev.GetCheckpoint() != nil {
		t.Errorf("event = %v, want the expiry", ev)
	}
	if n, _ := e.svc.Sweep(t.Context()); n != 0 {
		t.Errorf("a second sweep expired %d", n)
	}

	t.Run("the carrier speaks again", func(t *testing.T) {
		e.mustPush(t, carrier.DHLExpress, ev(dhlNumber, inTransit, time.Now().Add(-time.Minute)))
		if got := e.get(t, "alice", quiet.GetName()); got.GetStatus() != inTransit {
			t.Errorf("after a new checkpoint = %v, want it to follow the checkpoint", got.GetStatus())
		}
	})
	t.Run("push ids are forgotten after a day", func(t *testing.T) {
		// msg_early was 31 days ago; the carrier may use the id again.
		if p := e.push(t, carrier.UPS, "msg_early", early); p.code != http.StatusOK || p.resp.GetDuplicateCount() != 1 {
			t.Errorf("push = %d %s, want accepted, its event a duplicate", p.code, p.body)
		}
	})
}

// TestConsentEnds: shipments go, with deleted events, when the user
// revokes the opt-in to the partner that registered them, and when the
// user revokes the last consent covering shipping, as the change follower
// hears it or reconciles a change it missed.
func TestConsentEnds(t *testing.T) {
	t.Parallel()
	e := start(t, embeddedNATS)
	e.optIn("alice", "puid-alice-0001")
	bobLink := e.link("bob")
	w := e.watch(t, nil, "alice", "")
	own := e.create(t, "alice", dhlNumber, "")
	if _, err := e.partner.RegisterShipment(e.asPartner(t), &shippingv1.RegisterShipmentRequest{Parent: partnerParent, PartnerUserId: "puid-alice-0001",
		TrackingNumber: upsNumber, IdempotencyKey: newKey()}); err != nil {
		t.Fatal(err)
	}
	bobs := e.create(t, "bob", upsNumber, "")
	e.mustPush(t, carrier.UPS, ev(upsNumber, inTransit, time.Now().Add(-time.Hour)))
	var partners string
	for _, want := range []shippingv1.ShipmentEventType{created, created, updated} {
		ev := w.next().GetEvent()
		if ev.GetType() != want {
			t.Fatalf("event = %v, want %v", ev, want)
		}
		if ev.GetShipment().GetPartner() != "" {
			partners = ev.GetShipment().GetName()
		}
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- e.svc.FollowChanges(ctx) }()
	defer func() { cancel(); <-done }()

	e.consent.RevokeOptIn(servertest.Partner, "puid-alice-0001")
	e.consent.Send(app.Change{User: "alice", PartnerOptIn: "users/alice/partnerOptIns/o1", Partner: servertest.Partner, PartnerState: consentv1.PartnerOptInState_PARTNER_OPT_IN_STATE_REVOKED})
	testkit.Eventually(t, func() bool { return e.stored(t, "alice") == 1 }, 10*time.Second)
	if got := e.list(t, "alice", nil); len(got) != 1 || got[0].GetName() != own.GetName() {
		t.Errorf("alice's shipments = %v, want only her own", got)
	}
	if ev := w.next().GetEvent(); ev.GetType() != deleted || ev.GetShipment().GetName() != partners {
		t.Errorf("event = %v, want the partner's shipment deleted", ev)
	}
	// bob tracks the parcel too: its checkpoints stay for him.
	if got := e.get(t, "bob", bobs.GetName()); got.GetStatus() != inTransit || len(got.GetCheckpoints()) != 1 {
		t.Errorf("bob's shipment = %v", got)
	}

	link := "users/alice/links/l-sandbox-0"
	e.consent.SetLinkState(link, consentv1.ConsentState_CONSENT_STATE_REVOKED)
	e.consent.Send(app.Change{User: "alice", Link: link, LinkState: consentv1.ConsentState_CONSENT_STATE_REVOKED})
	testkit.Eventually(t, func() bool { return e.stored(t, "alice") == 0 }, 10*time.Second)

	// A revocation the follower missed: the next resync finds it.
	e.consent.SetLinkState(bobLink, consentv1.ConsentState_CONSENT_STATE_REVOKED)
	e.consent.Send(app.Change{Resync: true})
	testkit.Eventually(t, func() bool { return e.stored(t, "bob") == 0 }, 10*time.Second)
	if n := e.rows(t, "tracking_events"); n != 0 {
		t.Errorf("%d tracking events kept after every shipment went", n)
	}
}
