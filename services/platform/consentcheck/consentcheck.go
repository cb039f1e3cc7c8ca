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
//
// Long-lived calls (server streams) subscribe with Changes to hear when a
// user's consent may have changed, and decide again.
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

	// subs are the Changes subscribers, by user.
	subs map[string]map[*subscriber]struct{}
}

// subscriber is one Changes channel; it holds at most one pending
// notification, as one re-decision covers any number of changes.
type subscriber struct{ ch chan struct{} }

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
	return &Checker{client: client, opts: opts, log: opts.Logger, decisions: map[key]decision{}, subs: map[string]map[*subscriber]struct{}{}}
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

// setWatching records whether the change stream is up and drops every
// cached decision. When the stream goes up or down, changes may have been
// missed (the stream has no resume), so every subscriber hears of it.
func (c *Checker) setWatching(on bool) {
	c.mu.Lock()
	was := c.watching
	c.watching = on
	c.mu.Unlock()
	c.forget("")
	if was != on {
		c.notify("")
	}
}

// Changes returns a channel that receives a value whenever user's consent
// may have changed: a change for user arrived on the WatchConsentChanges
// stream, or the stream went down or came back (changes may have been
// missed meanwhile). The user's cached decisions are already dropped when
// the value is sent, so a Decide after it asks the consent service. Values
// coalesce: a receiver that is slow gets one for many changes. It works
// only while Watch runs. cancel ends the subscription; the channel is
// never closed.
func (c *Checker) Changes(user string) (ch <-chan struct{}, cancel func()) {
	s := &subscriber{ch: make(chan struct{}, 1)}
	c.mu.Lock()
	if c.subs[user] == nil {
		c.subs[user] = map[*subscriber]struct{}{}
	}
	c.subs[user][s] = struct{}{}
	c.mu.Unlock()
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			delete(c.subs[user], s)
			if len(c.subs[user]) == 0 {
				delete(c.subs, user)
			}
		})
	}
}

// notify tells the subscribers of user, or of every user when user is "",
// without blocking.
func (c *Checker) notify(user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	send := func(set map[*subscriber]struct{}) {
		for s := range set {
			select {
			case s.ch <- struct{}{}:
			default: // one is pending already
			}
		}
	}
	if user != "" {
		send(c.subs[user])
		return
	}
	for _, set := range c.subs {
		send(set)
	}
}

// Watch holds the WatchConsentChanges stream until ctx ends, reconnecting
// with backoff; run it in its own goroutine when CacheTTL > 0 or when the
// service serves streams (their re-checks hear of changes through it).
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
					c.notify(u)
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
