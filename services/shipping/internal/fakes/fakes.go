// Package fakes holds the shipping service's test doubles at its ports:
// the consent service, as the server kit, the event streams and the app
// reach it. Import it from _test.go files only.
package fakes

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/shipping/internal/app"
)

// Link is one of a user's links in the fake consent service.
type Link struct {
	ID            string
	BankID        string
	BankConsentID string
	Client        string
	Scopes        []commonv1.Scope
	State         app.LinkState
}

// OptIn is a user's opt-in to a partner.
type OptIn struct {
	User    string
	Client  string
	Revoked bool
}

// Consent is the consent service: links, partner opt-ins, the access log
// and the change feed. It implements the kit's access.ConsentChecker and
// access.Recorder and the streams' stream.Consent; App is it as the app's
// port.
type Consent struct {
	mu      sync.Mutex
	links   map[string][]Link   // by user
	optIns  map[[2]string]OptIn // by partner, partner user id
	entries []access.Entry
	// recordErr, when set, fails every Record.
	recordErr error
	// resolveErr, when set, fails every ResolvePartner.
	resolveErr error
	changes    chan app.Change
	subs       map[string][]chan struct{}
}

// NewConsent returns an empty consent service.
func NewConsent() *Consent {
	return &Consent{links: map[string][]Link{}, optIns: map[[2]string]OptIn{}, changes: make(chan app.Change, 64), subs: map[string][]chan struct{}{}}
}

// AllScopes are the scopes of a link that covers shipping, and more.
var AllScopes = []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS, commonv1.Scope_SCOPE_SHIPPING}

// AddLink gives user a VALID link to bank with scopes (AllScopes when
// none), made through client "chat-app", and returns its name.
func (c *Consent) AddLink(user, bank string, scopes ...commonv1.Scope) string {
	if len(scopes) == 0 {
		scopes = AllScopes
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	id := "l-" + bank + "-" + strconv.Itoa(len(c.links[user]))
	c.links[user] = append(c.links[user], Link{ID: id, BankID: bank, BankConsentID: "bc-" + user + "-" + bank, Client: "chat-app", Scopes: scopes, State: app.LinkValid})
	c.notify(user)
	return names.Link{User: user, ID: id}.String()
}

// SetLinkState moves the user's link (its name) to state.
func (c *Consent) SetLinkState(link string, state app.LinkState) {
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

// FailResolve makes every ResolvePartner fail with err (nil: answer again).
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
func (c *Consent) Send(ch app.Change) { c.changes <- ch }

// covering returns the user's VALID links with scope; revoked tells
// whether a revoked one had it.
func (c *Consent) covering(user string, scope commonv1.Scope) (valid []Link, revoked bool) {
	for _, l := range c.links[user] {
		if !slices.Contains(l.Scopes, scope) {
			continue
		}
		switch l.State {
		case app.LinkValid:
			valid = append(valid, l)
		case app.LinkRevoked:
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

// App is the fake as the app's Consent port.
func (c *Consent) App() app.Consent { return appConsent{c} }

type appConsent struct{ c *Consent }

func (a appConsent) ResolvePartner(_ context.Context, partner, partnerUserID string, _ commonv1.Scope) (app.PartnerUser, error) {
	a.c.mu.Lock()
	defer a.c.mu.Unlock()
	if a.c.resolveErr != nil {
		return app.PartnerUser{}, a.c.resolveErr
	}
	o, ok := a.c.optIns[[2]string{partner, partnerUserID}]
	switch {
	case !ok:
		return app.PartnerUser{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, "no such partner user")
	case o.Revoked:
		return app.PartnerUser{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, "the opt-in was revoked")
	}
	return app.PartnerUser{User: o.User, OptIn: names.User(o.User) + "/partnerOptIns/" + partner, Client: o.Client}, nil
}

func (a appConsent) CoveringLinks(_ context.Context, user string, scope commonv1.Scope, _ commonv1.Purpose) ([]app.CoveringLink, error) {
	a.c.mu.Lock()
	defer a.c.mu.Unlock()
	valid, _ := a.c.covering(user, scope)
	var out []app.CoveringLink
	for _, l := range valid {
		out = append(out, app.CoveringLink{Link: names.Link{User: user, ID: l.ID}.String(), BankID: l.BankID, Client: l.Client})
	}
	return out, nil
}

func (a appConsent) Decide(_ context.Context, user string, scope commonv1.Scope, purpose commonv1.Purpose) error {
	_, err := a.c.decide(user, scope, "", purpose)
	return err
}

func (a appConsent) Record(ctx context.Context, e access.Entry) error { return a.c.Record(ctx, e) }

func (a appConsent) AllChanges() (<-chan app.Change, func()) { return a.c.changes, func() {} }

// ErrRecord is a failure of the access log.
var ErrRecord = errors.New("the access log is unavailable")
