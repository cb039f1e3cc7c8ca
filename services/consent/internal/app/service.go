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
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
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
	// DefaultBankRevokeTimeout bounds one attempt of a revocation at the
	// bank; a failed attempt is retried later.
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
	opCreateLink    = "CreateLink"
	opVerifyLink    = "VerifyLink"
	opRevokeLink    = "RevokeLink"
	opReconfirmLink = "ReconfirmLink"
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
	// BankRevokeTimeout bounds each attempt of RevokeConsent at a bank.
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
	// MeterProvider receives the access log's append backlog
	// (MetricAccessLogPending); default none.
	MeterProvider metric.MeterProvider
	// HeadSigner signs the access log's chain heads (a Vault Transit key).
	// Without one heads are left unsigned and VerifyChain cannot check a
	// signature: for tests of other things only.
	HeadSigner HeadSigner
	// HeadSignGrace is how long an access log entry may await its
	// signature (while Vault is down) before VerifyChain fails and
	// SignPendingHeads refuses to sign it; default DefaultHeadSignGrace.
	HeadSignGrace time.Duration
	// HeadSignTimeout bounds the signing request of a batch of appends;
	// default DefaultHeadSignTimeout.
	HeadSignTimeout time.Duration
	// HeadSignDelay, when positive, signs chain heads after the appends
	// that moved them commit, gathering the heads moved within
	// HeadSignDelay into one signing request, so that no append waits for
	// Vault; zero (the default) signs each batch's heads in its
	// transaction. Either way a head not signed within HeadSignGrace fails
	// verification.
	HeadSignDelay time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives what the service handles itself (a revocation a
	// bank refused for good, a sweep that failed); default discards.
	Logger *slog.Logger
	// PageTokens mints and reads the lists' page tokens; every replica
	// needs the same key (the service passes bootstrap's). Default: a
	// random key of this process.
	PageTokens *pagetoken.Tokens
	// Partners are the client ids of the partners users may opt in to
	// (the kit's --partner-clients); none by default.
	Partners map[string]bool
	// Keys returns the secret keys in force (request fingerprints, login
	// hashes), the same on every replica; it is called on every request,
	// so it must be cheap. Default: random keys of this process, whose
	// fingerprints do not outlive it.
	Keys func() Keys
	// PendingLinkLimit is how many links per user and bank may wait for
	// verification at once; default DefaultPendingLinkLimit.
	PendingLinkLimit int
	// ScaFailureLimit is how many two-factor codes per user, bank and bank
	// login may fail within ScaFailureWindow, across links, before none is
	// taken for ScaCooldown; defaults DefaultScaFailureLimit,
	// DefaultScaFailureWindow, DefaultScaCooldown.
	ScaFailureLimit  int
	ScaFailureWindow time.Duration
	ScaCooldown      time.Duration
}

