// Package consentcheck is how a data service enforces consent and records
// every access: a policy.ConsentChecker that asks the consent service
// (ConsentCheckService.CheckConsent) whether the user's consent covers the
// call's scope and bank, and a policy.Auditor that appends each access,
// allowed or refused, to the user's access log (RecordAccess).
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

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/platform/policy"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// Need is what a call needs consent for.
type Need struct {
	Scope commonv1.Scope
	// BankID is the bank whose consent must cover the call; "" means any of
	// the user's banks (e.g. listing accounts across banks).
	BankID string
}

// Resolver tells which scope and bank a call needs. Each data service writes
// one: the method gives the scope, the resource (an account, a receipt) gives
// the bank. An error refuses the call (e.g. NOT_FOUND for an unknown account).
type Resolver func(ctx context.Context, a *policy.Access) (Need, error)

// Options tune the checker.
type Options struct {
	// CacheTTL is how long an allowed decision is reused while the change
	// stream is connected; 0 disables the cache. Default 0.
	CacheTTL time.Duration
	// AuditTimeout bounds one RecordAccess call; default 2s.
	AuditTimeout time.Duration
	Logger       *slog.Logger
}

// Checker implements policy.ConsentChecker and policy.Auditor.
type Checker struct {
	client  consentv1.ConsentCheckServiceClient
	resolve Resolver
	opts    Options
	log     *slog.Logger

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

// New returns a checker that asks client and resolves needs with resolve.
func New(client consentv1.ConsentCheckServiceClient, resolve Resolver, opts Options) *Checker {
	if opts.AuditTimeout <= 0 {
		opts.AuditTimeout = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Checker{client: client, resolve: resolve, opts: opts, log: opts.Logger, decisions: map[key]decision{}}
}

// Grant is an allowed consent decision: the link and the bank-side consent
// id a service uses to reach the bank.
type Grant struct {
	Link          string
	BankConsentID string
}

// Decide asks (or reuses a cached answer) whether user's consent covers need
// for purpose. It returns the grant, or an apierr PERMISSION_DENIED error
// with the consent service's reason. Any failure to get an answer refuses
// (fail closed).
func (c *Checker) Decide(ctx context.Context, user string, need Need, purpose commonv1.Purpose) (Grant, error) {
	k := key{user: user, bank: need.BankID, scope: need.Scope, purpose: purpose}
	resp, gen := c.cached(k)
	if resp == nil {
		var err error
		resp, err = c.client.CheckConsent(ctx, &consentv1.CheckConsentRequest{
			User: "users/" + user, BankId: need.BankID, Scope: need.Scope, Purpose: purpose,
		})
		if err != nil {
			id, masked := apierr.Internal()
			c.log.ErrorContext(ctx, "consent check failed; refusing", slog.String(telemetry.AttrIncidentID, id), slog.String("error", err.Error()))
			return Grant{}, masked
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
		return Grant{}, apierr.New(reason, denialMessage(reason, need), apierr.WithMetadata("scope", need.Scope.String()))
	}
	return Grant{Link: resp.GetLink(), BankConsentID: resp.GetBankConsentId()}, nil
}

// CheckConsent is the server kit's consent hook: it resolves the call's
// need, decides, and on allow fills a.Scope, a.BankID, a.Link and
// a.BankConsentID for the handler.
func (c *Checker) CheckConsent(ctx context.Context, a *policy.Access) error {
	need, err := c.resolve(ctx, a)
	if err != nil {
		return err
	}
	a.Scope, a.BankID = need.Scope, need.BankID
	g, err := c.Decide(ctx, a.User, need, a.Purpose)
	if err != nil {
		return err
	}
	a.Link, a.BankConsentID = g.Link, g.BankConsentID
	return nil
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
				if u := ev.GetUser(); len(u) > len("users/") {
					c.forget(u[len("users/"):])
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

// Audit appends the access to the user's access log. A failure cannot undo
// the call, so it is logged under an incident id for on-call.
func (c *Checker) Audit(ctx context.Context, a *policy.Access, err error) {
	entry := &consentv1.AccessLogEntry{
		AccessTime: timestamppb.Now(),
		ClientId:   a.Principal.Client,
		Method:     a.Method,
		Resource:   a.Resource,
		Purpose:    a.Purpose,
		Scope:      a.Scope,
		Outcome:    consentv1.AccessOutcome_ACCESS_OUTCOME_ALLOWED,
	}
	if err != nil {
		// An error without a bankbridge reason was masked as INTERNAL for
		// the caller; the log says the same.
		entry.Outcome = consentv1.AccessOutcome_ACCESS_OUTCOME_DENIED
		reason := apierr.Reason(err)
		if reason == commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
			reason = commonv1.ErrorReason_ERROR_REASON_INTERNAL
		}
		entry.Reason = apierr.ReasonString(reason)
	}
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		entry.TraceId = sc.TraceID().String()
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.AuditTimeout)
	defer cancel()
	if _, rerr := c.client.RecordAccess(actx, &consentv1.RecordAccessRequest{User: "users/" + a.User, Entry: entry}); rerr != nil {
		id := apierr.IncidentID()
		c.log.ErrorContext(ctx, "access not recorded in the audit log",
			slog.String(telemetry.AttrIncidentID, id), slog.String("rpc.method", a.Method), slog.String("error", rerr.Error()))
	}
}
