// Package consentcheck is how a data service enforces consent and records
// every access: an access.ConsentChecker that asks the consent service
// (ConsentCheckService.CheckConsent) whether the user's consent covers the
// call's scope and bank, and an access.Recorder that appends each access,
// allowed or refused, to the user's access log (RecordAccess) before the
// data leaves.
//
// Allowed decisions are cached for a few seconds, but only while a
// WatchConsentChanges stream is connected: every change to a user's links
// or partner opt-ins drops that user's cached decisions, and losing the
// stream drops them all, so a revocation takes effect on the next call. A
// cached decision never outlives the consent it rests on: it is kept for
// the remaining validity the consent service reported (valid_for, by its
// own clock) at the latest, counted on this process's clock from when it
// asked, so the two clocks need not agree; one that reports none is not
// kept at all.
//
// Long-lived calls (server streams) subscribe with Changes to hear when a
// user's consent may have changed, and decide again; a service that acts on
// every user's changes (e.g. deletes data when consent ends) subscribes
// with AllChanges.
//
// A service that takes partners' pushes resolves a partner-scoped user id
// with ResolvePartner (never cached), and one that reads each of a user's
// banks on its own lists the links to read under with CoveringLinks.
package consentcheck

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
	// stream is connected, and never past the consent's own expiry; 0
	// disables the cache. Default 0.
	CacheTTL time.Duration
	// AuditTimeout bounds one RecordAccess call; default 5s.
	AuditTimeout time.Duration
	// CheckTimeout bounds one question to the consent service (CheckConsent,
	// ResolvePartnerUser, ListCoveringLinks, ResolveBankConsent) within the
	// caller's own deadline; default DefaultCheckTimeout. A consent service
	// that does not answer in time is CONSENT_UNAVAILABLE, so a caller hears
	// at once that it may retry instead of waiting out its own deadline.
	CheckTimeout time.Duration
	Logger       *slog.Logger
	// CacheUsers bounds how many users' decisions the cache holds; past
	// it, the user whose decisions were used longest ago is dropped.
	// Default DefaultCacheUsers.
	CacheUsers int
	// Now is the clock the cache reads; default time.Now.
	Now func() time.Time
	// MeterProvider receives the decision latency histogram
	// (MetricDuration); default none.
	MeterProvider metric.MeterProvider
}

// DefaultCacheUsers is Options.CacheUsers' default: a few hundred bytes a
// decision, tens of MB at most.
const DefaultCacheUsers = 100_000

