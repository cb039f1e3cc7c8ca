package app

import (
	"slices"
	"time"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/names"
)

// State is where a link's consent is in its lifecycle. The names match
// bankbridge.consent.v1.ConsentState without its prefix.
type State int

// The states of a link.
const (
	StateUnspecified State = iota
	// StateReceived: created, the SCA challenge is running; covers no data.
	StateReceived
	// StateValid: the user passed SCA; covers its scopes and purposes. Its
	// SCA may be a running reconfirmation challenge (ReconfirmLink).
	StateValid
	// StateExpired: expire_time passed. Final.
	StateExpired
	// StateRevoked: the user revoked it, a newer link replaced it, or the
	// bank no longer honours its consent (Link.RevokedByBank). Final.
	StateRevoked
	// StateRejected: the challenge failed, locked, expired or was declined. Final.
	StateRejected
)

var stateNames = []string{"UNSPECIFIED", "RECEIVED", "VALID", "EXPIRED", "REVOKED", "REJECTED"}

// String returns the state's name, e.g. "VALID".
func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return "UNSPECIFIED"
	}
	return stateNames[s]
}

// ParseState is the inverse of String; unknown names give StateUnspecified.
func ParseState(name string) State {
	return State(max(0, slices.Index(stateNames, name)))
}

// ScaMethod is how the user authenticates to the bank. The names match
// bankbridge.consent.v1.ScaMethod without its prefix.
type ScaMethod int

// The SCA methods.
const (
	ScaMethodUnspecified ScaMethod = iota
	// ScaMethodOTP: a one-time code that the user passes to VerifyLink.
	ScaMethodOTP
	// ScaMethodDecoupled: the user approves in the bank's app.
	ScaMethodDecoupled
	// ScaMethodRedirect: the user authenticates on the bank's page.
	ScaMethodRedirect
)

var scaMethodNames = []string{"UNSPECIFIED", "OTP", "DECOUPLED", "REDIRECT"}

// String returns the method's name, e.g. "OTP".
func (m ScaMethod) String() string {
	if m < 0 || int(m) >= len(scaMethodNames) {
		return "UNSPECIFIED"
	}
	return scaMethodNames[m]
}

// ParseScaMethod is the inverse of String.
func ParseScaMethod(name string) ScaMethod {
	return ScaMethod(max(0, slices.Index(scaMethodNames, name)))
}

// ScaStatus is where a challenge is. The names match
// bankbridge.consent.v1.ScaStatus without its prefix.
type ScaStatus int

// The SCA statuses.
const (
	ScaStatusUnspecified ScaStatus = iota
	// ScaStatusStarted: waiting for the user.
	ScaStatusStarted
	// ScaStatusFinalised: the user passed; the link is VALID.
	ScaStatusFinalised
	// ScaStatusFailed: declined or refused; the link is REJECTED.
	ScaStatusFailed
	// ScaStatusLocked: too many wrong codes; the link is REJECTED.
	ScaStatusLocked
	// ScaStatusExpired: not completed in time; the link is REJECTED.
	ScaStatusExpired
)

var scaStatusNames = []string{"UNSPECIFIED", "STARTED", "FINALISED", "FAILED", "LOCKED", "EXPIRED"}

// String returns the status's name, e.g. "STARTED".
func (s ScaStatus) String() string {
	if s < 0 || int(s) >= len(scaStatusNames) {
		return "UNSPECIFIED"
	}
	return scaStatusNames[s]
}

// ParseScaStatus is the inverse of String.
func ParseScaStatus(name string) ScaStatus {
	return ScaStatus(max(0, slices.Index(scaStatusNames, name)))
}

// SCA is a link's two-factor challenge.
type SCA struct {
	Method ScaMethod
	Status ScaStatus
	// AttemptsRemaining is how many more wrong OTP codes are accepted; 0
	// for DECOUPLED and REDIRECT.
	AttemptsRemaining int
	// FailedAttempts counts the wrong codes so far.
	FailedAttempts int
	// ExpireTime is when the challenge expires if not completed.
	ExpireTime time.Time
	// RedirectURI is the bank's page, for REDIRECT.
	RedirectURI string
	// Instruction is the bank's short instruction to the user.
	Instruction string
}

// Link is a user's link to one bank and the consent it carries.
type Link struct {
	// User and ID make the name users/{User}/links/{ID}.
	User, ID string
	// Client is the client (product) the link was created through; its
	// webhooks get the link's events. Empty for links older than that
	// record: their events go to no webhook.
	Client          string
	BankID          string
	BankDisplayName string
	State           State
	Scopes          []commonv1.Scope
	Purposes        []commonv1.Purpose
	// ExpireTime is when the consent ends; set from creation on.
	ExpireTime time.Time
	CreateTime time.Time
	UpdateTime time.Time
	// VerifyTime is when the link became VALID; zero before.
	VerifyTime time.Time
	// RevokeTime is when the link became REVOKED; zero otherwise.
	RevokeTime time.Time
	// RevokedByBank says the link became REVOKED because its bank no
	// longer knows or honours the consent, not at the user's request.
	RevokedByBank bool
	// BankConsentID is the bank's id for the consent. Internal: it is
	// never returned to clients.
	BankConsentID string
	SCA           SCA
	// ExpiryWarnTime is when the expiry warning event was written; zero
	// before.
	ExpiryWarnTime time.Time
	// LoginHash is the keyed hash of the bank login hint the link was
	// made with (Service.loginHash), under which wrong codes are counted
	// across links; "" for links older than that record. Internal.
	LoginHash string
	// Decoy says the bank knows no customer by that login: the link looks
	// like any other, but no code passes its challenge and BankConsentID is
	// made up. Internal: it is never returned to anyone.
	Decoy bool
}

// Name is the link's resource name, users/{user}/links/{link}.
func (l Link) Name() string { return names.Link{User: l.User, ID: l.ID}.String() }

// At returns the link as it reads at now: a VALID link whose ExpireTime has
// passed is EXPIRED, a VALID link's reconfirmation challenge that has
// expired is EXPIRED, and a RECEIVED link whose challenge has expired is
// REJECTED with its challenge EXPIRED.
func (l Link) At(now time.Time) Link {
	switch {
	case l.State == StateValid && !now.Before(l.ExpireTime):
		l.State = StateExpired
		if l.SCA.Status == ScaStatusStarted {
			l.SCA.Status, l.SCA.AttemptsRemaining = ScaStatusExpired, 0
		}
	case l.State == StateValid && l.SCA.Status == ScaStatusStarted && !l.SCA.ExpireTime.IsZero() && !now.Before(l.SCA.ExpireTime):
		l.SCA.Status, l.SCA.AttemptsRemaining = ScaStatusExpired, 0
	case l.State == StateReceived && !l.SCA.ExpireTime.IsZero() && !now.Before(l.SCA.ExpireTime):
		l.State = StateRejected
		l.SCA.Status = ScaStatusExpired
		l.SCA.AttemptsRemaining = 0
	}
	return l
}

// Change is a committed change of a link's or a partner opt-in's state, as
// WatchConsentChanges streams it: LinkID and State for a link, OptInID,
// Partner and OptInState for a partner opt-in.
type Change struct {
	User, LinkID string
	State        State
	OptInID      string
	Partner      string
	OptInState   OptInState
}
