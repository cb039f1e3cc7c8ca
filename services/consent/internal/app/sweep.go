package app

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// warnBatch is how many links one sweep step warns about at once.
const warnBatch = 100

// SweepResult counts what a sweep did.
type SweepResult struct {
	// Ended counts links flipped to EXPIRED (consent) or REJECTED
	// (challenge) because their time passed.
	Ended int
	// Warned counts expiry warnings (consent.link.expiring) written to the
	// outbox.
	Warned int
	// KeysForgotten counts idempotency keys past their retention.
	KeysForgotten int
	// FailuresForgotten counts counts of wrong codes whose window and
	// cooldown are over, and lapsed places under the pending-link cap.
	FailuresForgotten int
}

// Sweep writes down what time has changed: VALID links past their
// expire_time become EXPIRED, RECEIVED links whose challenge expired
// become REJECTED, an expiry warning (consent.link.expiring) goes to the
// outbox, once per expiry, for each VALID link within ExpiryWarning of its
// end, in the transaction that marks the link warned, and old idempotency keys
// and counts of wrong codes are forgotten. Reads never wait for it: they apply the clock themselves
// (Link.At). Replicas may sweep at once; each warning is still written once.
func (s *Service) Sweep(ctx context.Context) (SweepResult, error) {
	var r SweepResult
	now := s.now()
	n, err := s.store.ExpireLinks(ctx, now)
	if err != nil {
		return r, fmt.Errorf("expire links: %w", err)
	}
	r.Ended = n
	for {
		links, err := s.store.LinksToWarn(ctx, now, now.Add(s.cfg.ExpiryWarning), warnBatch)
		if err != nil {
			return r, fmt.Errorf("find links to warn about: %w", err)
		}
		for _, l := range links {
			warned, err := s.warnExpiry(ctx, l.User, l.ID, now)
			if err != nil {
				return r, err
			}
			if warned {
				r.Warned++
			}
		}
		if len(links) < warnBatch {
			break
		}
	}
	if r.KeysForgotten, err = s.store.DeleteIdempotency(ctx, now.Add(-s.cfg.IdempotencyRetention)); err != nil {
		return r, fmt.Errorf("forget idempotency keys: %w", err)
	}
	if r.FailuresForgotten, err = s.store.ForgetScaFailures(ctx, now.Add(-s.cfg.ScaFailureWindow), now.Add(-claimLease), now); err != nil {
		return r, fmt.Errorf("forget counts of wrong codes: %w", err)
	}
	return r, nil
}

// warnExpiry writes the expiry warning of one link and marks the link
// warned, in one transaction, unless another sweep did it first.
func (s *Service) warnExpiry(ctx context.Context, user, id string, now time.Time) (bool, error) {
	warned := false
	// A run after one that committed finds the link warned and adds nothing.
	err := s.store.IdempotentTx(ctx, func(tx Tx) error {
		warned = false
		l, err := tx.LockLink(ctx, user, id)
		if err != nil {
			return err
		}
		if l.State != StateValid || !l.ExpiryWarnTime.IsZero() || !now.Before(l.ExpireTime) {
			return nil
		}
		l.ExpiryWarnTime = now
		if err := tx.SaveLink(ctx, l); err != nil {
			return err
		}
		err = tx.AddExpiryWarning(ctx, ExpiryWarning{
			EventID:    newID(),
			User:       l.User,
			LinkID:     l.ID,
			Client:     l.Client,
			BankID:     l.BankID,
			Scopes:     l.Scopes,
			ExpireTime: l.ExpireTime,
			EventTime:  now,
		})
		if err != nil {
			return err
		}
		warned = true
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("write expiry warning: %w", err)
	}
	return warned, nil
}
