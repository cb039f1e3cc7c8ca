package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
)

// OptInState is where a partner opt-in is. The names match
// bankbridge.consent.v1.PartnerOptInState without its prefix.
type OptInState int

// The states of a partner opt-in.
const (
	OptInStateUnspecified OptInState = iota
	// OptInActive: the partner may push data for the user within the
	// opt-in's scopes.
	OptInActive
	// OptInRevoked: the user revoked it. Final.
	OptInRevoked
)

var optInStateNames = []string{"UNSPECIFIED", "ACTIVE", "REVOKED"}

// String returns the state's name, e.g. "ACTIVE".
func (s OptInState) String() string {
	if s < 0 || int(s) >= len(optInStateNames) {
		return "UNSPECIFIED"
	}
	return optInStateNames[s]
}

// ParseOptInState is the inverse of String; unknown names give
// OptInStateUnspecified.
func ParseOptInState(name string) OptInState {
	return OptInState(max(0, slices.Index(optInStateNames, name)))
}

// PartnerOptIn is a user's opt-in to a partner (a payment provider,
// merchant or carrier) pushing them data. The partner knows the user only
// as PartnerUserID.
type PartnerOptIn struct {
	// User and ID make the name users/{User}/partnerOptIns/{ID}.
	User, ID string
	// Partner is the partner's client id.
	Partner string
	// Client is the client (product) the user opted in through: what the
	// partner pushes is reported to its webhooks.
	Client string
	// Scopes are what the partner may push: SCOPE_RECEIPTS, SCOPE_SHIPPING.
	Scopes []commonv1.Scope
	// PartnerUserID is the opaque, random id the partner addresses the
	// user by; unique to this opt-in. Never logged.
	PartnerUserID string
	State         OptInState
	CreateTime    time.Time
	// RevokeTime is when the user revoked it; zero while ACTIVE.
	RevokeTime time.Time
}

// Name is the opt-in's resource name, users/{user}/partnerOptIns/{opt_in}.
func (o PartnerOptIn) Name() string { return names.PartnerOptIn{User: o.User, ID: o.ID}.String() }

// OptInCursor is where a page of partner opt-ins ends.
type OptInCursor struct {
	CreateTime time.Time
	ID         string
}

// The event types of partner opt-ins (events.Event.Type).
const (
	// EventPartnerOptInCreated: a user opted in to a partner.
	EventPartnerOptInCreated = "consent.partner_opt_in.created"
	// EventPartnerOptInRevoked: a partner opt-in became REVOKED.
	EventPartnerOptInRevoked = "consent.partner_opt_in.revoked"
)

// OptInEvent is the event written to the outbox when a partner opt-in is
// created (EventPartnerOptInCreated) or revoked (EventPartnerOptInRevoked),
// in the transaction of the change. Its payload is the opt-in as
// bankbridge.consent.v1.PartnerOptIn without partner_user_id: thin, ids and
// times; the product reads the opt-in with the user's token for the rest.
type OptInEvent struct {
	Type    string
	EventID string
	OptIn   PartnerOptIn
	// EventTime is when the event was written.
	EventTime time.Time
}

// partnerUserIDBytes is the entropy of a partner-scoped user id: 128 bits,
// 22 characters of URL-safe base64.
const partnerUserIDBytes = 16

