package access

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
)

// Need is what one call needs consent for.
type Need struct {
	Scope commonv1.Scope
	// BankID is the bank whose consent must cover the call; "" means any of
	// the user's banks.
	BankID string
}

// Decision is an allowed consent decision: the link and the bank-side
// consent id a service uses to reach the bank.
type Decision struct {
	Link          string
	BankConsentID string
}

// ConsentChecker decides consent for the kit. Decide returns an apierr
// PERMISSION_DENIED error (CONSENT_REQUIRED, CONSENT_EXPIRED,
// CONSENT_REVOKED, PURPOSE_NOT_ALLOWED) to refuse, or any other error when
// it cannot tell (the call is refused either way: fail closed).
// ReportBankRevocation marks a link revoked because its bank no longer
// honours the consent behind it.
type ConsentChecker interface {
	Decide(ctx context.Context, user string, need Need, purpose commonv1.Purpose) (Decision, error)
	ReportBankRevocation(ctx context.Context, link string) error
}

// Recorder appends entries to users' access logs, durably, before the kit
// lets data leave. An error means the entry is not recorded, and the call
// fails with AUDIT_UNAVAILABLE.
type Recorder interface {
	Record(ctx context.Context, e Entry) error
}

// Banks tells the kit which banks are configured, so a call naming another
// bank is refused before any consent is asked for.
type Banks interface {
	HasBank(id string) bool
}

// MaxResourceLen caps the resource name an entry records; requests are
// validated first, so this only bounds what a future contract might allow.
const MaxResourceLen = 256

// Entry is one access to a user's data, the one shape every service
// records. The kit builds it; Proto renders it for RecordAccess.
type Entry struct {
	Time      time.Time
	User      string // the user id, not users/{user}
	ClientID  string
	SubjectID string // the pseudonymous id of the token's subject
	Method    string
	Resource  string
	Purpose   commonv1.Purpose
	Scope     commonv1.Scope
	Allowed   bool
	// Reason is why a denied call was refused; UNSPECIFIED when allowed.
	Reason  commonv1.ErrorReason
	TraceID string
}

// NewEntry records a decided call of g's user: allowed when err is nil,
// otherwise denied with err's reason (INTERNAL for an error without one,
// as the caller saw it masked).
func NewEntry(g Grant, subjectID, traceID string, now time.Time, err error) Entry {
	e := Entry{
		Time: now, User: g.User, ClientID: g.Principal.Client, SubjectID: subjectID,
		Method: g.Method, Resource: capResource(g.Resource), Purpose: g.Purpose,
		Allowed: err == nil, TraceID: traceID,
	}
	if len(g.Scopes) > 0 {
		e.Scope = g.Scopes[0]
	}
	if err != nil {
		e.Reason = apierr.Reason(err)
		if e.Reason == commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
			e.Reason = commonv1.ErrorReason_ERROR_REASON_INTERNAL
		}
	}
	return e
}

func capResource(r string) string {
	if len(r) > MaxResourceLen {
		return r[:MaxResourceLen]
	}
	return r
}

// Proto is e as the consent contract's AccessLogEntry.
func (e Entry) Proto() *consentv1.AccessLogEntry {
	out := &consentv1.AccessLogEntry{
		AccessTime: timestamppb.New(e.Time),
		ClientId:   e.ClientID,
		SubjectId:  e.SubjectID,
		Method:     e.Method,
		Resource:   e.Resource,
		Purpose:    e.Purpose,
		Scope:      e.Scope,
		Outcome:    consentv1.AccessOutcome_ACCESS_OUTCOME_ALLOWED,
		TraceId:    e.TraceID,
	}
	if !e.Allowed {
		out.Outcome = consentv1.AccessOutcome_ACCESS_OUTCOME_DENIED
		out.Reason = apierr.ReasonString(e.Reason)
	}
	return out
}

// Pseudonyms turns a token's issuer and subject into a stable pseudonymous
// id (a keyed hash), so an access log can say which identity read the data
// without holding the identity itself. Every replica must share the key.
type Pseudonyms struct{ key []byte }

// NewPseudonyms returns pseudonyms keyed with key.
func NewPseudonyms(key []byte) Pseudonyms { return Pseudonyms{key: append([]byte(nil), key...)} }

// SubjectID is the pseudonymous id of (issuer, subject): 32 hex digits.
func (p Pseudonyms) SubjectID(issuer, subject string) string {
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(issuer))
	m.Write([]byte{0})
	m.Write([]byte(subject))
	return hex.EncodeToString(m.Sum(nil)[:16])
}
