// Package consenttest holds a fake consent service for handler and app
// tests, because the real one needs its own process, storage and change
// stream: links, partner opt-ins, the access log and the change feed, kept
// in memory and changed by the test. It implements what services ask of
// *consentcheck.Checker. Import it from _test.go files only.
package consenttest

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck"
	"github.com/bankbridge/bankbridge/services/platform/names"
)

// Link is one of a user's links in the fake consent service.
type Link struct {
	ID            string
	BankID        string
	BankConsentID string
	Client        string
	Scopes        []commonv1.Scope
	State         consentv1.ConsentState
}

// OptIn is a user's opt-in to a partner.
type OptIn struct {
	User    string
	Client  string
	Revoked bool
}

// Consent is the consent service: links, partner opt-ins, the access log
// and the change feed. Like *consentcheck.Checker, it implements the kit's
// access.ConsentChecker and access.Recorder, the streams' stream.Consent,
// and ResolvePartner, CoveringLinks and AllChanges, so it serves as a
// service's Consent port too.
type Consent struct {
	mu      sync.Mutex
	links   map[string][]Link   // by user
	optIns  map[[2]string]OptIn // by partner, partner user id
	entries []access.Entry
	// recordErr, when set, fails every Record.
	recordErr error
	// resolveErr, when set, fails every ResolvePartner.
	resolveErr error
	changes    chan consentcheck.Change
	subs       map[string][]chan struct{}
	// scopes are those of a link AddLink makes without any.
	scopes []commonv1.Scope
}

// New returns an empty consent service whose links, when AddLink names no
// scopes, cover scopes: the ones the service under test reads.
func New(scopes ...commonv1.Scope) *Consent {
	return &Consent{links: map[string][]Link{}, optIns: map[[2]string]OptIn{}, changes: make(chan consentcheck.Change, 64),
		subs: map[string][]chan struct{}{}, scopes: slices.Clone(scopes)}
}

// AddLink gives user a VALID link to bank with scopes (New's when none),
// made through client "chat-app", and returns its name. Its bank consent
// id is BankConsentID(user, bank).
func (c *Consent) AddLink(user, bank string, scopes ...commonv1.Scope) string {
	return c.AddBankLink(user, bank, BankConsentID(user, bank), scopes...)
}

