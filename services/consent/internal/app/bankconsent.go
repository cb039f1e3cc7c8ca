package app

import (
	"context"
	"fmt"
	"slices"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// BankConsentQuery names a bank's consent, as the bank's adapter names it
// in an event, and the scope the asking service is about to act under.
type BankConsentQuery struct {
	BankID        string
	BankConsentID string
	Scope         commonv1.Scope
}

// BankConsentDecision is the answer to a BankConsentQuery.
type BankConsentDecision struct {
	Allowed bool
	// Link is, when allowed, the link the consent belongs to.
	Link Link
	// DenialReason says why not: CONSENT_REQUIRED, CONSENT_EXPIRED or
	// CONSENT_REVOKED.
	DenialReason commonv1.ErrorReason
}

// ResolveBankConsent decides, from the store, whether the bank's consent
// bankConsentID is a VALID, unexpired link's that covers the scope, and
// whose link it is. It writes nothing.
//
// A denial says CONSENT_REVOKED or CONSENT_EXPIRED when the newest link
// with that consent id that covered the scope is over, CONSENT_REQUIRED
// otherwise: no link of the bank has that consent id, or none covers the
// scope, or the link is not VALID yet (or was rejected). A link its bank
// revoked reads as CONSENT_REVOKED: the bank's events under it are as
// unwelcome as after the user's revocation.
func (s *Service) ResolveBankConsent(ctx context.Context, q BankConsentQuery) (BankConsentDecision, error) {
	links, err := s.store.BankConsentLinks(ctx, q.BankID, q.BankConsentID)
	if err != nil {
		return BankConsentDecision{}, fmt.Errorf("read links by bank consent: %w", err)
	}
	now := s.now()
	// Newest first, so the first match is the most relevant.
	slices.SortFunc(links, func(a, b Link) int {
		if c := b.CreateTime.Compare(a.CreateTime); c != 0 {
			return c
		}
		return compareStrings(b.ID, a.ID)
	})
	var ended *Link
	for i := range links {
		l := links[i].At(now)
		if !slices.Contains(l.Scopes, q.Scope) {
			continue
		}
		switch l.State {
		case StateValid:
			return BankConsentDecision{Allowed: true, Link: l}, nil
		case StateRevoked, StateExpired:
			if ended == nil {
				ended = &l
			}
		}
	}
	switch {
	case ended != nil && ended.State == StateRevoked:
		return BankConsentDecision{DenialReason: commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED}, nil
	case ended != nil:
		return BankConsentDecision{DenialReason: commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED}, nil
	}
	return BankConsentDecision{DenialReason: commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED}, nil
}
