package app

import (
	"context"
	"fmt"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// Defaults of the limits against linking abuse.
const (
	// DefaultPendingLinkLimit is how many links per user and bank may
	// wait for verification at once: each started a challenge (an SMS, a
	// push) at the bank, so more would let a caller bomb a phone, or try
	// codes on many challenges at once.
	DefaultPendingLinkLimit = 3
	// DefaultScaFailureLimit is how many two-factor codes per user, bank
	// and bank login may fail within DefaultScaFailureWindow, on any
	// links, before no more are taken: a fresh link gives no fresh tries.
	DefaultScaFailureLimit = 5
	// DefaultScaFailureWindow is the window DefaultScaFailureLimit counts in.
	DefaultScaFailureWindow = time.Hour
	// DefaultScaCooldown is how long, once the limit is reached, no code
	// is taken and no link made for that user, bank and login.
	DefaultScaCooldown = time.Hour
)

const (
	// linkStartLease is how long a CreateLink holds its place under the
	// pending-link cap while the bank starts its challenge: longer than
	// any bank call; the place of a call that died frees itself after it.
	linkStartLease = 2 * time.Minute
	// inFlightRetry is when to try again a code refused because every
	// attempt left is being checked by the bank, or because the same
	// request is: about one bank call.
	inFlightRetry = 2 * time.Second
	// claimLease is how long a code's claim counts as being checked:
	// longer than any bank call and settleTimeout; the claim of a call that
	// died lapses after it (its attempt stays spent).
	claimLease = 2 * time.Minute
	// settleTimeout bounds writing down the bank's answer to a code, which
	// goes on when the caller gives up: the attempt was spent at the bank.
	settleTimeout = 10 * time.Second
)

// AbuseStore is what the store offers against linking abuse outside
// transactions.
type AbuseStore interface {
	// ForgetScaFailures deletes the failure counts whose window started
	// before windowCutoff and whose cooldown ended before now, the claims of
	// codes made before claimCutoff, and the lapsed places of CreateLinks,
	// and says how many rows went.
	ForgetScaFailures(ctx context.Context, windowCutoff, claimCutoff, now time.Time) (int, error)
}

// AbuseTx is what a transaction offers against linking abuse.
type AbuseTx interface {
	// PendingLinks locks the user's links to bankID against other
	// CreateLinks until the transaction ends, and counts those waiting for
	// verification at now: RECEIVED links whose challenge has not expired,
	// and the places of CreateLinks still running (LinkStart) but the one
	// of exceptKey.
	PendingLinks(ctx context.Context, user, bankID, exceptKey string, now time.Time) (PendingLinks, error)
	// PutLinkStart stores (or renews) a CreateLink's place under the cap.
	PutLinkStart(ctx context.Context, s LinkStart) error
	// DeleteLinkStart frees a CreateLink's place.
	DeleteLinkStart(ctx context.Context, user, bankID, key string) error
	// ScaFailures reads the count of a user's wrong codes at a bank under
	// a login hash; the zero count (with its ids set) when there is none.
	ScaFailures(ctx context.Context, user, bankID, loginHash string) (ScaFailures, error)
	// LockScaFailures reads the count as ScaFailures does and locks it
	// until the transaction ends, making a zero count if there is none.
	LockScaFailures(ctx context.Context, user, bankID, loginHash string) (ScaFailures, error)
	// SaveScaFailures stores a locked count.
	SaveScaFailures(ctx context.Context, f ScaFailures) error
	// Idempotency returns the record of a key, or ErrNotFound: read in
	// the transaction that claims a code, a retry sees the first answer
	// once it is recorded.
	Idempotency(ctx context.Context, user, operation, key string) (Idempotency, error)
	// ClaimCode records that the code of a VerifyLink with idempotency key
	// key is being checked on a link, first forgetting the link's claims
	// made before lapseBefore; false when that key's claim is recorded
	// already.
	ClaimCode(ctx context.Context, user, linkID, key string, now, lapseBefore time.Time) (bool, error)
	// CodeClaimed reports whether the code of key is being checked on the
	// link: its claim is recorded.
	CodeClaimed(ctx context.Context, user, linkID, key string) (bool, error)
	// ReleaseCode forgets the claim of key, and returns how many of the
	// link's claims made at or after lapseBefore remain: the codes still
	// being checked.
	ReleaseCode(ctx context.Context, user, linkID, key string, lapseBefore time.Time) (int, error)
	// BankChallenge records seen, a challenge bankID started, and returns
	// the bank's challenge shape as stored; with seen nil it only returns
	// it, locked as a write would lock it (known false when the bank
	// started none yet). Both take the same work, so that a decoy costs
	// what a real link costs.
	BankChallenge(ctx context.Context, bankID string, seen *ChallengeShape) (shape ChallengeShape, known bool, err error)
}

// PendingLinks is what counts against the pending-link cap.
type PendingLinks struct {
	Count int
	// FirstEnd is when the first of them stops counting (its challenge
	// expires, or its place lapses); zero when none ever does.
	FirstEnd time.Time
}

// LinkStart is a CreateLink's place under the pending-link cap, from
// before it asks the bank until its link is stored.
type LinkStart struct {
	User, BankID string
	// Key is the CreateLink's idempotency key: its retries share it.
	Key        string
	ExpireTime time.Time
}

// ScaFailures counts the two-factor codes tried, and not passed, by a
// user at a bank under one login within a window.
type ScaFailures struct {
	User, BankID, LoginHash string
	WindowStart             time.Time
	// Failures counts the codes of the window: each counts from when the
	// bank is asked (so codes checked at once count at once) until it
	// passes, or the bank could not answer.
	Failures int
	// CooldownUntil is when codes are taken again; zero or past when they
	// are.
	CooldownUntil time.Time
}

// ChallengeShape is what a bank's challenges look like, as a decoy link
// imitates them.
type ChallengeShape struct {
	Method      ScaMethod
	Instruction string
	RedirectURI string
	// Lifetime is how long after its start a challenge expires.
	Lifetime time.Duration
	// ExpireUnit is the coarsest of a second, a millisecond and a
	// microsecond that the bank's expire times are whole multiples of.
	ExpireUnit      time.Duration
	AttemptsAllowed int
	// UserReference is the pseudonym of the user the last challenge was
	// for.
	UserReference string
	// Shared says the last two challenges, for two different users, had
	// the same instruction and redirect URI: they are the bank's, not one
	// customer's (a bank may name the last digits of the customer's
	// phone), and a decoy may show them.
	Shared bool
}

// shapeOf is the shape of a challenge the bank started at now for a user.
func shapeOf(ch Challenge, userRef string, now time.Time) ChallengeShape {
	unit := time.Microsecond
	for _, u := range []time.Duration{time.Second, time.Millisecond} {
		if ch.ExpireTime.Equal(ch.ExpireTime.Truncate(u)) {
			unit = u
			break
		}
	}
	return ChallengeShape{
		Method: ch.Method, Instruction: ch.Instruction, RedirectURI: ch.RedirectURI,
		Lifetime: ch.ExpireTime.Sub(now), ExpireUnit: unit, AttemptsAllowed: ch.AttemptsAllowed,
		UserReference: userRef,
	}
}

// The instructions of a decoy whose bank's own are not known to be the
// same for everyone.
const (
	decoyOTPInstruction       = "Enter the code your bank sent you."
	decoyDecoupledInstruction = "Approve the request in your bank's app."
	decoyLifetime             = 5 * time.Minute
)

// decoyChallenge is the challenge of a link made with a login the bank
// does not know: shaped as the bank's last challenge (method, lifetime,
// attempts, and its text once it is known to be everyone's), with a
// consent id of its own that the bank never issued. A bank whose text or
// page differs per customer cannot be imitated without showing one
// customer's to another: its decoys get a generic OTP challenge, and such
// a bank should not disclose unknown logins itself (StartSca's contract).
func decoyChallenge(shape ChallengeShape, known bool, now time.Time) Challenge {
	ch := Challenge{
		BankConsentID: newID(), Method: ScaMethodOTP, Instruction: decoyOTPInstruction,
		ExpireTime: now.Add(decoyLifetime),
	}
	if !known {
		return ch
	}
	ch.ExpireTime = now.Add(shape.Lifetime).Truncate(max(shape.ExpireUnit, time.Microsecond))
	ch.AttemptsAllowed = shape.AttemptsAllowed
	switch {
	case shape.Shared:
		ch.Method, ch.Instruction, ch.RedirectURI = shape.Method, shape.Instruction, shape.RedirectURI
	case shape.Method == ScaMethodDecoupled:
		ch.Method, ch.Instruction = ScaMethodDecoupled, decoyDecoupledInstruction
	}
	return ch
}

// checkCooldown refuses with SCA_COOLDOWN while f is cooling down.
func checkCooldown(f ScaFailures, now time.Time) error {
	if f.CooldownUntil.After(now) {
		return errScaCooldown(f.CooldownUntil.Sub(now))
	}
	return nil
}

// countTry counts one more code tried under f at now, opening a new
// window when the last one is over, and starts the cooldown when it
// reaches the limit.
func (s *Service) countTry(f *ScaFailures, now time.Time) {
	if !now.Before(f.WindowStart.Add(s.cfg.ScaFailureWindow)) {
		f.WindowStart, f.Failures = now, 0
	}
	f.Failures++
	if f.Failures >= s.cfg.ScaFailureLimit {
		f.CooldownUntil = now.Add(s.cfg.ScaCooldown)
	}
}

// uncountTry takes back a code counted by countTry that the bank could not
// check, and the cooldown it may have started.
func (s *Service) uncountTry(f *ScaFailures) {
	f.Failures = max(f.Failures-1, 0)
	if f.Failures < s.cfg.ScaFailureLimit {
		f.CooldownUntil = time.Time{}
	}
}

// holdLinkStart takes a place under the pending-link cap for a CreateLink
// of user at bankID, before the bank is asked, unless the user's login
// there is cooling down or the cap is reached.
func (s *Service) holdLinkStart(ctx context.Context, user, bankID, loginHash, key string, now time.Time) error {
	var refusal error
	// Keyed by the place's key, which PendingLinks leaves out of the
	// count: a run after one that committed holds the same place.
	err := s.store.IdempotentTx(ctx, func(tx Tx) error {
		refusal = nil
		f, err := tx.ScaFailures(ctx, user, bankID, loginHash)
		if err != nil {
			return err
		}
		if refusal = checkCooldown(f, now); refusal != nil {
			return nil
		}
		p, err := tx.PendingLinks(ctx, user, bankID, key, now)
		if err != nil {
			return err
		}
		if p.Count >= s.cfg.PendingLinkLimit {
			refusal = errPendingLinksLimit(s.cfg.PendingLinkLimit, p.FirstEnd, now)
			return nil
		}
		return tx.PutLinkStart(ctx, LinkStart{User: user, BankID: bankID, Key: key, ExpireTime: now.Add(linkStartLease)})
	})
	if err != nil {
		return fmt.Errorf("hold a place for the link: %w", err)
	}
	return refusal
}

// releaseLinkStart frees the place of a CreateLink that made no link. A
// place that cannot be freed lapses by itself.
func (s *Service) releaseLinkStart(ctx context.Context, user, bankID, key string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	err := s.store.IdempotentTx(ctx, func(tx Tx) error { return tx.DeleteLinkStart(ctx, user, bankID, key) })
	if err != nil {
		s.log.WarnContext(ctx, "could not free a link's place under the pending-link cap; it lapses by itself", "error", err.Error())
	}
}

func errScaCooldown(retry time.Duration) error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_SCA_COOLDOWN,
		"too many two-factor attempts for this bank login: no more are taken for now",
		apierr.WithRetryAfter(retry))
}

func errPendingLinksLimit(limit int, firstEnd, now time.Time) error {
	opts := []apierr.Option{apierr.WithMetadata("limit", fmt.Sprint(limit))}
	if firstEnd.After(now) {
		opts = append(opts, apierr.WithRetryAfter(firstEnd.Sub(now)))
	}
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_PENDING_LINKS_LIMIT,
		fmt.Sprintf("%d links to this bank are waiting for verification already: verify or revoke one first", limit), opts...)
}
