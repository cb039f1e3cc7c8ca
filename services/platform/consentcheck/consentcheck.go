// Package consentcheck is how a data service enforces consent and records
// every access: an access.ConsentChecker that asks the consent service
// (ConsentCheckService.CheckConsent) whether the user's consent covers the
// call's scope and bank, and an access.Recorder that appends each access,
// allowed or refused, to the user's access log (RecordAccess) before the
// data leaves.
//
// Allowed decisions are cached for a few seconds, but only while a
// WatchConsentChanges stream is connected: every change to a user's links
// drops that user's cached decisions, and losing the stream drops them all,
// so a revocation takes effect on the next call.
package consentcheck

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// Need is what a call needs consent for.
type Need = access.Need

// Decision is an allowed consent decision.
type Decision = access.Decision

// Options tune the checker.
type Options struct {
	// CacheTTL is how long an allowed decision is reused while the change
	// stream is connected; 0 disables the cache. Default 0.
	CacheTTL time.Duration
	// AuditTimeout bounds one RecordAccess call; default 2s.
	AuditTimeout time.Duration
	Logger       *slog.Logger
}

// Checker implements access.ConsentChecker and access.Recorder.
type Checker struct {
	client consentv1.ConsentCheckServiceClient
	opts   Options
	log    *slog.Logger

	mu        sync.Mutex
	watching  bool
	decisions map[key]decision
	// generation counts cache flushes, so a decision fetched before a flush
	// is not stored after it.
	generation uint64
}

type key struct {
	user, bank string
	scope      commonv1.Scope
	purpose    commonv1.Purpose
}

type decision struct {
	resp    *consentv1.CheckConsentResponse
	expires time.Time
}

// New returns a checker that asks client.
func New(client consentv1.ConsentCheckServiceClient, opts Options) *Checker {
	if opts.AuditTimeout <= 0 {
		opts.AuditTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Checker{client: client, opts: opts, log: opts.Logger, decisions: map[key]decision{}}
}

// Decide asks (or reuses a cached answer) whether user's consent covers need
// for purpose. It returns the grant, or an apierr PERMISSION_DENIED error
// with the consent service's reason. Any failure to get an answer refuses
// (fail closed).
func (c *Checker) Decide(ctx context.Context, user string, need Need, purpose commonv1.Purpose) (Decision, error) {
	k := key{user: user, bank: need.BankID, scope: need.Scope, purpose: purpose}
	resp, gen := c.cached(k)
	if resp == nil {
		var err error
		resp, err = c.client.CheckConsent(ctx, &consentv1.CheckConsentRequest{
			User: names.User(user), BankId: need.BankID, Scope: need.Scope, Purpose: purpose,
		})
		if err != nil {
			id, masked := apierr.Internal()
			c.log.ErrorContext(ctx, "consent check failed; refusing", slog.String(telemetry.AttrIncidentID, id), slog.String("error", err.Error()))
			return Decision{}, masked
		}
		if resp.GetAllowed() {
			c.store(k, resp, gen)
		}
	}
	if !resp.GetAllowed() {
		reason := resp.GetDenialReason()
		if reason == commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
			reason = commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED
		}
		return Decision{}, apierr.New(reason, denialMessage(reason, need), apierr.WithMetadata("scope", need.Scope.String()))
	}
	return Decision{Link: resp.GetLink(), BankConsentID: resp.GetBankConsentId()}, nil
}

// ReportBankRevocation tells the consent service that the bank no longer
// honours the consent behind link; the service revokes the link and the
// change stream drops the user's cached decisions.
func (c *Checker) ReportBankRevocation(ctx context.Context, link string) error {
	if user, ok := names.UserOf(link); ok {
		c.forget(user)
	}
	actx, cancel := context.WithTimeout(ctx, c.opts.AuditTimeout)
	defer cancel()
	_, err := c.client.ReportBankRevocation(actx, &consentv1.ReportBankRevocationRequest{Link: link})
	return err
}

func denialMessage(reason commonv1.ErrorReason, need Need) string {
	bank := "any linked bank"
	if need.BankID != "" {
		bank = "bank " + need.BankID
	}
	switch reason {
	case commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED:
		return fmt.Sprintf("the consent for %s has expired; link the bank again", bank)
	case commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED:
		return fmt.Sprintf("the user revoked the consent for %s", bank)
	case commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK:
		return fmt.Sprintf("%s no longer honours the consent; ask the user to link the bank again", bank)
	case commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED:
		return fmt.Sprintf("the consent for %s does not cover this purpose", bank)
	default:
		return fmt.Sprintf("no consent for %s covers %s; link the bank first", bank, need.Scope)
	}
}

func (c *Checker) cached(k key) (*consentv1.CheckConsentResponse, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.decisions[k]
	if ok && c.watching && time.Now().Before(d.expires) {
		return d.resp, c.generation
	}
	return nil, c.generation
}

func (c *Checker) store(k key, resp *consentv1.CheckConsentResponse, gen uint64) {
	if c.opts.CacheTTL <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.watching || gen != c.generation {
		return
	}
	c.decisions[k] = decision{resp: resp, expires: time.Now().Add(c.opts.CacheTTL)}
}

// forget drops the cached decisions of one user, or of all users when user
// is "".
func (c *Checker) forget(user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.generation++
	for k := range c.decisions {
		if user == "" || k.user == user {
			delete(c.decisions, k)
		}
	}
}

func (c *Checker) setWatching(on bool) {
	c.mu.Lock()
	c.watching = on
	c.mu.Unlock()
	c.forget("")
}

// Watch holds the WatchConsentChanges stream until ctx ends, reconnecting
// with backoff; run it in its own goroutine when CacheTTL > 0.
func (c *Checker) Watch(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		stream, err := c.client.WatchConsentChanges(ctx, &consentv1.WatchConsentChangesRequest{})
		if err == nil {
			for {
				ev, rerr := stream.Recv()
				if rerr != nil {
					break
				}
				if !c.isWatching() {
					// First message proves the stream is live; a change
					// before it could not have been cached anyway.
					c.setWatching(true)
				}
				if u, ok := names.UserOf(ev.GetUser()); ok {
					c.forget(u)
				}
				backoff = 100 * time.Millisecond
			}
		}
		c.setWatching(false)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (c *Checker) isWatching() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.watching
}

// Record appends e to its user's access log through RecordAccess, and
// waits for the append: the kit serves no data before it is durable. The
// wait is bounded by AuditTimeout and by ctx (a caller that gave up has its
// entry left out, since it gets no data either).
func (c *Checker) Record(ctx context.Context, e access.Entry) error {
	actx, cancel := context.WithTimeout(ctx, c.opts.AuditTimeout)
	defer cancel()
	_, err := c.client.RecordAccess(actx, &consentv1.RecordAccessRequest{User: names.User(e.User), Entry: e.Proto()})
	return err
}
