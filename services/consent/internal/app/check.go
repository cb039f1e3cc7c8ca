package app

import (
	"context"
	"fmt"
	"slices"
	"time"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// ConsentQuery is a data call to decide on.
type ConsentQuery struct {
	User string
	// BankID is the bank that holds the data; "" lets any bank's link cover
	// it.
	BankID  string
	Scope   commonv1.Scope
	Purpose commonv1.Purpose
}

// Decision is the answer to a ConsentQuery.
type Decision struct {
	Allowed bool
	// Link is, when allowed, the link that covers the call; when denied,
	// the most relevant one, or "" when there is none.
	Link string
	// ExpireTime and BankConsentID go with an allowed decision.
	ExpireTime    time.Time
	BankConsentID string
	// ValidFor is how long the consent remains valid from the moment it
	// was decided on, by this service's clock: a caller that keeps the
	// decision counts it on its own clock, which may disagree with ours.
	ValidFor time.Duration
	// DenialReason says why not: CONSENT_REQUIRED, CONSENT_EXPIRED,
	// CONSENT_REVOKED, CONSENT_REVOKED_BY_BANK or PURPOSE_NOT_ALLOWED.
	DenialReason commonv1.ErrorReason
}

// CheckConsent decides, from the store and never from a cache, whether the
// user has a VALID, unexpired link that covers the scope and purpose (at
// the bank, when one is named). It writes nothing.
//
// A denial names the most telling reason: PURPOSE_NOT_ALLOWED for
// advertising and marketing, or when a VALID link covers the scope but not
// the purpose; else CONSENT_REVOKED (CONSENT_REVOKED_BY_BANK when its
// bank revoked it) or CONSENT_EXPIRED when the newest link that covered the
// scope was revoked or expired; else CONSENT_REQUIRED.
func (s *Service) CheckConsent(ctx context.Context, q ConsentQuery) (Decision, error) {
	if q.Purpose == commonv1.Purpose_PURPOSE_ADVERTISING || q.Purpose == commonv1.Purpose_PURPOSE_MARKETING {
		return Decision{DenialReason: commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED}, nil
	}
	links, err := s.store.UserLinks(ctx, q.User, q.BankID)
	if err != nil {
		return Decision{}, fmt.Errorf("read links: %w", err)
	}
	now := s.now()
	// Newest first, so the first match is the most relevant.
	slices.SortFunc(links, func(a, b Link) int {
		if c := b.CreateTime.Compare(a.CreateTime); c != 0 {
			return c
		}
		return compareStrings(b.ID, a.ID)
	})
	var wrongPurpose, ended *Link
	for i := range links {
		l := links[i].At(now)
		if !slices.Contains(l.Scopes, q.Scope) {
			continue
		}
		switch l.State {
		case StateValid:
			if slices.Contains(l.Purposes, q.Purpose) {
				return Decision{Allowed: true, Link: l.Name(), ExpireTime: l.ExpireTime, BankConsentID: l.BankConsentID, ValidFor: l.ExpireTime.Sub(now)}, nil
			}
			if wrongPurpose == nil {
				wrongPurpose = &l
			}
		case StateRevoked, StateExpired:
			if ended == nil {
				ended = &l
			}
		}
	}
	switch {
	case wrongPurpose != nil:
		return Decision{Link: wrongPurpose.Name(), DenialReason: commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED}, nil
	case ended != nil && ended.State == StateRevoked && ended.RevokedByBank:
		return Decision{Link: ended.Name(), DenialReason: commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK}, nil
	case ended != nil && ended.State == StateRevoked:
		return Decision{Link: ended.Name(), DenialReason: commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED}, nil
	case ended != nil:
		return Decision{Link: ended.Name(), DenialReason: commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED}, nil
	default:
		return Decision{DenialReason: commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED}, nil
	}
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
