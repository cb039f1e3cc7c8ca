package transport_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
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

// TestLateCheckpointOnExpiredShipment: a parcel's shipments in two
// states (one user's expired, another's not) both hear of the parcel's
// next checkpoint, each with their own shipment's status: a late
// checkpoint leaves the expired one EXPIRED and moves the other's
// estimate and expiry on; a newer one brings both to its status. It runs
// on SQLite and PostgreSQL.
func TestLateCheckpointOnExpiredShipment(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		e := startOn(t, embeddedNATS, db)
		e.link("alice")
		e.link("bob")
		wa := e.watch(t, nil, "alice", "")
		wb := e.watch(t, nil, "bob", "")
		alices := e.create(t, "alice", upsNumber, "")
		at := time.Now().Add(-3 * time.Hour).UTC().Truncate(time.Millisecond)
		e.mustPush(t, carrier.UPS, ev(upsNumber, inTransit, at))
		for _, want := range []shippingv1.ShipmentEventType{created, updated} {
			if ev := wa.next().GetEvent(); ev.GetType() != want {
				t.Fatalf("alice's event = %v, want %v", ev, want)
			}
		}

		// 31 quiet days: alice's shipment expires. bob starts tracking the
		// parcel then: it is in transit for him.
		e.clock.Add(31 * 24 * time.Hour)
		// A row the parcel's expansion holds is left for the next sweep.
		testkit.Eventually(t, func() bool {
			_, err := e.svc.Sweep(t.Context())
			return err == nil && e.get(t, "alice", alices.GetName()).GetStatus() == expired
		}, 10*time.Second)
		r := wa.next()
		if ev := r.GetEvent(); ev.GetType() != updated || ev.GetShipment().GetStatus() != expired {
			t.Fatalf("alice's event = %v, want the expiry", ev)
		}
		cursor := r.GetCursor()
		bobs := e.create(t, "bob", upsNumber, "")
		if bobs.GetStatus() != inTransit {
			t.Fatalf("bob's new shipment = %v, want it IN_TRANSIT", bobs)
		}
		if ev := wb.next().GetEvent(); ev.GetType() != created {
			t.Fatalf("bob's event = %v, want the creation", ev)
		}

		// A checkpoint from before the last one arrives, late, with an
		// estimate: it changes neither status, and both users hear of it.
		estimate := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Millisecond)
		late := ev(upsNumber, infoReceived, at.Add(-time.Hour))
		late.EstimatedDeliveryTime = timestamppb.New(estimate)
		e.clock.Add(time.Minute)
		e.mustPush(t, carrier.UPS, late)
		for _, tt := range []struct {
			user, name string
			w          watcher
			want       shippingv1.ShipmentStatus
		}{{"alice", alices.GetName(), wa, expired}, {"bob", bobs.GetName(), wb, inTransit}} {
			ev := tt.w.next().GetEvent()
			if s := ev.GetShipment(); ev.GetType() != updated || s.GetName() != tt.name || s.GetStatus() != tt.want ||
				!s.GetEstimatedDeliveryTime().AsTime().Equal(estimate) || ev.GetCheckpoint().GetStatus() != infoReceived || len(ev.GetUpdateMask().GetPaths()) == 0 {
				t.Errorf("%s's live event = %v, want %s %v with the estimate", tt.user, ev, tt.name, tt.want)
			}
			if got := e.get(t, tt.user, tt.name); got.GetStatus() != tt.want || !got.GetEstimatedDeliveryTime().AsTime().Equal(estimate) || len(got.GetCheckpoints()) != 2 {
				t.Errorf("%s's shipment = %v, want %v with the estimate and both checkpoints", tt.user, got, tt.want)
			}
		}
		// bob's parcel was heard of a minute ago, not 31 days ago: it stays.
		if _, err := e.svc.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := e.get(t, "bob", bobs.GetName()); got.GetStatus() != inTransit {
			t.Errorf("bob's shipment after a sweep = %v, want IN_TRANSIT still", got.GetStatus())
		}
		// From where alice's stream stood at the expiry: her own events, whole,
		// EXPIRED (perhaps first the first checkpoint's, written late), up to
		// the late checkpoint's.
		resumed := e.watch(t, nil, "alice", cursor)
		for i := 0; ; i++ {
			ev := resumed.next().GetEvent()
			if s := ev.GetShipment(); s.GetName() != alices.GetName() || s.GetStatus() != expired || ev.GetUpdateMask() != nil || i > 1 {
				t.Fatalf("alice's resumed event = %v, want her shipment, whole, EXPIRED", ev)
			}
			if ev.GetCheckpoint().GetStatus() == infoReceived {
				if s := ev.GetShipment(); len(s.GetCheckpoints()) != 2 || !s.GetEstimatedDeliveryTime().AsTime().Equal(estimate) {
					t.Errorf("alice's resumed event = %v, want both checkpoints and the estimate", ev)
				}
				break
			}
		}

		// The carrier speaks of something newer: both shipments follow it.
		e.clock.Add(time.Minute)
		e.mustPush(t, carrier.UPS, ev(upsNumber, outForDelivery, time.Now().Add(-time.Minute)))
		for user, w := range map[string]watcher{"alice": wa, "bob": wb} {
			if ev := w.next().GetEvent(); ev.GetShipment().GetStatus() != outForDelivery || !ev.GetShipment().GetEstimatedDeliveryTime().AsTime().Equal(estimate) {
				t.Errorf("%s's live event = %v, want OUT_FOR_DELIVERY", user, ev)
			}
		}
		for user, name := range map[string]string{"alice": alices.GetName(), "bob": bobs.GetName()} {
			if got := e.get(t, user, name); got.GetStatus() != outForDelivery || len(got.GetCheckpoints()) != 3 {
				t.Errorf("%s's shipment = %v, want OUT_FOR_DELIVERY", user, got)
			}
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