// Checker implements access.ConsentChecker and access.Recorder.
type Checker struct {
	client  consentv1.ConsentCheckServiceClient
	opts    Options
	log     *slog.Logger
	metrics checkMetrics

	mu       sync.Mutex
	watching bool
	// decisions are the cached decisions, by user and then by key, so a
	// user's change drops theirs without a look at anyone else's.
	decisions *simplelru.LRU[string, map[key]decision]
	// generation counts cache flushes, so a decision fetched before a flush
	// is not stored after it.
	generation uint64

	// subs are the Changes subscribers, by user.
	subs map[string]map[*subscriber]struct{}
	// all are the AllChanges subscribers.
	all map[*allSubscriber]struct{}
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

// DefaultCheckTimeout is Options.CheckTimeout's default: a healthy consent
// service answers in milliseconds, and a caller must hear within a second
// that it cannot.
const DefaultCheckTimeout = 800 * time.Millisecond

// UnavailableRetry is the delay CONSENT_UNAVAILABLE's RetryInfo asks for:
// about how long a consent replica takes to be replaced or restarted.
const UnavailableRetry = time.Second

// unreachableRecordTimeout bounds recording a CONSENT_UNAVAILABLE refusal,
// so that DefaultCheckTimeout plus it stays under a second.
const unreachableRecordTimeout = 100 * time.Millisecond

// New returns a checker that asks client.
func New(client consentv1.ConsentCheckServiceClient, opts Options) *Checker {
	if opts.AuditTimeout <= 0 {
		opts.AuditTimeout = 5 * time.Second
	}
	if opts.CheckTimeout <= 0 {
		opts.CheckTimeout = DefaultCheckTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CacheUsers <= 0 {
		opts.CacheUsers = DefaultCacheUsers
	}
	decisions, err := simplelru.NewLRU[string, map[key]decision](opts.CacheUsers, nil)
	if err != nil {
		panic(err) // only for a size below one
	}
	m, err := newCheckMetrics(opts.MeterProvider)
	if err != nil {
		// A histogram the SDK refuses is a bug of ours; decisions matter more.
		opts.Logger.Error("consent check latency histogram", slog.String("error", err.Error()))
		m, _ = newCheckMetrics(nil)
	}
	return &Checker{
		client: client, opts: opts, log: opts.Logger, decisions: decisions, metrics: m,
		subs: map[string]map[*subscriber]struct{}{}, all: map[*allSubscriber]struct{}{},
	}
}

// Decide asks (or reuses a cached answer) whether user's consent covers need
// for purpose. It returns the grant, or an apierr PERMISSION_DENIED error
// with the consent service's reason. Any failure to get an answer refuses
// (fail closed): UNAVAILABLE (CONSENT_UNAVAILABLE) when the consent service
// cannot be reached within CheckTimeout, a masked INTERNAL otherwise. A
// cached decision still serves while it is valid.
func (c *Checker) Decide(ctx context.Context, user string, need Need, purpose commonv1.Purpose) (d Decision, err error) {
	start := time.Now()
	k := key{user: user, bank: need.BankID, scope: need.Scope, purpose: purpose}
	resp, gen := c.cached(k)
	outcome := outcomeCached
	defer func() {
		switch {
		case err == nil:
		case resp != nil:
			outcome = outcomeDenied
		case apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_CONSENT_UNAVAILABLE):
			outcome = outcomeUnavailable
		default:
			outcome = outcomeError
		}
		c.metrics.observe(ctx, start, outcome)
	}()
	if resp == nil {
		outcome = outcomeAllowed
		// Read before asking: the consent was decided after it, so its
		// validity counted from here ends no later than the consent does.
		asked := c.opts.Now()
		qctx, cancel := c.question(ctx)
		var err error
		resp, err = c.client.CheckConsent(qctx, &consentv1.CheckConsentRequest{
			User: names.User(user), BankId: need.BankID, Scope: need.Scope, Purpose: purpose,
		}, grpc.WaitForReady(false))
		cancel()
		if err != nil {
			return Decision{}, c.fail(ctx, "consent check failed; refusing", err)
		}
		if resp.GetAllowed() {
			c.store(k, resp, gen, asked)
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
	users, _ := c.decisions.Get(k.user)
	d, ok := users[k]
	if ok && c.watching && c.opts.Now().Before(d.expires) {
		return d.resp, c.generation
	}
	return nil, c.generation
}

// store caches an allowed decision, asked for at asked, until the sooner
// of CacheTTL and the consent's remaining validity (valid_for) after
// asked: a consent that ends before the cache would forget it must not be
// served from the cache after it ended. Both spans are counted on this
// process's clock; the consent's expire_time is not compared with it, as
// the consent service's clock may be minutes apart. A decision without a
// remaining validity is not cached, as it cannot be known to be current.
func (c *Checker) store(k key, resp *consentv1.CheckConsentResponse, gen uint64, asked time.Time) {
	if c.opts.CacheTTL <= 0 || resp.GetValidFor() == nil {
		return
	}
	expires := asked.Add(min(c.opts.CacheTTL, resp.GetValidFor().AsDuration()))
	now := c.opts.Now()
	if !now.Before(expires) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.watching || gen != c.generation {
		return
	}
	users, ok := c.decisions.Get(k.user)
	if !ok {
		users = map[key]decision{}
		c.decisions.Add(k.user, users)
	}
	for other, d := range users {
		if !now.Before(d.expires) {
			delete(users, other)
		}
	}
	users[k] = decision{resp: resp, expires: expires}
}

// forget drops the cached decisions of one user, or of all users when user
// is "".
func (c *Checker) forget(user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.generation++
	if user == "" {
		c.decisions.Purge()
		return
	}
	c.decisions.Remove(user)
}

// setWatching records whether the change stream is up and drops every
// cached decision. When the stream goes up or down, changes may have been
// missed (the stream has no resume), so every subscriber hears of it.
func (c *Checker) setWatching(on bool) {
	// Dropped first: no decision is cached while the stream is down, and
	// none from before a reconnect survives it.
	c.forget("")
	c.mu.Lock()
	was := c.watching
	c.watching = on
	if on && !was {
		// Whatever happened while the stream was down is lost. Under the
		// same lock as watching, so a subscriber joining now gets exactly
		// one Resync: this one, or AllChanges' own.
		for s := range c.all {
			s.offer(Change{Resync: true})
		}
	}
	c.mu.Unlock()
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

// allBuffer is how many changes an AllChanges subscriber may fall behind
// by before it gets Resync instead.
const allBuffer = 256

// Change is one committed consent change, for a service that acts on the
// changes of every user (e.g. deletes data when consent ends).
type Change struct {
	User         string // the user id
	Link         string // users/{user}/links/{link}; "" for a partner opt-in change
	LinkState    consentv1.ConsentState
	PartnerOptIn string // users/{user}/partnerOptIns/{opt_in}; "" for a link change
	Partner      string
	PartnerState consentv1.PartnerOptInState
	// Resync is set, alone, when the change stream (re)connected or a
	// subscriber fell behind: changes may have been missed, so reconcile.
	Resync bool
}

func changeFromProto(user string, ev *consentv1.WatchConsentChangesResponse) Change {
	return Change{
		User: user, Link: ev.GetLink(), LinkState: ev.GetState(),
		PartnerOptIn: ev.GetPartnerOptIn(), Partner: ev.GetPartner(), PartnerState: ev.GetPartnerOptInState(),
	}
}

// allSubscriber is one AllChanges channel. Its last slot is kept for a
// Resync: a change is queued only while two slots are free, so a full
// channel always ends with a Resync the subscriber has yet to read, and no
// change is lost without a Resync after it.
type allSubscriber struct{ ch chan Change }

// offer queues c without blocking. Only deliver sends, under the
// checker's lock, so a length read here can only grow by its own send.
func (s *allSubscriber) offer(c Change) {
	free := cap(s.ch) - len(s.ch)
	switch {
	case free == 0:
		// A Resync is pending already; it covers c.
	case c.Resync || free == 1:
		s.ch <- Change{Resync: true}
	default:
		s.ch <- c
	}
}

// deliver hands c to every AllChanges subscriber, without blocking.
func (c *Checker) deliver(ch Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for s := range c.all {
		s.offer(ch)
	}
}

// AllChanges delivers every change the Watch stream receives, for all users,
// until cancel. It never blocks the watcher: a subscriber that falls behind
// gets Resync instead of the changes it missed. Resync also arrives each
// time the stream comes up, the first time included, since changes may
// have been missed while it was down, and first thing for a subscriber
// that arrives while the stream is up, which missed what came before it:
// the first value is always a Resync, so a subscriber reconciles once as
// it starts, whenever it starts. The
// user's cached decisions are dropped, and Changes subscribers told,
// before a change is delivered here. It works only while Watch runs.
// cancel ends the subscription and closes the channel; it is safe to call
// more than once.
func (c *Checker) AllChanges() (ch <-chan Change, cancel func()) {
	s := &allSubscriber{ch: make(chan Change, allBuffer)}
	c.mu.Lock()
	if c.watching {
		s.ch <- Change{Resync: true} // the buffer is empty
	}
	c.all[s] = struct{}{}
	c.mu.Unlock()
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			delete(c.all, s)
			close(s.ch)
		})
	}
}

// PartnerUser is who a partner's push is for.
type PartnerUser struct {
	User   string // the user id, not users/{user}
	OptIn  string // users/{user}/partnerOptIns/{opt_in}
	Client string // the product client the user opted in through
}

// ResolvePartner asks who partnerUserID is for partner. A denial is an apierr
// PERMISSION_DENIED with the reason (CONSENT_REQUIRED or CONSENT_REVOKED);
// any failure to get an answer refuses (fail closed) like Decide's.
// The answer is never cached: a revoked opt-in refuses the next push.
func (c *Checker) ResolvePartner(ctx context.Context, partner, partnerUserID string, scope commonv1.Scope) (PartnerUser, error) {
	qctx, cancel := c.question(ctx)
	defer cancel()
	resp, err := c.client.ResolvePartnerUser(qctx, &consentv1.ResolvePartnerUserRequest{
		Partner: partner, PartnerUserId: partnerUserID, Scope: scope,
	}, grpc.WaitForReady(false))
	if err != nil {
		return PartnerUser{}, c.fail(ctx, "partner user resolution failed; refusing", err)
	}
	if !resp.GetAllowed() {
		// Only the two reasons the contract names leave here; anything
		// else reads as no opt-in.
		reason := commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED
		msg := "the user has not opted in to this partner pushing " + scope.String()
		if resp.GetDenialReason() == commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED {
			reason, msg = commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, "the user revoked the opt-in to this partner"
		}
		return PartnerUser{}, apierr.New(reason, msg, apierr.WithMetadata("scope", scope.String()))
	}
	user, err := names.ParseUser(resp.GetUser())
	if err != nil {
		// The parse error quotes the name, a user id: not for the log.
		return PartnerUser{}, c.refuse(ctx, "partner user resolution allowed no user; refusing", errors.New("the answer names no user"))
	}
	return PartnerUser{User: user, OptIn: resp.GetPartnerOptIn(), Client: resp.GetClient()}, nil
}

// CoveringLink is a VALID link covering a scope and purpose.
type CoveringLink struct {
	Link, BankID, BankConsentID, Client string
	ExpireTime                          time.Time
	Scopes                              []commonv1.Scope
}

// CoveringLinks returns user's VALID, unexpired links that cover scope and
// purpose, newest first, at most one per bank, for a service that reads
// from each of the user's banks on its own (and records each read). Never
// cached. Any failure to get an answer is an error like Decide's: read
// nothing.
func (c *Checker) CoveringLinks(ctx context.Context, user string, scope commonv1.Scope, purpose commonv1.Purpose) ([]CoveringLink, error) {
	qctx, cancel := c.question(ctx)
	defer cancel()
	resp, err := c.client.ListCoveringLinks(qctx, &consentv1.ListCoveringLinksRequest{
		User: names.User(user), Scope: scope, Purpose: purpose,
	}, grpc.WaitForReady(false))
	if err != nil {
		return nil, c.fail(ctx, "covering links not listed; refusing", err)
	}
	links := make([]CoveringLink, 0, len(resp.GetLinks()))
	for _, l := range resp.GetLinks() {
		links = append(links, CoveringLink{
			Link: l.GetLink(), BankID: l.GetBankId(), BankConsentID: l.GetBankConsentId(), Client: l.GetClient(),
			ExpireTime: l.GetExpireTime().AsTime(), Scopes: l.GetScopes(),
		})
	}
	return links, nil
}

// BankConsent is whose a bank's consent is.
type BankConsent struct {
	User string // the user id, not users/{user}
	// Link is the user's VALID link that carries the consent; its Client
	// is the product the user linked the bank through.
	Link CoveringLink
}

// ResolveBankConsent asks whose bankConsentID at bankID is, for a service
// that takes the bank's events (a fraud alert) and acts on them under
// scope. A denial is an apierr PERMISSION_DENIED with the reason
// (CONSENT_REQUIRED, CONSENT_EXPIRED or CONSENT_REVOKED): the event is not
// to be acted on. Any failure to get an answer is an error like Decide's:
// the caller keeps the event and asks again later. Never cached.
func (c *Checker) ResolveBankConsent(ctx context.Context, bankID, bankConsentID string, scope commonv1.Scope) (BankConsent, error) {
	qctx, cancel := c.question(ctx)
	defer cancel()
	resp, err := c.client.ResolveBankConsent(qctx, &consentv1.ResolveBankConsentRequest{
		BankId: bankID, BankConsentId: bankConsentID, Scope: scope,
	}, grpc.WaitForReady(false))
	if err != nil {
		return BankConsent{}, c.fail(ctx, "bank consent resolution failed; refusing", err)
	}
	if !resp.GetAllowed() {
		return BankConsent{}, bankConsentDenial(resp.GetDenialReason(), scope)
	}
	user, err := names.ParseUser(resp.GetUser())
	if err != nil || resp.GetLink().GetBankId() != bankID {
		// The parse error quotes the name, a user id: not for the log.
		return BankConsent{}, c.refuse(ctx, "bank consent resolution allowed no user; refusing", errors.New("the answer names no user or another bank"))
	}
	l := resp.GetLink()
	return BankConsent{User: user, Link: CoveringLink{
		Link: l.GetLink(), BankID: l.GetBankId(), BankConsentID: l.GetBankConsentId(), Client: l.GetClient(),
		ExpireTime: l.GetExpireTime().AsTime(), Scopes: l.GetScopes(),
	}}, nil
}

// bankConsentDenial is the error for a denied ResolveBankConsent: the
// three reasons the contract names leave as they are, anything else reads
// as no consent.
func bankConsentDenial(reason commonv1.ErrorReason, scope commonv1.Scope) error {
	msg := "no link covering " + scope.String() + " carries this bank consent"
	switch reason {
	case commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED:
		msg = "the link carrying this bank consent expired"
	case commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED:
		msg = "the link carrying this bank consent was revoked"
	default:
		reason = commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED
	}
	return apierr.New(reason, msg, apierr.WithMetadata("scope", scope.String()))
}

// question bounds one question to the consent service by CheckTimeout,
// within ctx's own deadline.
func (c *Checker) question(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.opts.CheckTimeout)
}