// AddBankLink is AddLink with the bank's own consent id, e.g. one a
// sandbox bank granted, so that the bank's events under it resolve to the
// link (ResolveBankConsent).
func (c *Consent) AddBankLink(user, bank, bankConsentID string, scopes ...commonv1.Scope) string {
	if len(scopes) == 0 {
		scopes = c.scopes
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	id := "l-" + bank + "-" + strconv.Itoa(len(c.links[user]))
	c.links[user] = append(c.links[user], Link{ID: id, BankID: bank, BankConsentID: bankConsentID, Client: "chat-app", Scopes: scopes, State: consentv1.ConsentState_CONSENT_STATE_VALID})
	c.notify(user)
	return names.Link{User: user, ID: id}.String()
}

// SetLinkState moves the user's link (its name) to state.
func (c *Consent) SetLinkState(link string, state consentv1.ConsentState) {
	l, err := names.ParseLink(link)
	if err != nil {
		panic(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.links[l.User] {
		if c.links[l.User][i].ID == l.ID {
			c.links[l.User][i].State = state
		}
	}
	c.notify(l.User)
}

// SetLinkClient makes client the product the user's link (its name) was
// made through: its events' webhooks go there.
func (c *Consent) SetLinkClient(link, client string) {
	l, err := names.ParseLink(link)
	if err != nil {
		panic(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.links[l.User] {
		if c.links[l.User][i].ID == l.ID {
			c.links[l.User][i].Client = client
		}
	}
}

// OptIn opts user in to partner under partnerUserID, through "chat-app".
func (c *Consent) OptIn(user, partner, partnerUserID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.optIns[[2]string{partner, partnerUserID}] = OptIn{User: user, Client: "chat-app"}
}

// RevokeOptIn revokes the opt-in behind partnerUserID.
func (c *Consent) RevokeOptIn(partner, partnerUserID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := c.optIns[[2]string{partner, partnerUserID}]
	o.Revoked = true
	c.optIns[[2]string{partner, partnerUserID}] = o
}

// FailRecord makes every Record fail with err (nil: succeed again).
func (c *Consent) FailRecord(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recordErr = err
}

// FailResolve makes every ResolvePartner and ResolveBankConsent fail with
// err (nil: answer again).
func (c *Consent) FailResolve(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resolveErr = err
}

// Entries returns the access log so far.
func (c *Consent) Entries() []access.Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.entries)
}

// Send publishes a change on the feed AllChanges returns.
func (c *Consent) Send(ch consentcheck.Change) { c.changes <- ch }

// covering returns the user's VALID links with scope; revoked tells
// whether a revoked one had it.
func (c *Consent) covering(user string, scope commonv1.Scope) (valid []Link, revoked bool) {
	for _, l := range c.links[user] {
		if !slices.Contains(l.Scopes, scope) {
			continue
		}
		switch l.State {
		case consentv1.ConsentState_CONSENT_STATE_VALID:
			valid = append(valid, l)
		case consentv1.ConsentState_CONSENT_STATE_REVOKED:
			revoked = true
		}
	}
	return valid, revoked
}

func (c *Consent) decide(user string, scope commonv1.Scope, bank string, purpose commonv1.Purpose) (Link, error) {
	if purpose == commonv1.Purpose_PURPOSE_ADVERTISING || purpose == commonv1.Purpose_PURPOSE_MARKETING {
		return Link{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED, "never")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	valid, revoked := c.covering(user, scope)
	for _, l := range valid {
		if bank == "" || l.BankID == bank {
			return l, nil
		}
	}
	if revoked {
		return Link{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, "revoked")
	}
	return Link{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, "no consent")
}

// Decide is the kit's consent check (access.ConsentChecker).
func (c *Consent) Decide(_ context.Context, user string, need access.Need, purpose commonv1.Purpose) (access.Decision, error) {
	l, err := c.decide(user, need.Scope, need.BankID, purpose)
	if err != nil {
		return access.Decision{}, err
	}
	return access.Decision{Link: names.Link{User: user, ID: l.ID}.String(), BankConsentID: l.BankConsentID}, nil
}

// ReportBankRevocation is part of access.ConsentChecker.
func (c *Consent) ReportBankRevocation(context.Context, string) error { return nil }

// Record appends to the access log (access.Recorder).
func (c *Consent) Record(_ context.Context, e access.Entry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.recordErr != nil {
		return c.recordErr
	}
	c.entries = append(c.entries, e)
	return nil
}

// Changes signals a user's consent changes to open streams (stream.Consent).
func (c *Consent) Changes(user string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	c.subs[user] = append(c.subs[user], ch)
	c.mu.Unlock()
	return ch, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.subs[user] = slices.DeleteFunc(c.subs[user], func(x chan struct{}) bool { return x == ch })
	}
}

// notify tells the user's streams; c.mu is held.
func (c *Consent) notify(user string) {
	for _, ch := range c.subs[user] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// ResolvePartner answers who partnerUserID is for partner, like
// consentcheck.Checker.ResolvePartner: CONSENT_REQUIRED without an
// opt-in, CONSENT_REVOKED after RevokeOptIn, FailResolve's error when set.
func (c *Consent) ResolvePartner(_ context.Context, partner, partnerUserID string, _ commonv1.Scope) (consentcheck.PartnerUser, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.resolveErr != nil {
		return consentcheck.PartnerUser{}, c.resolveErr
	}
	o, ok := c.optIns[[2]string{partner, partnerUserID}]
	switch {
	case !ok:
		return consentcheck.PartnerUser{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, "no such partner user")
	case o.Revoked:
		return consentcheck.PartnerUser{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, "the opt-in was revoked")
	}
	return consentcheck.PartnerUser{User: o.User, OptIn: names.User(o.User) + "/partnerOptIns/" + partner, Client: o.Client}, nil
}

// CoveringLinks returns the user's VALID links with scope, in the order
// they were added, like consentcheck.Checker.CoveringLinks.
func (c *Consent) CoveringLinks(_ context.Context, user string, scope commonv1.Scope, _ commonv1.Purpose) ([]consentcheck.CoveringLink, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	valid, _ := c.covering(user, scope)
	var out []consentcheck.CoveringLink
	for _, l := range valid {
		out = append(out, consentcheck.CoveringLink{Link: names.Link{User: user, ID: l.ID}.String(), BankID: l.BankID,
			BankConsentID: l.BankConsentID, Client: l.Client, Scopes: slices.Clone(l.Scopes)})
	}
	return out, nil
}

// BankConsentID is the bank consent id of the links AddLink gives user at
// bank.
func BankConsentID(user, bank string) string { return "bc-" + user + "-" + bank }

// ResolveBankConsent answers whose bankConsentID at bank is, like
// consentcheck.Checker.ResolveBankConsent: the VALID link with that
// consent id that covers scope; CONSENT_REVOKED or CONSENT_EXPIRED when
// such a link is over, CONSENT_REQUIRED otherwise; FailResolve's error
// when set.
func (c *Consent) ResolveBankConsent(_ context.Context, bank, bankConsentID string, scope commonv1.Scope) (consentcheck.BankConsent, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.resolveErr != nil {
		return consentcheck.BankConsent{}, c.resolveErr
	}
	reason := commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED
	for user, links := range c.links {
		for _, l := range links {
			if l.BankID != bank || l.BankConsentID != bankConsentID || !slices.Contains(l.Scopes, scope) {
				continue
			}
			switch l.State {
			case consentv1.ConsentState_CONSENT_STATE_VALID:
				return consentcheck.BankConsent{User: user, Link: consentcheck.CoveringLink{
					Link: names.Link{User: user, ID: l.ID}.String(), BankID: l.BankID,
					BankConsentID: l.BankConsentID, Client: l.Client, Scopes: slices.Clone(l.Scopes),
				}}, nil
			case consentv1.ConsentState_CONSENT_STATE_REVOKED:
				reason = commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED
			case consentv1.ConsentState_CONSENT_STATE_EXPIRED:
				if reason == commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED {
					reason = commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED
				}
			}
		}
	}
	return consentcheck.BankConsent{}, apierr.New(reason, "no VALID link covering "+scope.String()+" carries this bank consent",
		apierr.WithMetadata("scope", scope.String()))
}

// AllChanges returns the feed Send publishes on; cancel does nothing.
func (c *Consent) AllChanges() (<-chan consentcheck.Change, func()) { return c.changes, func() {} }

// ErrRecord is a failure of the access log.
var ErrRecord = errors.New("the access log is unavailable")
