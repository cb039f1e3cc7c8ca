package app

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// Defaults of Config.
const (
	// DefaultConsentTTL is how long a consent lasts when the user asks for
	// no shorter time, and the longest it may last: 90 days, after PSD2.
	DefaultConsentTTL = 90 * 24 * time.Hour
	// MaxScaAttempts is how many wrong codes lock a challenge.
	MaxScaAttempts = 5
	// DefaultExpiryWarning is how long before a consent ends the expiry
	// warning event is written.
	DefaultExpiryWarning = 7 * 24 * time.Hour
	// DefaultIdempotencyRetention is how long an idempotency key is kept.
	DefaultIdempotencyRetention = 24 * time.Hour
	// DefaultBankRevokeTimeout bounds the best-effort revocation at the bank.
	DefaultBankRevokeTimeout = 10 * time.Second
	// DefaultAccessBatchSize is the most access log entries one
	// transaction appends.
	DefaultAccessBatchSize = 256
	// DefaultAccessAppendTimeout bounds one transaction of access log
	// appends.
	DefaultAccessAppendTimeout = 5 * time.Second
)

// The operations that take an idempotency key.
const (
	opCreateLink = "CreateLink"
	opVerifyLink = "VerifyLink"
	opRevokeLink = "RevokeLink"
)