// fail is the refusal when the consent service gave no answer: UNAVAILABLE
// (CONSENT_UNAVAILABLE) with RetryInfo when it could not be reached or did
// not answer in time, which the caller may retry at once elsewhere; the
// masked INTERNAL of refuse for anything else (e.g. it refused this
// service's token), which retrying would not mend. Both are logged under
// an incident id the caller gets.
func (c *Checker) fail(ctx context.Context, msg string, err error) error {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
	default:
		return c.refuse(ctx, msg, err)
	}
	id := apierr.IncidentID()
	c.log.WarnContext(ctx, msg+": the consent service is unreachable", slog.String(telemetry.AttrIncidentID, id), slog.String("error", err.Error()))
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_UNAVAILABLE,
		"the consent service could not be asked whether the user's consent covers this call, so nothing was served; retry shortly",
		apierr.WithMetadata("incident_id", id), apierr.WithRetryAfter(UnavailableRetry))
}

// refuse logs err under a fresh incident id and returns the masked
// INTERNAL error that carries it.
func (c *Checker) refuse(ctx context.Context, msg string, err error) error {
	id, masked := apierr.Internal()
	c.log.ErrorContext(ctx, msg, slog.String(telemetry.AttrIncidentID, id), slog.String("error", err.Error()))
	return masked
}

// Watch holds the WatchConsentChanges stream until ctx ends, reconnecting
// with backoff; run it in its own goroutine when CacheTTL > 0, when the
// service serves streams (their re-checks hear of changes through it), or
// when it reads AllChanges.
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
					c.deliver(changeFromProto(u, ev))
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
//
// A refusal because the consent service was unreachable is bounded by
// unreachableRecordTimeout instead: its entry goes to the service that has
// just failed to answer, and the caller's refusal (already CheckTimeout
// late) must not wait AuditTimeout more for it; the kit logs an entry it
// could not write.
func (c *Checker) Record(ctx context.Context, e access.Entry) error {
	timeout := c.opts.AuditTimeout
	if !e.Allowed && e.Reason == commonv1.ErrorReason_ERROR_REASON_CONSENT_UNAVAILABLE {
		timeout = unreachableRecordTimeout
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := c.client.RecordAccess(actx, &consentv1.RecordAccessRequest{User: names.User(e.User), Entry: e.Proto()})
	return err
}