// newPartnerUserID returns a fresh partner-scoped user id: random, URL-safe,
// 22 characters of [A-Za-z0-9_-].
func newPartnerUserID() string {
	var b [partnerUserIDBytes]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// CreatePartnerOptInInput is what CreatePartnerOptIn needs.
type CreatePartnerOptInInput struct {
	User string
	// Client is the client (product) the user opts in through.
	Client  string
	Partner string
	Scopes  []commonv1.Scope
}

// CreatePartnerOptIn opts the user in to a partner, minting the opt-in's
// partner-scoped user id. It is safe to retry: while the user has an ACTIVE
// opt-in to the partner with the same scopes, that one is returned, with its
// id; with other scopes the call fails with ALREADY_EXISTS (revoke it
// first). A partner not configured (Config.Partners) is NOT_FOUND. The
// opt-in and its event (consent.partner_opt_in.created) are written in one
// transaction, and watchers hear of it once committed.
func (s *Service) CreatePartnerOptIn(ctx context.Context, in CreatePartnerOptInInput) (PartnerOptIn, error) {
	if !s.cfg.Partners[in.Partner] {
		return PartnerOptIn{}, errPartnerNotFound()
	}
	now := s.now()
	var (
		out    PartnerOptIn
		answer error
	)
	// Re-reads the active opt-in under lock: a run after one that
	// committed finds it, with the same scopes, and answers with it.
	err := s.store.IdempotentTx(ctx, func(tx Tx) error {
		out, answer = PartnerOptIn{}, nil
		active, err := tx.LockActivePartnerOptIn(ctx, in.User, in.Partner)
		switch {
		case err == nil && sameScopes(active.Scopes, in.Scopes):
			out = active
			return nil
		case err == nil:
			answer = errOptInExists()
			return nil
		case !errors.Is(err, ErrNotFound):
			return err
		}
		// Minted anew on every attempt: a retried transaction (an id taken,
		// a concurrent opt-in) draws again.
		out = PartnerOptIn{
			User: in.User, ID: newID(), Partner: in.Partner, Client: in.Client,
			Scopes: slices.Clone(in.Scopes), PartnerUserID: newPartnerUserID(),
			State: OptInActive, CreateTime: now,
		}
		if err := tx.InsertPartnerOptIn(ctx, out); err != nil {
			return err
		}
		return tx.AddOptInEvent(ctx, OptInEvent{Type: EventPartnerOptInCreated, EventID: newID(), OptIn: out, EventTime: now})
	})
	if err != nil {
		return PartnerOptIn{}, fmt.Errorf("create partner opt-in: %w", err)
	}
	if answer != nil {
		return PartnerOptIn{}, answer
	}
	return out, nil
}

// sameScopes reports whether a and b hold the same scopes, in any order.
func sameScopes(a, b []commonv1.Scope) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

// RevokePartnerOptIn ends a partner opt-in: it becomes REVOKED, the
// partner's pushes for its id are refused from then on, watchers hear of
// it once committed, and its event (consent.partner_opt_in.revoked) is
// written with the change. Revoking a REVOKED opt-in returns it unchanged.
// An unknown opt-in is NOT_FOUND.
func (s *Service) RevokePartnerOptIn(ctx context.Context, user, id string) (PartnerOptIn, error) {
	now := s.now()
	var out PartnerOptIn
	// A run after one that committed finds the opt-in REVOKED and
	// returns it unchanged.
	err := s.store.IdempotentTx(ctx, func(tx Tx) error {
		o, err := tx.LockPartnerOptIn(ctx, user, id)
		if err != nil {
			return err
		}
		out = o
		if o.State == OptInRevoked {
			return nil
		}
		out.State, out.RevokeTime = OptInRevoked, now
		if err := tx.SavePartnerOptIn(ctx, out); err != nil {
			return err
		}
		return tx.AddOptInEvent(ctx, OptInEvent{Type: EventPartnerOptInRevoked, EventID: newID(), OptIn: out, EventTime: now})
	})
	if errors.Is(err, ErrNotFound) {
		return PartnerOptIn{}, errOptInNotFound()
	}
	if err != nil {
		return PartnerOptIn{}, fmt.Errorf("revoke partner opt-in: %w", err)
	}
	return out, nil
}

// ListPartnerOptInsInput is what ListPartnerOptIns needs.
type ListPartnerOptInsInput struct {
	User      string
	PageSize  int
	PageToken string
}

// ListPartnerOptIns returns one page of the user's partner opt-ins, ACTIVE
// and REVOKED, newest first, and the token of the next page ("" on the
// last).
func (s *Service) ListPartnerOptIns(ctx context.Context, in ListPartnerOptInsInput) ([]PartnerOptIn, string, error) {
	return pagetoken.ReadPage(s.cfg.PageTokens, optInsList(in), in.PageSize, in.PageToken,
		func(after *pagetoken.Position, limit int) ([]PartnerOptIn, error) {
			var cursor *OptInCursor
			if after != nil {
				cursor = &OptInCursor{CreateTime: after.Time, ID: after.ID}
			}
			optIns, err := s.store.ListPartnerOptIns(ctx, in.User, cursor, limit)
			if err != nil {
				return nil, fmt.Errorf("list partner opt-ins: %w", err)
			}
			return optIns, nil
		},
		func(o PartnerOptIn) pagetoken.Position { return pagetoken.Position{Time: o.CreateTime, ID: o.ID} })
}

// PartnerUserQuery names the partner-scoped user id a partner pushed to.
type PartnerUserQuery struct {
	// Partner is the partner's client id, from its token.
	Partner       string
	PartnerUserID string
	Scope         commonv1.Scope
}

// PartnerUserDecision is the answer to a PartnerUserQuery.
type PartnerUserDecision struct {
	Allowed bool
	// DenialReason says why not: CONSENT_REQUIRED or CONSENT_REVOKED.
	DenialReason commonv1.ErrorReason
	// OptIn is the opt-in the id belongs to; zero when the partner has no
	// such id. Its User and Client are the answer when allowed.
	OptIn PartnerOptIn
}

// ResolvePartnerUser decides whether the partner may push data of the
// scope for its partner-scoped user id, and for whom. Allowed when an
// ACTIVE opt-in to that partner carries the id and covers the scope; else
// CONSENT_REVOKED when the user revoked the opt-in, and CONSENT_REQUIRED
// when the partner has no such id or the opt-in does not cover the scope.
// Another partner's id reads exactly as an id never minted: the lookup is
// by partner and id together. It writes nothing.
func (s *Service) ResolvePartnerUser(ctx context.Context, q PartnerUserQuery) (PartnerUserDecision, error) {
	o, err := s.store.PartnerOptInByPartnerUserID(ctx, q.Partner, q.PartnerUserID)
	if errors.Is(err, ErrNotFound) {
		return PartnerUserDecision{DenialReason: commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED}, nil
	}
	if err != nil {
		return PartnerUserDecision{}, fmt.Errorf("read partner opt-in: %w", err)
	}
	switch {
	case o.State != OptInActive:
		return PartnerUserDecision{DenialReason: commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, OptIn: o}, nil
	case !slices.Contains(o.Scopes, q.Scope):
		return PartnerUserDecision{DenialReason: commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, OptIn: o}, nil
	}
	return PartnerUserDecision{Allowed: true, OptIn: o}, nil
}

// CoveringLinksQuery names the user, scope and purpose of
// ListCoveringLinks.
type CoveringLinksQuery struct {
	User    string
	Scope   commonv1.Scope
	Purpose commonv1.Purpose
}

// ListCoveringLinks returns the user's links that are VALID and unexpired
// now and cover the scope and purpose, newest first, at most one per bank
// (the newest). Advertising and marketing are covered by no link. It
// writes nothing.
func (s *Service) ListCoveringLinks(ctx context.Context, q CoveringLinksQuery) ([]Link, error) {
	if q.Purpose == commonv1.Purpose_PURPOSE_ADVERTISING || q.Purpose == commonv1.Purpose_PURPOSE_MARKETING {
		return nil, nil
	}
	links, err := s.store.UserLinks(ctx, q.User, "")
	if err != nil {
		return nil, fmt.Errorf("read links: %w", err)
	}
	now := s.now()
	slices.SortFunc(links, func(a, b Link) int {
		if c := b.CreateTime.Compare(a.CreateTime); c != 0 {
			return c
		}
		return compareStrings(b.ID, a.ID)
	})
	seen := map[string]bool{}
	var out []Link
	for _, l := range links {
		l = l.At(now)
		if l.State != StateValid || seen[l.BankID] ||
			!slices.Contains(l.Scopes, q.Scope) || !slices.Contains(l.Purposes, q.Purpose) {
			continue
		}
		seen[l.BankID] = true
		out = append(out, l)
	}
	return out, nil
}

// partners copies the configured partner set, so that the caller's map
// can change nothing here.
func partners(set map[string]bool) map[string]bool {
	out := maps.Clone(set)
	if out == nil {
		out = map[string]bool{}
	}
	maps.DeleteFunc(out, func(_ string, v bool) bool { return !v })
	return out
}

func errPartnerNotFound() error {
	const desc = "no partner with this id is known to bankbridge"
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "partner_opt_in.partner: "+desc,
		apierr.WithFieldViolations(apierr.FieldViolation{Field: "partner_opt_in.partner", Description: desc, Reason: "partner.known"}))
}

func errOptInExists() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_ALREADY_EXISTS,
		"the user's ACTIVE opt-in to this partner has other scopes; revoke it first")
}

func errOptInNotFound() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "the user has no partner opt-in with this name")
}