// Config tunes the service. Zero fields take their defaults.
type Config struct {
	// ConsentTTL is a consent's validity unless the user asks for less, and
	// the most it may have; at most 90 days.
	ConsentTTL time.Duration
	// ExpiryWarning is how long before its end a consent's expiry warning
	// is written.
	ExpiryWarning time.Duration
	// IdempotencyRetention is how long idempotency keys are remembered.
	IdempotencyRetention time.Duration
	// BankRevokeTimeout bounds each best-effort RevokeConsent at a bank.
	BankRevokeTimeout time.Duration
	// AccessBatchSize is the most access log entries appended in one
	// transaction (group commit).
	AccessBatchSize int
	// AccessBatchWait is how long the oldest pending access log entry
	// waits for others to join its transaction; 0 (the default) writes
	// what is pending at once, and entries that arrive meanwhile share
	// the next transaction. Negative means 0.
	AccessBatchWait time.Duration
	// AccessAppendTimeout bounds one transaction of access log appends.
	AccessAppendTimeout time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives what the service handles itself (a failed revocation
	// at a bank, a sweep that failed); default discards.
	Logger *slog.Logger
	// PageTokens mints and reads the lists' page tokens; every replica
	// needs the same key (the service passes bootstrap's). Default: a
	// random key of this process.
	PageTokens *pagetoken.Tokens
}

// Service is the consent service's logic. It is safe for concurrent use.
type Service struct {
	store    Store
	banks    Banks
	cfg      Config
	log      *slog.Logger
	appender *appender

	// bank revocations run after the caller got its answer
	wg sync.WaitGroup
}

// New returns the service.
func New(store Store, banks Banks, cfg Config) (*Service, error) {
	if cfg.ConsentTTL == 0 {
		cfg.ConsentTTL = DefaultConsentTTL
	}
	if cfg.ConsentTTL < 24*time.Hour || cfg.ConsentTTL > DefaultConsentTTL {
		return nil, fmt.Errorf("consent TTL %s is outside 24h..2160h (1 to 90 days)", cfg.ConsentTTL)
	}
	if cfg.ExpiryWarning <= 0 {
		cfg.ExpiryWarning = DefaultExpiryWarning
	}
	if cfg.IdempotencyRetention <= 0 {
		cfg.IdempotencyRetention = DefaultIdempotencyRetention
	}
	if cfg.BankRevokeTimeout <= 0 {
		cfg.BankRevokeTimeout = DefaultBankRevokeTimeout
	}
	if cfg.AccessBatchSize <= 0 {
		cfg.AccessBatchSize = DefaultAccessBatchSize
	}
	if cfg.AccessBatchWait < 0 {
		cfg.AccessBatchWait = 0
	}
	if cfg.AccessAppendTimeout <= 0 {
		cfg.AccessAppendTimeout = DefaultAccessAppendTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PageTokens == nil {
		cfg.PageTokens = pagetoken.Random()
	}
	return &Service{
		store: store, banks: banks, cfg: cfg, log: cfg.Logger,
		appender: newAppender(store, cfg.AccessBatchSize, cfg.AccessBatchWait, cfg.AccessAppendTimeout),
	}, nil
}

// Close waits for the access log batch being written, and for the
// revocations at banks still in flight, each bounded by BankRevokeTimeout.
func (s *Service) Close() {
	s.appender.close()
	s.wg.Wait()
}

// now is the clock at the database's precision, microseconds.
func (s *Service) now() time.Time { return micro(s.cfg.Now()) }

func micro(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Microsecond)
}

// CreateLinkInput is what CreateLink needs.
type CreateLinkInput struct {
	User     string
	BankID   string
	Scopes   []commonv1.Scope
	Purposes []commonv1.Purpose
	// ExpireTime or TTL ask for a consent shorter than the default; at
	// most one is set.
	ExpireTime time.Time
	TTL        time.Duration
	// LoginHint is handed to the bank, never stored.
	LoginHint       string
	PreferredMethod ScaMethod
	IdempotencyKey  string
}

// CreateLink starts linking the user to a bank: the bank starts its
// challenge, and the link is stored RECEIVED with it. A retry with the same
// key returns the first link; the bank gets the same idempotency key, so it
// starts no second challenge either.
func (s *Service) CreateLink(ctx context.Context, in CreateLinkInput) (Link, error) {
	for _, p := range in.Purposes {
		if p == commonv1.Purpose_PURPOSE_ADVERTISING || p == commonv1.Purpose_PURPOSE_MARKETING {
			return Link{}, errPurposeNotAllowed(p)
		}
	}
	// The login hint is left out: it is never stored, not even hashed.
	fp := fingerprint(in.BankID, enumList(in.Scopes), enumList(in.Purposes),
		in.ExpireTime.UTC().Format(time.RFC3339Nano), in.TTL.String(), in.PreferredMethod.String())
	if link, ok, err := s.replay(ctx, in.User, opCreateLink, in.IdempotencyKey, fp); ok || err != nil {
		return link, err
	}
	bank, err := s.banks.Bank(in.BankID)
	if err != nil {
		return Link{}, err
	}
	now := s.now()
	expire := now.Add(s.cfg.ConsentTTL)
	if in.TTL > 0 && now.Add(in.TTL).Before(expire) {
		expire = now.Add(in.TTL)
	}
	if !in.ExpireTime.IsZero() && in.ExpireTime.Before(expire) {
		expire = micro(in.ExpireTime)
	}
	if !expire.After(now) {
		return Link{}, invalid("link.expire_time", "must be in the future", "expire_time.future")
	}
	ref, err := s.store.UserReference(ctx, in.User, in.BankID, func() string { return "u" + newID() })
	if err != nil {
		return Link{}, fmt.Errorf("user reference: %w", err)
	}
	ch, err := s.banks.StartSca(ctx, in.BankID, StartScaRequest{
		UserReference:   ref,
		LoginHint:       in.LoginHint,
		Scopes:          in.Scopes,
		ValidUntil:      expire,
		PreferredMethod: in.PreferredMethod,
		IdempotencyKey:  bankKey(in.User, opCreateLink, in.IdempotencyKey),
	})
	if err != nil {
		return Link{}, err
	}
	attempts := 0
	if ch.Method == ScaMethodOTP {
		attempts = MaxScaAttempts
		if ch.AttemptsAllowed > 0 {
			attempts = min(attempts, ch.AttemptsAllowed)
		}
	}
	link := Link{
		User:            in.User,
		ID:              newID(),
		BankID:          bank.ID,
		BankDisplayName: bank.DisplayName,
		State:           StateReceived,
		Scopes:          slices.Clone(in.Scopes),
		Purposes:        slices.Clone(in.Purposes),
		ExpireTime:      expire,
		CreateTime:      now,
		UpdateTime:      now,
		BankConsentID:   ch.BankConsentID,
		SCA: SCA{
			Method:            ch.Method,
			Status:            ScaStatusStarted,
			AttemptsRemaining: attempts,
			ExpireTime:        micro(ch.ExpireTime),
			RedirectURI:       ch.RedirectURI,
			Instruction:       ch.Instruction,
		},
	}
	err = s.store.Tx(ctx, func(tx Tx) error {
		err := tx.InsertIdempotency(ctx, Idempotency{
			User: in.User, Operation: opCreateLink, Key: in.IdempotencyKey,
			RequestHash: fp, LinkID: link.ID, CreateTime: now,
		})
		if err != nil {
			return err
		}
		return tx.InsertLink(ctx, link)
	})
	if err != nil {
		return s.writeFailed(ctx, err, in.User, opCreateLink, in.IdempotencyKey, fp)
	}
	return link, nil
}

// writeFailed answers a link write of operation op whose transaction
// failed with err: when a retry with the same key raced it and won, the
// retry's answer is the answer; an unknown link is NOT_FOUND.
func (s *Service) writeFailed(ctx context.Context, err error, user, op, key, fp string) (Link, error) {
	switch {
	case errors.Is(err, ErrIdempotencyKeyTaken):
		link, _, err := s.replay(ctx, user, op, key, fp)
		return link, err
	case errors.Is(err, ErrNotFound):
		return Link{}, errLinkNotFound()
	}
	return Link{}, fmt.Errorf("%s: %w", op, err)
}

// replay answers a request whose idempotency key was seen before: ok is
// true when it was, and link and err are then the first answer (with the
// link as it reads now).
func (s *Service) replay(ctx context.Context, user, op, key, fp string) (Link, bool, error) {
	rec, err := s.store.Idempotency(ctx, user, op, key)
	if errors.Is(err, ErrNotFound) {
		return Link{}, false, nil
	}
	if err != nil {
		return Link{}, false, fmt.Errorf("read idempotency key: %w", err)
	}
	if rec.RequestHash != fp {
		return Link{}, true, errKeyReused()
	}
	link, err := s.store.Link(ctx, user, rec.LinkID)
	if err != nil {
		return Link{}, true, fmt.Errorf("read link of idempotency key: %w", err)
	}
	return link.At(s.now()), true, replayError(rec)
}

// VerifyLinkInput is what VerifyLink needs.
type VerifyLinkInput struct {
	User, LinkID string
	// Code is the one-time code, for OTP; never stored or logged.
	Code           string
	IdempotencyKey string
}

// verifyOutcome is what the bank's answer means for the link.
type verifyOutcome int

const (
	outcomePending verifyOutcome = iota
	outcomeFinalised
	outcomeDeclined
	outcomeWrongCode
	outcomeLocked
	outcomeExpired
)

// VerifyLink completes (or polls) a RECEIVED link's challenge. A right
// code makes the link VALID and revokes the user's older VALID link to the
// same bank; a wrong one costs an attempt, and the fifth locks the
// challenge and rejects the link. An answer the bank could not give
// (BANK_UNAVAILABLE and the like) costs nothing and records nothing, so a
// retry asks the bank again.
func (s *Service) VerifyLink(ctx context.Context, in VerifyLinkInput) (Link, error) {
	fp := fingerprint(in.LinkID, in.Code)
	if link, ok, err := s.replay(ctx, in.User, opVerifyLink, in.IdempotencyKey, fp); ok || err != nil {
		return link, err
	}
	stored, err := s.store.Link(ctx, in.User, in.LinkID)
	if errors.Is(err, ErrNotFound) {
		return Link{}, errLinkNotFound()
	}
	if err != nil {
		return Link{}, fmt.Errorf("read link: %w", err)
	}
	now := s.now()
	current := stored.At(now)
	var (
		outcome  verifyOutcome
		result   VerifyScaResult
		bankLeft = -1 // the bank's attempts_remaining, when it says
	)
	switch {
	case current.State == StateRejected && stored.State == StateReceived:
		outcome = outcomeExpired // the challenge timed out here first
	case current.State != StateReceived:
		return Link{}, errLinkNotPending(current.State)
	case current.SCA.Method == ScaMethodOTP && in.Code == "":
		return Link{}, errCodeRequired()
	case current.SCA.Method != ScaMethodOTP && in.Code != "":
		return Link{}, errCodeNotExpected(current.SCA.Method)
	default:
		result, err = s.banks.VerifySca(ctx, current.BankID, VerifyScaRequest{
			BankConsentID:  current.BankConsentID,
			Code:           in.Code,
			IdempotencyKey: bankKey(in.User, opVerifyLink, in.IdempotencyKey),
		})
		switch reason := apierr.Reason(err); {
		case err == nil && result.Status == ScaStatusFinalised:
			outcome = outcomeFinalised
		case err == nil && result.Status == ScaStatusFailed:
			outcome = outcomeDeclined
		case err == nil:
			outcome = outcomePending
		case reason == commonv1.ErrorReason_ERROR_REASON_SCA_FAILED:
			outcome = outcomeWrongCode
			if info := apierr.Info(err); info != nil {
				if n, perr := strconv.Atoi(info.GetMetadata()["attempts_remaining"]); perr == nil && n >= 0 {
					bankLeft = n
				}
			}
		case reason == commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED:
			outcome = outcomeLocked
		case reason == commonv1.ErrorReason_ERROR_REASON_SCA_EXPIRED,
			// The bank forgot the challenge; older adapters say NOT_FOUND.
			reason == commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK,
			reason == commonv1.ErrorReason_ERROR_REASON_NOT_FOUND:
			outcome = outcomeExpired
		default:
			return Link{}, err
		}
	}

	var (
		link       Link
		answer     error
		superseded []Link
	)
	err = s.store.Tx(ctx, func(tx Tx) error {
		link, answer, superseded = Link{}, nil, nil
		l, err := tx.LockLink(ctx, in.User, in.LinkID)
		if err != nil {
			return err
		}
		if l.State != StateReceived {
			// Changed under us (revoked, or verified by another key).
			answer = errLinkNotPending(l.At(now).State)
			link = l
			return nil
		}
		rec := Idempotency{
			User: in.User, Operation: opVerifyLink, Key: in.IdempotencyKey,
			RequestHash: fp, LinkID: l.ID, CreateTime: now,
		}
		l.UpdateTime = now
		switch outcome {
		case outcomePending:
		case outcomeFinalised:
			if superseded, err = s.supersede(ctx, tx, l, now); err != nil {
				return err
			}
			l.State, l.VerifyTime = StateValid, now
			l.SCA.Status, l.SCA.AttemptsRemaining = ScaStatusFinalised, 0
			if result.BankConsentID != "" {
				l.BankConsentID = result.BankConsentID
			}
			if vu := micro(result.ValidUntil); !vu.IsZero() && vu.Before(l.ExpireTime) {
				l.ExpireTime = vu
			}
		case outcomeDeclined:
			l.State = StateRejected
			l.SCA.Status, l.SCA.AttemptsRemaining = ScaStatusFailed, 0
		case outcomeWrongCode:
			l.SCA.FailedAttempts++
			left := MaxScaAttempts - l.SCA.FailedAttempts
			if bankLeft >= 0 {
				left = min(left, bankLeft)
			}
			if left > 0 {
				l.SCA.AttemptsRemaining = left
				answer = errScaFailed(left)
				rec.ErrReason, rec.AttemptsRemaining = reasonScaFailed, left
				break
			}
			fallthrough
		case outcomeLocked:
			l.State = StateRejected
			l.SCA.Status, l.SCA.AttemptsRemaining = ScaStatusLocked, 0
			answer = errScaLocked()
			rec.ErrReason = reasonScaLocked
		case outcomeExpired:
			l.State = StateRejected
			l.SCA.Status, l.SCA.AttemptsRemaining = ScaStatusExpired, 0
			answer = errScaExpired()
			rec.ErrReason = reasonScaExpired
		}
		if err := tx.InsertIdempotency(ctx, rec); err != nil {
			return err
		}
		link = l
		return tx.SaveLink(ctx, l)
	})
	if err != nil {
		return s.writeFailed(ctx, err, in.User, opVerifyLink, in.IdempotencyKey, fp)
	}
	for _, old := range superseded {
		s.revokeAtBank(ctx, old)
	}
	return link.At(now), answer
}

// supersede ends the user's other VALID links to the bank of l, which is
// about to become VALID: a user holds at most one VALID link per bank. It
// returns the links it revoked, for the bank to be told.
func (s *Service) supersede(ctx context.Context, tx Tx, l Link, now time.Time) ([]Link, error) {
	others, err := tx.LockValidLinks(ctx, l.User, l.BankID)
	if err != nil {
		return nil, err
	}
	var revoked []Link
	for _, o := range others {
		if o.ID == l.ID {
			continue
		}
		o.UpdateTime = now
		if o.At(now).State == StateExpired {
			o.State = StateExpired
		} else {
			o.State, o.RevokeTime = StateRevoked, now
			revoked = append(revoked, o)
		}
		if err := tx.SaveLink(ctx, o); err != nil {
			return nil, err
		}
	}
	return revoked, nil
}

// RevokeLinkInput is what RevokeLink needs.
type RevokeLinkInput struct {
	User, LinkID   string
	IdempotencyKey string
}

// RevokeLink ends a link's consent at once: a VALID link becomes REVOKED,
// a RECEIVED one too, its challenge cancelled. A link that already ended is
// returned as it is. The bank is then asked to delete its side of the
// consent, without waiting for it.
func (s *Service) RevokeLink(ctx context.Context, in RevokeLinkInput) (Link, error) {
	fp := fingerprint(in.LinkID)
	if link, ok, err := s.replay(ctx, in.User, opRevokeLink, in.IdempotencyKey, fp); ok || err != nil {
		return link, err
	}
	now := s.now()
	var (
		link    Link
		revoked bool
	)
	err := s.store.Tx(ctx, func(tx Tx) error {
		link, revoked = Link{}, false
		l, err := tx.LockLink(ctx, in.User, in.LinkID)
		if err != nil {
			return err
		}
		err = tx.InsertIdempotency(ctx, Idempotency{
			User: in.User, Operation: opRevokeLink, Key: in.IdempotencyKey,
			RequestHash: fp, LinkID: l.ID, CreateTime: now,
		})
		if err != nil {
			return err
		}
		var changed bool
		if link, changed, revoked = revoke(l, now, false); !changed {
			return nil
		}
		return tx.SaveLink(ctx, link)
	})
	if err != nil {
		return s.writeFailed(ctx, err, in.User, opRevokeLink, in.IdempotencyKey, fp)
	}
	if revoked {
		s.revokeAtBank(ctx, link)
	}
	return link.At(now), nil
}

// ReportBankRevocation records that the bank no longer knows, or has
// revoked, the consent behind a link: a VALID or RECEIVED link becomes
// REVOKED, marked RevokedByBank, its challenge (if running) cancelled, and
// watchers hear of it once committed. The bank is not asked to revoke:
// it has no consent left. A link that has already ended is returned as it
// is (an end that the clock alone made is written down), so repeated
// reports are safe. An unknown link is NOT_FOUND.
func (s *Service) ReportBankRevocation(ctx context.Context, user, id string) (Link, error) {
	now := s.now()
	var link Link
	err := s.store.Tx(ctx, func(tx Tx) error {
		l, err := tx.LockLink(ctx, user, id)
		if err != nil {
			return err
		}
		var changed bool
		if link, changed, _ = revoke(l, now, true); !changed {
			return nil
		}
		return tx.SaveLink(ctx, link)
	})
	if errors.Is(err, ErrNotFound) {
		return Link{}, errLinkNotFound()
	}
	if err != nil {
		return Link{}, fmt.Errorf("record revocation by the bank: %w", err)
	}
	return link.At(now), nil
}

// revoke ends l at now: a VALID or RECEIVED link becomes REVOKED (byBank
// marks a revocation the bank made), its challenge cancelled if running; a
// link that ended on its own is written down as it reads now. changed says
// whether l must be saved, revoked whether this call ended it.
func revoke(l Link, now time.Time, byBank bool) (out Link, changed, revoked bool) {
	current := l.At(now)
	switch {
	case current.State == StateValid || current.State == StateReceived:
		if current.State == StateReceived {
			l.SCA.Status, l.SCA.AttemptsRemaining = ScaStatusFailed, 0
		}
		l.State, l.RevokeTime, l.UpdateTime, l.RevokedByBank = StateRevoked, now, now, byBank
		return l, true, true
	case current.State != l.State:
		current.UpdateTime = now
		return current, true, false
	}
	return l, false, false
}

// revokeAtBank asks the bank to delete its side of the link's consent, in
// the background: bankbridge stopped serving the data already, so the
// caller does not wait, and a failure is logged for operators.
func (s *Service) revokeAtBank(ctx context.Context, l Link) {
	if l.BankConsentID == "" {
		return
	}
	ctx = context.WithoutCancel(ctx) // keeps the trace, not the caller's deadline
	s.wg.Go(func() {
		ctx, cancel := context.WithTimeout(ctx, s.cfg.BankRevokeTimeout)
		defer cancel()
		if err := s.banks.RevokeConsent(ctx, l.BankID, l.BankConsentID); err != nil {
			s.log.WarnContext(ctx, "bank did not confirm the revocation; it will expire at the bank",
				slog.String(telemetry.AttrBankID, l.BankID),
				slog.String(telemetry.AttrReason, apierr.ReasonString(apierr.Reason(err))))
		}
	})
}

// GetLink returns one of the user's links as it reads now.
func (s *Service) GetLink(ctx context.Context, user, id string) (Link, error) {
	l, err := s.store.Link(ctx, user, id)
	if errors.Is(err, ErrNotFound) {
		return Link{}, errLinkNotFound()
	}
	if err != nil {
		return Link{}, fmt.Errorf("read link: %w", err)
	}
	return l.At(s.now()), nil
}

// ListLinksInput is what ListLinks needs.
type ListLinksInput struct {
	User string
	// State and BankID filter; zero values match every link.
	State     State
	BankID    string
	PageSize  int
	PageToken string
}

// ListLinks returns one page of the user's links, newest first, and the
// token of the next page ("" on the last).
func (s *Service) ListLinks(ctx context.Context, in ListLinksInput) ([]Link, string, error) {
	now := s.now()
	links, next, err := pagetoken.ReadPage(s.cfg.PageTokens, linksList(in), in.PageSize, in.PageToken,
		func(after *pagetoken.Position, limit int) ([]Link, error) {
			var cursor *LinkCursor
			if after != nil {
				cursor = &LinkCursor{CreateTime: after.Time, ID: after.ID}
			}
			links, err := s.store.ListLinks(ctx, in.User, LinkFilter{State: in.State, BankID: in.BankID, Now: now}, cursor, limit)
			if err != nil {
				return nil, fmt.Errorf("list links: %w", err)
			}
			return links, nil
		},
		func(l Link) pagetoken.Position { return pagetoken.Position{Time: l.CreateTime, ID: l.ID} })
	if err != nil {
		return nil, "", err
	}
	for i := range links {
		links[i] = links[i].At(now)
	}
	return links, next, nil
}

// fingerprint hashes a request's fields, each length-prefixed so that no
// two different requests collide.
func fingerprint(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func enumList[E interface{ String() string }](values []E) string {
	names := make([]string, len(values))
	for i, v := range values {
		names[i] = v.String()
	}
	return fmt.Sprint(names)
}

// bankKey is the idempotency key sent to the bank for a caller's key: the
// same for every retry, different for every user and operation, and
// telling the bank nothing about the user.
func bankKey(user, op, key string) string {
	sum := sha256.Sum256([]byte(user + "\x00" + op + "\x00" + key))
	return "bb" + hex.EncodeToString(sum[:20])
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID returns a random id of 26 lowercase letters and digits.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])
}

// WatchChanges returns a channel of every committed change of a link's
// state from now on, for every user. It is closed when ctx ends, when the
// watcher falls behind, or when changes may have been missed; the watcher
// then reconnects and trusts nothing it cached.
func (s *Service) WatchChanges(ctx context.Context) <-chan Change { return s.store.Subscribe(ctx) }
