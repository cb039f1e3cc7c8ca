package app

import (
	"context"
	"errors"
	"fmt"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck"
	"slices"
	"strings"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
)

// Shipments expire when their carrier reports nothing for ExpireAfter
// (Sweep), and are deleted, for real, when the user deletes them, when
// the user revokes the opt-in to the partner that registered them, and
// when the user no longer has any consent covering shipping because they
// revoked it (FollowChanges, as changes are committed, and Reconcile, for
// changes that were missed).

// Batch sizes of the background tasks.
const (
	expireBatch    = 100
	reconcileBatch = 200
)

// Sweep marks shipments that heard nothing from their carrier for
// ExpireAfter (counted from the last carrier event, or the creation when
// none) EXPIRED, each with an updated event; final shipments stay as
// they are. It also forgets push ids older than PushIDTTL and idempotency
// keys older than IdempotencyTTL. It returns how many shipments expired.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	expired := 0
	for {
		read, n, err := s.expireBatch(ctx)
		expired += n
		if err != nil {
			return expired, err
		}
		if read < expireBatch {
			break
		}
	}
	now := s.now()
	return expired, s.store.DeleteExpired(ctx, now.Add(-PushIDTTL), now.Add(-s.cfg.IdempotencyTTL))
}

// expireBatch expires a batch of stale shipments; it returns how many it
// read and how many of them expired (those whose parcel had spoken since,
// unknown to their rows, are caught up instead).
func (s *Service) expireBatch(ctx context.Context) (read, expired int, err error) {
	now := s.stamp()
	// Re-reads the stale shipments: a run after one that committed finds
	// them expired already.
	err = s.store.IdempotentTx(ctx, func(tx Tx) error {
		shs, err := tx.StaleShipments(ctx, now.Add(-s.cfg.ExpireAfter), expireBatch)
		if err != nil {
			return err
		}
		read, expired = len(shs), 0
		evs := make([]Event, 0, len(shs))
		cutoff := now.Add(-s.cfg.ExpireAfter)
		for _, sh := range shs {
			// A row may not have absorbed its parcel's newest events yet.
			if sh.Carrier != "" {
				stored, err := tx.TrackingEvents(ctx, sh.Carrier, sh.TrackingNumber)
				if err != nil {
					return err
				}
				if CatchUp(&sh, stored) && (!sh.ActiveTime().Before(cutoff) || sh.Status.Final()) {
					if err := tx.UpdateShipment(ctx, sh); err != nil {
						return err
					}
					continue
				}
			}
			sh.Status, sh.UpdateTime = StatusExpired, now
			if err := tx.UpdateShipment(ctx, sh); err != nil {
				return err
			}
			if sh, err = withCheckpoints(ctx, tx, sh); err != nil {
				return err
			}
			evs = append(evs, Event{ID: newID(), Type: EventUpdated, User: sh.User, Client: sh.Client, Shipment: sh, Time: now})
			expired++
		}
		return addEvents(ctx, tx, evs)
	})
	if err != nil {
		return 0, 0, err
	}
	return read, expired, nil
}

// FollowChanges acts on every consent change until ctx ends, and
// reconciles as it starts (changes before it subscribed were heard by
// nobody), every ReconcileInterval, and whenever changes may have been
// missed.
func (s *Service) FollowChanges(ctx context.Context) error {
	return consentcheck.Follow(ctx, s.consent.AllChanges, consentcheck.Follower{
		Handle: s.HandleChange, Reconcile: s.Reconcile, Every: s.cfg.ReconcileInterval, What: "shipments", Logger: s.log,
	})
}