// Service is the consent service's logic. It is safe for concurrent use.
type Service struct {
	store    Store
	banks    Banks
	cfg      Config
	log      *slog.Logger
	appender *appender
	heads    *headSigning
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
	if cfg.HeadSignGrace <= 0 {
		cfg.HeadSignGrace = DefaultHeadSignGrace
	}
	if cfg.HeadSignTimeout <= 0 {
		cfg.HeadSignTimeout = DefaultHeadSignTimeout
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
	cfg.Partners = partners(cfg.Partners)
	if cfg.Keys == nil {
		keys := randomKeys()
		cfg.Keys = func() Keys { return keys }
	}
	if cfg.PendingLinkLimit <= 0 {
		cfg.PendingLinkLimit = DefaultPendingLinkLimit
	}
	if cfg.ScaFailureLimit <= 0 {
		cfg.ScaFailureLimit = DefaultScaFailureLimit
	}
	if cfg.ScaFailureWindow <= 0 {
		cfg.ScaFailureWindow = DefaultScaFailureWindow
	}
	if cfg.ScaCooldown <= 0 {
		cfg.ScaCooldown = DefaultScaCooldown
	}
	heads := newHeadSigning(cfg.HeadSigner, cfg.HeadSignTimeout, cfg.Logger)
	s := &Service{
		store: store, banks: banks, cfg: cfg, log: cfg.Logger, heads: heads,
		appender: newAppender(store, heads, cfg.AccessBatchSize, cfg.AccessBatchWait, cfg.AccessAppendTimeout),
	}
	if cfg.HeadSigner != nil && cfg.HeadSignDelay > 0 {
		s.appender.post = newPostSigner(s, cfg.HeadSignDelay)
	}
	if cfg.MeterProvider != nil {
		if err := observeBacklog(cfg.MeterProvider, s.appender); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Close waits for the access log batch being written, and for the chain
// heads awaiting their signature after it.
func (s *Service) Close() {
	s.appender.close()
	if s.appender.post != nil {
		s.appender.post.close()
	}
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
	User string
	// Client is the client (product) the user links through; its webhooks
	// get the link's events.
	Client   string
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
// starts no second challenge either. A login the bank knows no customer by
// gets a decoy link, indistinguishable from a real one (see below). It is
// refused while the user's login at the bank cools down after too many
// wrong codes (SCA_COOLDOWN), and when PendingLinkLimit of the user's links
// to the bank wait for verification already (PENDING_LINKS_LIMIT).
func (s *Service) CreateLink(ctx context.Context, in CreateLinkInput) (Link, error) {
	for _, p := range in.Purposes {
		if p == commonv1.Purpose_PURPOSE_ADVERTISING || p == commonv1.Purpose_PURPOSE_MARKETING {
			return Link{}, errPurposeNotAllowed(p)
		}
	}
	// Every field of the request (the login hint too: the fingerprint is
	// keyed, so it gives the login away no more than login_hash does). The
	// user and the client are the key's scope; the key is the key.
	fps := s.fingerprints(in.BankID, enumList(in.Scopes), enumList(in.Purposes),
		in.ExpireTime.UTC().Format(time.RFC3339Nano), in.TTL.String(), in.PreferredMethod.String(), in.LoginHint)
	if link, ok, err := s.replay(ctx, in.User, opCreateLink, in.IdempotencyKey, fps); ok || err != nil {
		return link, err
	}
	release, prior, err := s.awaitKey(ctx, in.User, opCreateLink, in.IdempotencyKey, fps)
	if release == nil {
		return prior, err
	}
	defer release()
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
	ref, err := s.store.UserReference(ctx, in.User, bank.ID, func() string { return "u" + newID() })
	if err != nil {
		return Link{}, fmt.Errorf("user reference: %w", err)
	}
	loginHash := s.loginHash(in.LoginHint)
	startKey := in.IdempotencyKey
	if startKey == "" {
		startKey = newID()
	}
	// The place is taken before the bank is asked, so that calls made at
	// once cannot all pass the cap and each start a challenge.
	if err := s.holdLinkStart(ctx, in.User, bank.ID, loginHash, startKey, now); err != nil {
		return Link{}, err
	}
	ch, err := s.banks.StartSca(ctx, in.BankID, StartScaRequest{
		UserReference:   ref,
		LoginHint:       in.LoginHint,
		Scopes:          in.Scopes,
		ValidUntil:      expire,
		PreferredMethod: in.PreferredMethod,
		IdempotencyKey:  bankKey(in.User, opCreateLink, in.IdempotencyKey),
	})
	// A bank that knows no customer by the login says so (NOT_FOUND). The
	// answer must not, or CreateLink would tell anyone which logins exist:
	// the link is made all the same, as a decoy whose challenge is shaped
	// as the bank's last one and which no code passes. The time must not
	// tell either, so both paths do the same work: the bank was asked in
	// both, and below both run the same statements in one transaction (the
	// bank's challenge shape written, or read under the same lock; the
	// key; the link; the place freed) and build the answer with the same
	// code. Only the bank's own time to answer may differ, which is the
	// bank's to even out (StartSca's contract lets it start a challenge
	// that cannot succeed instead).
	decoy := apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
	if err != nil && !decoy {
		s.releaseLinkStart(ctx, in.User, bank.ID, startKey)
		return Link{}, err
	}
	var link Link
	// Keyed: a run after one that committed finds the key taken, and the
	// caller gets the first link (writeFailed replays it).
	err = s.store.IdempotentTx(ctx, func(tx Tx) error {
		var seen *ChallengeShape
		if !decoy {
			shape := shapeOf(ch, ref, now)
			seen = &shape
		}
		shape, known, err := tx.BankChallenge(ctx, bank.ID, seen)
		if err != nil {
			return err
		}
		started := ch
		if decoy {
			started = decoyChallenge(shape, known, now)
		}
		link = Link{
			User:            in.User,
			ID:              newID(),
			Client:          in.Client,
			BankID:          bank.ID,
			BankDisplayName: bank.DisplayName,
			State:           StateReceived,
			Scopes:          slices.Clone(in.Scopes),
			Purposes:        slices.Clone(in.Purposes),
			ExpireTime:      expire,
			CreateTime:      now,
			UpdateTime:      now,
			BankConsentID:   started.BankConsentID,
			SCA:             startedSCA(started),
			LoginHash:       loginHash,
			Decoy:           decoy,
		}
		err = tx.InsertIdempotency(ctx, Idempotency{
			User: in.User, Operation: opCreateLink, Key: in.IdempotencyKey,
			RequestHash: fps[0], LinkID: link.ID, CreateTime: now,
		})
		if err != nil {
			return err
		}
		if err := tx.InsertLink(ctx, link); err != nil {
			return err
		}
		return tx.DeleteLinkStart(ctx, in.User, bank.ID, startKey)
	})
	if err != nil {
		s.releaseLinkStart(ctx, in.User, bank.ID, startKey)
		return s.writeFailed(ctx, err, in.User, opCreateLink, in.IdempotencyKey, fps)
	}
	return link, nil
}

// startedSCA is the link's record of a challenge the bank started.
func startedSCA(ch Challenge) SCA {
	attempts := 0
	if ch.Method == ScaMethodOTP {
		attempts = MaxScaAttempts
		if ch.AttemptsAllowed > 0 {
			attempts = min(attempts, ch.AttemptsAllowed)
		}
	}
	return SCA{
		Method:            ch.Method,
		Status:            ScaStatusStarted,
		AttemptsRemaining: attempts,
		ExpireTime:        micro(ch.ExpireTime),
		RedirectURI:       ch.RedirectURI,
		Instruction:       ch.Instruction,
	}
}

// writeFailed answers a link write of operation op whose transaction
// failed with err: when a retry with the same key raced it and won, the
// retry's answer is the answer; an unknown link is NOT_FOUND.
func (s *Service) writeFailed(ctx context.Context, err error, user, op, key string, fps []string) (Link, error) {
	switch {
	case errors.Is(err, ErrIdempotencyKeyTaken):
		link, _, err := s.replay(ctx, user, op, key, fps)
		return link, err
	case errors.Is(err, ErrNotFound):
		return Link{}, errLinkNotFound()
	}
	return Link{}, fmt.Errorf("%s: %w", op, err)
}

// replay answers a request whose idempotency key was seen before: ok is
// true when it was, and link and err are then the first answer (with the
// link as it reads now). fps are the request's fingerprints under every
// code key, the stored one matching any.
func (s *Service) replay(ctx context.Context, user, op, key string, fps []string) (Link, bool, error) {
	rec, err := s.store.Idempotency(ctx, user, op, key)
	if errors.Is(err, ErrNotFound) {
		return Link{}, false, nil
	}
	if err != nil {
		return Link{}, false, fmt.Errorf("read idempotency key: %w", err)
	}
	if !matches(rec.RequestHash, fps) {
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

// VerifyLink completes (or polls) a RECEIVED link's challenge, or the
// reconfirmation challenge of a VALID link (see ReconfirmLink). A right
// code makes a RECEIVED link VALID and revokes the user's older VALID link
// to the same bank; a wrong one costs an attempt, and the fifth locks the
// challenge and rejects the link. A reconfirmation challenge never changes
// the link's state: passed, it moves the link's expiry to what the bank
// granted; failed, locked or expired, it leaves the link as it was. An
// answer the bank could not give (BANK_UNAVAILABLE and the like) costs
// nothing and records nothing, so a retry asks the bank again.
//
// A code takes its attempt in a transaction of its own, with the link
// locked, before the bank is asked (claim), and the bank's answer is
// written down in another (settle): calls made at once never send the
// bank more codes than the challenge has attempts left, nor more than the
// user's login may fail at the bank (ScaFailureLimit, across links). No
// lock is held while the bank is asked.
func (s *Service) VerifyLink(ctx context.Context, in VerifyLinkInput) (Link, error) {
	fps := s.fingerprints(in.LinkID, in.Code)
	if link, ok, err := s.replay(ctx, in.User, opVerifyLink, in.IdempotencyKey, fps); ok || err != nil {
		return link, err
	}
	release, prior, err := s.awaitKey(ctx, in.User, opVerifyLink, in.IdempotencyKey, fps)
	if release == nil {
		return prior, err
	}
	defer release()
	now := s.now()
	c, err := s.claimAttempt(ctx, in, fps[0], now)
	if err != nil {
		return s.writeFailed(ctx, err, in.User, opVerifyLink, in.IdempotencyKey, fps)
	}
	if c.answered {
		// The same request was answered since: that is the answer.
		link, _, err := s.replay(ctx, in.User, opVerifyLink, in.IdempotencyKey, fps)
		return link, err
	}
	if c.done {
		return c.link.At(now), c.answer
	}
	result, err := s.banks.VerifySca(ctx, c.link.BankID, VerifyScaRequest{
		BankConsentID:  c.link.BankConsentID,
		Code:           in.Code,
		IdempotencyKey: bankKey(in.User, opVerifyLink, in.IdempotencyKey),
	})
	outcome, bankLeft, err := outcomeOf(result, err, c.link.Decoy)
	if err != nil {
		s.giveBack(ctx, in, c)
		return Link{}, err
	}
	// The attempt is spent at the bank: what it answered is written down
	// even when the caller has given up.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	var (
		link   Link
		answer error
	)
	// Not run again after a lost connection: when the lost run committed,
	// the second finds the key taken, and the attempt the bank spent would
	// be given back below, a free code for whoever guesses.
	err = s.store.Tx(sctx, func(tx Tx) error {
		link, answer = Link{}, nil
		l, err := tx.LockLink(sctx, in.User, in.LinkID)
		if err != nil {
			return err
		}
		inFlight := 0 // the other codes still being checked
		if c.claimed {
			if inFlight, err = tx.ReleaseCode(sctx, l.User, l.ID, c.key, now.Add(-claimLease)); err != nil {
				return err
			}
		}
		if !pending(l) || (l.State == StateValid && l.At(now).State != StateValid) {
			// Ended under us: another code locked it, or it was verified
			// by another key, revoked or replaced.
			link = l
			answer = errLinkNotPending(l.At(now).State)
			if (outcome == outcomeWrongCode || outcome == outcomeLocked) && l.SCA.Status == ScaStatusLocked {
				answer = errScaLocked()
			}
			return nil
		}
		rec := Idempotency{
			User: in.User, Operation: opVerifyLink, Key: in.IdempotencyKey,
			RequestHash: fps[0], LinkID: l.ID, CreateTime: now,
		}
		if outcome == outcomeFinalised {
			// The user proved who they are: their login's count starts over.
			f, err := tx.LockScaFailures(sctx, l.User, l.BankID, l.LoginHash)
			if err != nil {
				return err
			}
			f.Failures, f.CooldownUntil = 0, time.Time{}
			if err := tx.SaveScaFailures(sctx, f); err != nil {
				return err
			}
		}
		if answer, err = s.settle(sctx, tx, &l, &rec, outcome, result, bankLeft, c.claimed, inFlight, now); err != nil {
			return err
		}
		if err := tx.InsertIdempotency(sctx, rec); err != nil {
			return err
		}
		link = l
		return tx.SaveLink(sctx, l)
	})
	if errors.Is(err, ErrIdempotencyKeyTaken) {
		// A retry with the same key got there first: the bank, asked with
		// the same key too, checked the code once, so this call's attempt
		// goes back; its answer is the retry's.
		s.giveBack(ctx, in, c)
	}
	if err != nil {
		return s.writeFailed(ctx, err, in.User, opVerifyLink, in.IdempotencyKey, fps)
	}
	if apierr.Is(answer, commonv1.ErrorReason_ERROR_REASON_LINK_NOT_PENDING) {
		// Perhaps ended by a retry with the same key, whose answer this is.
		if l, ok, err := s.replay(ctx, in.User, opVerifyLink, in.IdempotencyKey, fps); ok {
			return l, err
		}
	}
	return link.At(now), answer
}

// claim is what VerifyLink's first transaction decided.
type claim struct {
	// link is the link as locked, with the attempt taken.
	link Link
	// done says the call is answered (answer, link) without the bank;
	// answered that it was answered before, under the same key.
	done, answered bool
	answer         error
	// claimed says an attempt was taken: a code, sent to the bank next,
	// under key.
	claimed bool
	key     string
}

// claimAttempt locks the link and decides whether the bank is asked: not
// for a challenge that is over (expired here first, which it writes down),
// a code the method does not take, or a login cooling down; a code takes
// one of the challenge's attempts left and counts against the login, and
// is refused when every attempt left is being checked already.
func (s *Service) claimAttempt(ctx context.Context, in VerifyLinkInput, fp string, now time.Time) (claim, error) {
	var c claim
	// The key the code is claimed under, the same in every run.
	key := in.IdempotencyKey
	if key == "" {
		key = newID()
	}
	rerun := false
	// Keyed: a run after one that committed finds the code claimed under
	// the key and spends no second attempt.
	err := s.store.IdempotentTx(ctx, func(tx Tx) error {
		c = claim{}
		l, err := tx.LockLink(ctx, in.User, in.LinkID)
		if err != nil {
			return err
		}
		c.link, c.done = l, true
		// A retry with the same key may have come after the first was
		// checked and answered; the lock orders them.
		switch _, err := tx.Idempotency(ctx, in.User, opVerifyLink, in.IdempotencyKey); {
		case err == nil:
			c.answered = true
			return nil
		case !errors.Is(err, ErrNotFound):
			return err
		}
		if rerun {
			// The run before lost its connection, perhaps after it
			// committed: then this call's code took its attempt already
			// (and may have used the last, or started the cooldown), and
			// goes to the bank. Checked first, or the checks below would
			// refuse the call its own attempt (SCA_COOLDOWN).
			switch mine, err := tx.CodeClaimed(ctx, l.User, l.ID, key); {
			case err != nil:
				return err
			case mine:
				c.link, c.done, c.claimed, c.key = l, false, true, key
				return nil
			}
		}
		rerun = true
		current := l.At(now)
		switch {
		case current.State == StateRejected && l.State == StateReceived,
			reconfirming(l) && current.State == StateValid && current.SCA.Status == ScaStatusExpired:
			// The challenge timed out here first: no bank is asked.
			rec := Idempotency{
				User: in.User, Operation: opVerifyLink, Key: in.IdempotencyKey,
				RequestHash: fp, LinkID: l.ID, CreateTime: now,
			}
			l.UpdateTime = now
			if c.answer, err = s.settle(ctx, tx, &l, &rec, outcomeExpired, VerifyScaResult{}, -1, false, 0, now); err != nil {
				return err
			}
			if err := tx.InsertIdempotency(ctx, rec); err != nil {
				return err
			}
			c.link = l
			return tx.SaveLink(ctx, l)
		case !pending(current):
			c.link, c.answer = current, errLinkNotPending(current.State)
			return nil
		case current.SCA.Method == ScaMethodOTP && in.Code == "":
			c.answer = errCodeRequired()
			return nil
		case current.SCA.Method != ScaMethodOTP && in.Code != "":
			c.answer = errCodeNotExpected(current.SCA.Method)
			return nil
		}
		f, err := tx.LockScaFailures(ctx, l.User, l.BankID, l.LoginHash)
		if err != nil {
			return err
		}
		if c.answer = checkCooldown(f, now); c.answer != nil {
			return nil
		}
		if in.Code == "" {
			c.done = false // a poll: it spends nothing
			return nil
		}
		if l.SCA.AttemptsRemaining <= 0 {
			// Every attempt left is being checked by the bank: what they
			// come to decides whether the link locks.
			c.answer = errScaCooldown(inFlightRetry)
			return nil
		}
		c.key = key
		first, err := tx.ClaimCode(ctx, l.User, l.ID, c.key, now, now.Add(-claimLease))
		if err != nil {
			return err
		}
		if !first {
			// The same request is being checked by a call whose key hold
			// lapsed (awaitKey): its answer is this one's, once recorded.
			c.answer = errScaCooldown(inFlightRetry)
			return nil
		}
		l.SCA.AttemptsRemaining--
		s.countTry(&f, now)
		if err := tx.SaveScaFailures(ctx, f); err != nil {
			return err
		}
		c.link, c.done, c.claimed = l, false, true
		return tx.SaveLink(ctx, l)
	})
	return c, err
}

// giveBack returns the attempt a code claimed when the bank could not
// check it (BANK_UNAVAILABLE and the like): such an answer costs nothing.
// An attempt that cannot be given back stays spent, the safe way.
func (s *Service) giveBack(ctx context.Context, in VerifyLinkInput, c claim) {
	if !c.claimed {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	// Not run again after a lost connection: a counter moved without a
	// key, which a second run would give back twice.
	err := s.store.Tx(ctx, func(tx Tx) error {
		l, err := tx.LockLink(ctx, in.User, in.LinkID)
		if err != nil {
			return err
		}
		if _, err := tx.ReleaseCode(ctx, l.User, l.ID, c.key, time.Time{}); err != nil {
			return err
		}
		if pending(l) {
			l.SCA.AttemptsRemaining = min(l.SCA.AttemptsRemaining+1, MaxScaAttempts)
			if err := tx.SaveLink(ctx, l); err != nil {
				return err
			}
		}
		f, err := tx.LockScaFailures(ctx, l.User, l.BankID, l.LoginHash)
		if err != nil {
			return err
		}
		s.uncountTry(&f)
		return tx.SaveScaFailures(ctx, f)
	})
	if err != nil {
		s.log.WarnContext(ctx, "could not give back a two-factor attempt the bank did not check; it stays spent", "error", err.Error())
	}
}

// outcomeOf is what the bank's answer to VerifySca means for the link,
// with the bank's attempts_remaining when it says (else -1); err is set
// when the bank could give no answer, which decides nothing. A decoy's
// consent is one the bank never issued: whatever the bank says about it
// means a wrong code, while an answer it could not give is passed on as
// for any link.
func outcomeOf(result VerifyScaResult, err error, decoy bool) (verifyOutcome, int, error) {
	reason := apierr.Reason(err)
	if decoy {
		if err == nil || slices.Contains(decoyAnswers, reason) {
			return outcomeWrongCode, -1, nil
		}
		return 0, -1, err
	}
	switch {
	case err == nil && result.Status == ScaStatusFinalised:
		return outcomeFinalised, -1, nil
	case err == nil && result.Status == ScaStatusFailed:
		return outcomeDeclined, -1, nil
	case err == nil:
		return outcomePending, -1, nil
	case reason == commonv1.ErrorReason_ERROR_REASON_SCA_FAILED:
		if info := apierr.Info(err); info != nil {
			if n, perr := strconv.Atoi(info.GetMetadata()["attempts_remaining"]); perr == nil && n >= 0 {
				return outcomeWrongCode, n, nil
			}
		}
		return outcomeWrongCode, -1, nil
	case reason == commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED:
		return outcomeLocked, -1, nil
	case reason == commonv1.ErrorReason_ERROR_REASON_SCA_EXPIRED,
		// The bank forgot the challenge; older adapters say NOT_FOUND.
		reason == commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK,
		reason == commonv1.ErrorReason_ERROR_REASON_NOT_FOUND:
		return outcomeExpired, -1, nil
	}
	return 0, -1, err
}

// decoyAnswers are what a bank may answer about a consent it never
// issued, or a code for it.
var decoyAnswers = []commonv1.ErrorReason{
	commonv1.ErrorReason_ERROR_REASON_SCA_FAILED, commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED,
	commonv1.ErrorReason_ERROR_REASON_SCA_EXPIRED, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK,
	commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND,
}

// settle applies an outcome to l, pending and locked in tx: it sets what
// rec records and returns the answer. claimed says the code took its
// attempt at claim; bankLeft is the bank's attempts_remaining, or -1;
// inFlight counts the link's other codes the bank is checking.
func (s *Service) settle(ctx context.Context, tx Tx, l *Link, rec *Idempotency, outcome verifyOutcome, result VerifyScaResult, bankLeft int, claimed bool, inFlight int, now time.Time) (answer, err error) {
	renewal := l.State == StateValid // a reconfirmation's challenge
	l.UpdateTime = now
	switch outcome {
	case outcomePending:
	case outcomeFinalised:
		l.SCA.Status, l.SCA.AttemptsRemaining = ScaStatusFinalised, 0
		if result.BankConsentID != "" {
			l.BankConsentID = result.BankConsentID
		}
		vu := micro(result.ValidUntil)
		if renewal {
			if !vu.IsZero() {
				s.extend(l, vu, now)
			}
			break
		}
		if err := s.supersede(ctx, tx, *l, now); err != nil {
			return nil, err
		}
		l.State, l.VerifyTime = StateValid, now
		if !vu.IsZero() && vu.Before(l.ExpireTime) {
			l.ExpireTime = vu
		}
	case outcomeDeclined:
		if !renewal {
			l.State = StateRejected
		}
		l.SCA.Status, l.SCA.AttemptsRemaining = ScaStatusFailed, 0
	case outcomeWrongCode:
		l.SCA.FailedAttempts++
		left := l.SCA.AttemptsRemaining // this code's attempt was taken at claim
		if !claimed {
			left = max(left-1, 0)
		}
		if bankLeft >= 0 {
			// The bank's count leaves out the codes it is still checking.
			left = min(left, max(bankLeft-inFlight, 0))
		}
		l.SCA.AttemptsRemaining = left
		if left > 0 || inFlight > 0 {
			// With codes still being checked, they decide whether it locks.
			rec.ErrReason, rec.AttemptsRemaining = reasonScaFailed, left
			return errScaFailed(left), nil
		}
		fallthrough
	case outcomeLocked:
		if !renewal {
			l.State = StateRejected
		}
		l.SCA.Status, l.SCA.AttemptsRemaining = ScaStatusLocked, 0
		rec.ErrReason = reasonScaLocked
		return errScaLocked(), nil
	case outcomeExpired:
		if !renewal {
			l.State = StateRejected
		}
		l.SCA.Status, l.SCA.AttemptsRemaining = ScaStatusExpired, 0
		rec.ErrReason = reasonScaExpired
		return errScaExpired(), nil
	}
	return nil, nil
}

// reconfirming reports whether l, as stored, is a VALID link whose
// reconfirmation challenge is running.
func reconfirming(l Link) bool {
	return l.State == StateValid && l.SCA.Status == ScaStatusStarted
}

// pending reports whether l has a challenge VerifyLink may answer: a
// RECEIVED link's, or a VALID link's reconfirmation challenge.
func pending(l Link) bool { return l.State == StateReceived || reconfirming(l) }

// extend moves a VALID link's expiry to until, as the bank granted it,
// capped by the service's ConsentTTL from now. A later expiry gets its
// own warning.
func (s *Service) extend(l *Link, until, now time.Time) {
	if most := now.Add(s.cfg.ConsentTTL); until.After(most) {
		until = most
	}
	if until.After(l.ExpireTime) {
		l.ExpiryWarnTime = time.Time{}
	}
	l.ExpireTime = until
}

// supersede ends the user's other VALID links to the bank of l, which is
// about to become VALID: a user holds at most one VALID link per bank. The
// revocation of each goes to the outbox, for the bank to be told.
func (s *Service) supersede(ctx context.Context, tx Tx, l Link, now time.Time) error {
	others, err := tx.LockValidLinks(ctx, l.User, l.BankID)
	if err != nil {
		return err
	}
	for _, o := range others {
		if o.ID == l.ID {
			continue
		}
		o, _, revoked := revoke(o, now, false)
		if err := tx.SaveLink(ctx, o); err != nil {
			return err
		}
		if revoked {
			if err := tx.AddRevocation(ctx, revocation(o, now)); err != nil {
				return err
			}
		}
	}
	return nil
}

// RevokeLinkInput is what RevokeLink needs.
type RevokeLinkInput struct {
	User, LinkID   string
	IdempotencyKey string
}

// RevokeLink ends a link's consent at once: a VALID link becomes REVOKED,
// a RECEIVED one too, its challenge cancelled. A link that already ended is
// returned as it is. The revocation goes to the outbox in the same
// transaction (event consent.link.revoked), from which the bank is told
// (RunBankRevocations) without the caller waiting for it.
func (s *Service) RevokeLink(ctx context.Context, in RevokeLinkInput) (Link, error) {
	fps := s.fingerprints(in.LinkID)
	if link, ok, err := s.replay(ctx, in.User, opRevokeLink, in.IdempotencyKey, fps); ok || err != nil {
		return link, err
	}
	// No key hold (awaitKey): asking no bank, the call is one transaction,
	// and a second call with the key waits for the first's under the
	// link's lock, then finds the key taken and replays its answer.
	now := s.now()
	var link Link
	// Keyed: a run after one that committed finds the key taken and replays.
	err := s.store.IdempotentTx(ctx, func(tx Tx) error {
		link = Link{}
		l, err := tx.LockLink(ctx, in.User, in.LinkID)
		if err != nil {
			return err
		}
		err = tx.InsertIdempotency(ctx, Idempotency{
			User: in.User, Operation: opRevokeLink, Key: in.IdempotencyKey,
			RequestHash: fps[0], LinkID: l.ID, CreateTime: now,
		})
		if err != nil {
			return err
		}
		return s.saveRevoked(ctx, tx, &link, l, now, false)
	})
	if err != nil {
		return s.writeFailed(ctx, err, in.User, opRevokeLink, in.IdempotencyKey, fps)
	}
	return link.At(now), nil
}

// saveRevoked ends l at now as revoke does, saves it into *out and, when
// it was revoked just now, writes its revocation to the outbox.
func (s *Service) saveRevoked(ctx context.Context, tx Tx, out *Link, l Link, now time.Time, byBank bool) error {
	var changed, revoked bool
	if *out, changed, revoked = revoke(l, now, byBank); !changed {
		return nil
	}
	if err := tx.SaveLink(ctx, *out); err != nil {
		return err
	}
	if !revoked {
		return nil
	}
	return tx.AddRevocation(ctx, revocation(*out, now))
}

// revocation is the consent.link.revoked event of l, revoked at now.
func revocation(l Link, now time.Time) Revocation {
	return Revocation{
		EventID: newID(), User: l.User, LinkID: l.ID, Client: l.Client, BankID: l.BankID,
		RevokedByBank: l.RevokedByBank, RevokeTime: l.RevokeTime, EventTime: now,
	}
}

// ReconfirmLinkInput is what ReconfirmLink needs.
type ReconfirmLinkInput struct {
	User, LinkID   string
	IdempotencyKey string
}

// ReconfirmLink extends a VALID link the user wants to keep, asking the
// bank to extend its consent to ConsentTTL from now. A bank that extends
// without a new SCA answers with what it granted (capped by its own
// maximum validity), which becomes the link's expiry; a bank that wants
// SCA first starts a challenge, which the link holds (still VALID, its
// expiry unchanged) until VerifyLink completes it. A bank that no longer
// knows the consent makes the link REVOKED, by the bank. An answer the
// bank could not give records nothing, so a retry asks again.
func (s *Service) ReconfirmLink(ctx context.Context, in ReconfirmLinkInput) (Link, error) {
	fps := s.fingerprints(in.LinkID)
	if link, ok, err := s.replay(ctx, in.User, opReconfirmLink, in.IdempotencyKey, fps); ok || err != nil {
		return link, err
	}
	release, prior, err := s.awaitKey(ctx, in.User, opReconfirmLink, in.IdempotencyKey, fps)
	if release == nil {
		return prior, err
	}
	defer release()
	stored, err := s.store.Link(ctx, in.User, in.LinkID)
	if errors.Is(err, ErrNotFound) {
		return Link{}, errLinkNotFound()
	}
	if err != nil {
		return Link{}, fmt.Errorf("read link: %w", err)
	}
	now := s.now()
	if current := stored.At(now); current.State != StateValid {
		return Link{}, errLinkNotValid(current.State)
	}
	want := now.Add(s.cfg.ConsentTTL)
	ext, err := s.banks.ExtendConsent(ctx, stored.BankID, ExtendConsentRequest{
		BankConsentID:  stored.BankConsentID,
		ValidUntil:     want,
		IdempotencyKey: bankKey(in.User, opReconfirmLink, in.IdempotencyKey),
	})
	forgotten := apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK)
	if err != nil && !forgotten {
		return Link{}, err
	}

	var (
		link   Link
		answer error
	)
	// Keyed: a run after one that committed finds the key taken and replays.
	err = s.store.IdempotentTx(ctx, func(tx Tx) error {
		link, answer = Link{}, nil
		l, err := tx.LockLink(ctx, in.User, in.LinkID)
		if err != nil {
			return err
		}
		if current := l.At(now); current.State != StateValid {
			// Ended under us (revoked, expired, replaced).
			link, answer = l, errLinkNotValid(current.State)
			return nil
		}
		rec := Idempotency{
			User: in.User, Operation: opReconfirmLink, Key: in.IdempotencyKey,
			RequestHash: fps[0], LinkID: l.ID, CreateTime: now,
		}
		if forgotten {
			rec.ErrReason = reasonRevokedByBank
		}
		if err := tx.InsertIdempotency(ctx, rec); err != nil {
			return err
		}
		switch {
		case forgotten:
			answer = errRevokedByBank()
			return s.saveRevoked(ctx, tx, &link, l, now, true)
		case ext.Challenge != nil:
			l.SCA = startedSCA(*ext.Challenge)
		default:
			s.extend(&l, micro(ext.ValidUntil), now)
			if l.SCA.Status == ScaStatusStarted {
				// An earlier reconfirmation's challenge is moot now.
				l.SCA.Status, l.SCA.AttemptsRemaining = ScaStatusFailed, 0
			}
		}
		l.UpdateTime = now
		link = l
		return tx.SaveLink(ctx, l)
	})
	if err != nil {
		return s.writeFailed(ctx, err, in.User, opReconfirmLink, in.IdempotencyKey, fps)
	}
	return link.At(now), answer
}

// ReportBankRevocation records that the bank no longer knows, or has
// revoked, the consent behind a link: a VALID or RECEIVED link becomes
// REVOKED, marked RevokedByBank, its challenge (if running) cancelled, and
// watchers hear of it once committed. The bank is not asked to revoke:
// it has no consent left. A link that has already ended is returned as it
// is (an end that the clock alone made is written down), so repeated
// reports are safe. An unknown link is NOT_FOUND. The revocation goes to
// the outbox, marked as the bank's, for the product to hear of it.
func (s *Service) ReportBankRevocation(ctx context.Context, user, id string) (Link, error) {
	now := s.now()
	var link Link
	// A run after one that committed finds the link ended and returns it.
	err := s.store.IdempotentTx(ctx, func(tx Tx) error {
		l, err := tx.LockLink(ctx, user, id)
		if err != nil {
			return err
		}
		return s.saveRevoked(ctx, tx, &link, l, now, true)
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
		l.SCA = current.SCA
		if l.SCA.Status == ScaStatusStarted {
			// a RECEIVED link's challenge, or a reconfirmation's
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
// or a partner opt-in's state from now on, for every user. It is closed when ctx ends, when the
// watcher falls behind, or when changes may have been missed; the watcher
// then reconnects and trusts nothing it cached.
func (s *Service) WatchChanges(ctx context.Context) <-chan Change { return s.store.Subscribe(ctx) }
