package app

import (
	"context"
	"fmt"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
)

// Receipts are deleted, for real, when their retention ends (Sweep), when
// the user revokes their opt-in to the partner that sent them, and when
// the user no longer has any consent covering receipts because they
// revoked it (FollowChanges, as changes are committed, and Reconcile,
// for changes that were missed). An issuer's receipts also go when the
// link they were read under ends.

// reconcileBatch is how many users or partner ids Reconcile reads at once.
const reconcileBatch = 200

// Sweep deletes receipts purchased longer ago than Retention, idempotency
// keys older than IdempotencyTTL, and issuer misses older than the issuer
// lookback; it returns how many receipts went.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	now := s.now()
	return s.store.DeleteExpired(ctx, now.Add(-s.cfg.Retention), now.Add(-s.cfg.IdempotencyTTL), now.Add(-s.cfg.IssuerLookback))
}

// FollowChanges acts on every consent change until ctx ends, and
// reconciles as it starts (changes before it subscribed were heard by
// nobody), every ReconcileInterval, and whenever changes may have been
// missed.
func (s *Service) FollowChanges(ctx context.Context) error {
	return consentcheck.Follow(ctx, s.consent.AllChanges, consentcheck.Follower{
		Handle: s.HandleChange, Reconcile: s.Reconcile, Every: s.cfg.ReconcileInterval, What: "receipts", Logger: s.log,
	})
}

// HandleChange acts on one consent change: a revoked partner opt-in
// deletes what the partner sent; a link that ended deletes the issuer
// receipts read under it and, when it was revoked and no consent covering
// receipts is left, every receipt of the user; a link that became VALID
// starts an issuer sync; a resync reconciles.
func (s *Service) HandleChange(ctx context.Context, c Change) error {
	switch {
	case c.Resync:
		return s.Reconcile(ctx)
	case c.PartnerState == consentv1.PartnerOptInState_PARTNER_OPT_IN_STATE_REVOKED:
		_, err := s.store.DeletePartnerReceipts(ctx, c.User, c.Partner, "")
		return err
	case c.Link == "":
		return nil
	case c.LinkState == consentv1.ConsentState_CONSENT_STATE_VALID:
		s.kickIssuer(c.User, true)
		return nil
	case c.LinkState == consentv1.ConsentState_CONSENT_STATE_REVOKED || c.LinkState == consentv1.ConsentState_CONSENT_STATE_EXPIRED:
		if _, err := s.store.DeleteLinkReceipts(ctx, c.User, c.Link); err != nil {
			return err
		}
		if c.LinkState != consentv1.ConsentState_CONSENT_STATE_REVOKED {
			return nil
		}
		links, err := s.consent.CoveringLinks(ctx, c.User, commonv1.Scope_SCOPE_RECEIPTS, commonv1.Purpose_PURPOSE_PURCHASE_HISTORY)
		if err != nil {
			return fmt.Errorf("list links covering receipts: %w", err)
		}
		if len(links) == 0 {
			_, err = s.store.DeleteUserReceipts(ctx, c.User)
		}
		return err
	}
	return nil
}

// Reconcile checks every stored receipt against the consent it needs, for
// changes FollowChanges missed: a partner's receipts go when the user
// revoked the opt-in they were sent under, and a user's receipts go when
// the user's consent covering receipts was revoked. Other refusals
// (expired, never given) leave receipts to their retention. A user or
// partner id the consent service cannot answer for is left for the next
// run; the first such error is returned once the rest are done.
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
			_, err := s.consent.ResolvePartner(ctx, p.Partner, p.PartnerUserID, commonv1.Scope_SCOPE_RECEIPTS)
			switch {
			case apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED):
				_, err = s.store.DeletePartnerReceipts(ctx, p.User, p.Partner, p.PartnerUserID)
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
		users, err := s.store.UsersWithReceipts(ctx, user, reconcileBatch)
		if err != nil {
			return err
		}
		for _, u := range users {
			_, err := s.consent.Decide(ctx, u, access.Need{Scope: commonv1.Scope_SCOPE_RECEIPTS}, commonv1.Purpose_PURPOSE_PURCHASE_HISTORY)
			switch {
			case apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED):
				_, err = s.store.DeleteUserReceipts(ctx, u)
				keep(err)
			case err != nil && !isDenial(err):
				keep(fmt.Errorf("decide consent covering receipts: %w", err))
			}
		}
		if len(users) < reconcileBatch {
			break
		}
		user = users[len(users)-1]
	}
	return firstErr
}