// HandleChange acts on one consent change: a revoked partner opt-in
// deletes the shipments the partner registered; a revoked link, when no
// consent covering shipping is left, deletes every shipment of the user;
// a resync reconciles.
func (s *Service) HandleChange(ctx context.Context, c Change) error {
	switch {
	case c.Resync:
		return s.Reconcile(ctx)
	case c.PartnerState == consentv1.PartnerOptInState_PARTNER_OPT_IN_STATE_REVOKED:
		_, err := s.DeleteShipments(ctx, c.User, c.Partner, "")
		return err
	case c.Link != "" && c.LinkState == consentv1.ConsentState_CONSENT_STATE_REVOKED:
		links, err := s.consent.CoveringLinks(ctx, c.User, commonv1.Scope_SCOPE_SHIPPING, commonv1.Purpose_PURPOSE_ORDER_TRACKING)
		if err != nil {
			return fmt.Errorf("list links covering shipping: %w", err)
		}
		if len(links) == 0 {
			_, err = s.DeleteShipments(ctx, c.User, "", "")
		}
		return err
	}
	return nil
}

// DeleteShipments deletes the user's shipments, each with its deleted
// event: every one when partner is "", else those the partner registered
// (only under partnerUserID, unless it is ""). It returns how many went.
func (s *Service) DeleteShipments(ctx context.Context, user, partner, partnerUserID string) (int, error) {
	now := s.stamp()
	n := 0
	// Deletes what it reads: a run after one that committed deletes none.
	err := s.store.IdempotentTx(ctx, func(tx Tx) error {
		shs, err := tx.ShipmentsOf(ctx, user, partner, partnerUserID)
		if err != nil {
			return err
		}
		// Parcels are locked in ascending order, as a push locks them,
		// and the events added last.
		slices.SortStableFunc(shs, func(a, b Shipment) int { return strings.Compare(a.TrackingNumber, b.TrackingNumber) })
		n = 0
		evs := make([]Event, 0, len(shs))
		for _, sh := range shs {
			if err := tx.LockParcel(ctx, sh.TrackingNumber); err != nil {
				return err
			}
			switch err := tx.DeleteShipment(ctx, sh.User, sh.ID); {
			case errors.Is(err, ErrNotFound):
				continue // deleted meanwhile
			case err != nil:
				return err
			}
			n++
			evs = append(evs, deletedEvent(sh, now))
		}
		return addEvents(ctx, tx, evs)
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// Reconcile checks every stored shipment against the consent it needs,
// for changes FollowChanges missed: a partner's registrations go when the
// user revoked the opt-in they were made under, and a user's shipments go
// when the user's consent covering shipping was revoked. Other refusals
// (expired, never given) leave shipments be. A user or partner id the
// consent service cannot answer for is left for the next run; the first
// such error is returned once the rest are done.
func (s *Service) Reconcile(ctx context.Context) error {
	var firstErr error
	keep := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	var after PartnerSubject
	for {
		subs, err := s.store.PartnerSubjects(ctx, after, reconcileBatch)
		if err != nil {
			return err
		}
		for _, p := range subs {
			_, err := s.consent.ResolvePartner(ctx, p.Partner, p.PartnerUserID, commonv1.Scope_SCOPE_SHIPPING)
			switch {
			case apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED):
				_, err = s.DeleteShipments(ctx, p.User, p.Partner, p.PartnerUserID)
				keep(err)
			case err != nil && !isDenial(err):
				keep(fmt.Errorf("resolve partner user: %w", err))
			}
		}
		if len(subs) < reconcileBatch {
			break
		}
		after = subs[len(subs)-1]
	}
	user := ""
	for {
		users, err := s.store.UsersWithShipments(ctx, user, reconcileBatch)
		if err != nil {
			return err
		}
		for _, u := range users {
			_, err := s.consent.Decide(ctx, u, access.Need{Scope: commonv1.Scope_SCOPE_SHIPPING}, commonv1.Purpose_PURPOSE_ORDER_TRACKING)
			switch {
			case apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED):
				_, err = s.DeleteShipments(ctx, u, "", "")
				keep(err)
			case err != nil && !isDenial(err):
				keep(fmt.Errorf("decide consent covering shipping: %w", err))
			}
		}
		if len(users) < reconcileBatch {
			break
		}
		user = users[len(users)-1]
	}
	return firstErr
}
