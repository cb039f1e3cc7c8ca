package main

// ResolveBankConsent over real gRPC through the server kit: what a service
// that takes a bank's events (fraud alerts) sees when it asks whose a
// bank's consent id is.

import (
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/adapters/sandbox"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// everyScope is a link's seven scopes, fraud alerts among them.
var everyScope = []commonv1.Scope{
	commonv1.Scope_SCOPE_ACCOUNTS, commonv1.Scope_SCOPE_BALANCES, commonv1.Scope_SCOPE_TRANSACTIONS,
	commonv1.Scope_SCOPE_RECEIPTS, commonv1.Scope_SCOPE_SHIPPING, commonv1.Scope_SCOPE_SUPPORT,
	commonv1.Scope_SCOPE_FRAUD_ALERTS,
}

// linkScopes links user to the sandbox with scopes and returns the VALID
// link as the consent service stores it, bank consent id included (read
// with ListCoveringLinks, as a data service would).
func (e *env) linkScopes(t *testing.T, user string, scopes []commonv1.Scope) *consentv1.CoveringLink {
	t.Helper()
	resp, err := e.consent.CreateLink(e.as(t, user), &consentv1.CreateLinkRequest{
		Parent: "users/" + user,
		Link: &consentv1.Link{
			BankId: "sandbox", Scopes: scopes, BankLoginHint: user,
			Purposes: []commonv1.Purpose{commonv1.Purpose_PURPOSE_FRAUD_PREVENTION, commonv1.Purpose_PURPOSE_CUSTOMER_SUPPORT},
		},
		IdempotencyKey: randomKey(t),
	})
	if err != nil {
		t.Fatalf("CreateLink: %v", err)
	}
	l, err := e.verify(t, user, resp.GetLink().GetName(), sandbox.Code)
	if err != nil || l.GetState() != consentv1.ConsentState_CONSENT_STATE_VALID {
		t.Fatalf("VerifyLink: %v, %s", err, l.GetState())
	}
	if len(l.GetScopes()) != len(scopes) {
		t.Fatalf("link scopes %v, want %v", l.GetScopes(), scopes)
	}
	covering, err := e.check.ListCoveringLinks(e.asService(t), &consentv1.ListCoveringLinksRequest{
		User: "users/" + user, Scope: scopes[len(scopes)-1], Purpose: commonv1.Purpose_PURPOSE_FRAUD_PREVENTION,
	})
	if err != nil || len(covering.GetLinks()) != 1 || covering.GetLinks()[0].GetLink() != l.GetName() {
		t.Fatalf("ListCoveringLinks = %v, %v; want %s", covering, err, l.GetName())
	}
	return covering.GetLinks()[0]
}

func TestResolveBankConsent(t *testing.T) {
	e := startEnv(t)
	alerts := commonv1.Scope_SCOPE_FRAUD_ALERTS
	resolve := func(t *testing.T, bank, id string, scope commonv1.Scope) *consentv1.ResolveBankConsentResponse {
		t.Helper()
		resp, err := e.check.ResolveBankConsent(e.asService(t), &consentv1.ResolveBankConsentRequest{BankId: bank, BankConsentId: id, Scope: scope})
		if err != nil {
			t.Fatalf("ResolveBankConsent: %v", err)
		}
		return resp
	}
	alice := e.linkScopes(t, "alice", everyScope)
	bob := e.linkScopes(t, "bob", []commonv1.Scope{commonv1.Scope_SCOPE_SUPPORT})

	t.Run("a link with all seven scopes resolves to its user, link and client", func(t *testing.T) {
		got := resolve(t, "sandbox", alice.GetBankConsentId(), alerts)
		if !got.GetAllowed() || got.GetUser() != "users/alice" || got.GetDenialReason() != commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
			t.Fatalf("got %v, want allowed for users/alice", got)
		}
		l := got.GetLink()
		if l.GetLink() != alice.GetLink() || l.GetBankId() != "sandbox" || l.GetBankConsentId() != alice.GetBankConsentId() ||
			l.GetClient() != chatApp || len(l.GetScopes()) != 7 || l.GetExpireTime() == nil {
			t.Errorf("link %v, want %v", l, alice)
		}
	})

	t.Run("denials are answers that name nobody", func(t *testing.T) {
		tests := []struct {
			name     string
			bank, id string
			scope    commonv1.Scope
		}{
			{"a link without the scope", "sandbox", bob.GetBankConsentId(), alerts},
			{"a consent id no link has", "sandbox", "cns-nobody", alerts},
			{"the right id at another bank", "oldbank", alice.GetBankConsentId(), alerts},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got := resolve(t, tt.bank, tt.id, tt.scope)
				if got.GetAllowed() || got.GetDenialReason() != commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED ||
					got.GetUser() != "" || got.GetLink() != nil {
					t.Errorf("got %v, want CONSENT_REQUIRED and no user or link", got)
				}
			})
		}
	})

	t.Run("the contract's refusals", func(t *testing.T) {
		tests := []struct {
			name   string
			req    func(t *testing.T) *consentv1.ResolveBankConsentRequest
			user   bool
			reason commonv1.ErrorReason
			field  string
		}{
			{"a malformed bank id", func(*testing.T) *consentv1.ResolveBankConsentRequest {
				return &consentv1.ResolveBankConsentRequest{BankId: "Sandbox!", BankConsentId: "cns-1", Scope: alerts}
			}, false, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "bank_id"},
			{"a malformed consent id", func(*testing.T) *consentv1.ResolveBankConsentRequest {
				return &consentv1.ResolveBankConsentRequest{BankId: "sandbox", BankConsentId: "cns 1", Scope: alerts}
			}, false, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "bank_consent_id"},
			{"no scope", func(*testing.T) *consentv1.ResolveBankConsentRequest {
				return &consentv1.ResolveBankConsentRequest{BankId: "sandbox", BankConsentId: "cns-1"}
			}, false, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "scope"},
			{"a user's own token", func(*testing.T) *consentv1.ResolveBankConsentRequest {
				return &consentv1.ResolveBankConsentRequest{BankId: "sandbox", BankConsentId: alice.GetBankConsentId(), Scope: alerts}
			}, true, commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx := e.asService(t)
				if tt.user {
					ctx = e.as(t, "alice")
				}
				resp, err := e.check.ResolveBankConsent(ctx, tt.req(t))
				testkit.RequireReason(t, err, tt.reason)
				if tt.field != "" {
					testkit.RequireFieldViolation(t, err, tt.field)
				}
				if resp != nil {
					t.Errorf("a refusal answered %v", resp)
				}
			})
		}
	})

	t.Run("a revoked link resolves to CONSENT_REVOKED", func(t *testing.T) {
		if _, err := e.consent.RevokeLink(e.as(t, "alice"), &consentv1.RevokeLinkRequest{Name: alice.GetLink(), IdempotencyKey: randomKey(t)}); err != nil {
			t.Fatal(err)
		}
		got := resolve(t, "sandbox", alice.GetBankConsentId(), alerts)
		if got.GetAllowed() || got.GetDenialReason() != commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED || got.GetUser() != "" || got.GetLink() != nil {
			t.Errorf("got %v, want CONSENT_REVOKED and no user or link", got)
		}
	})
}

// TestCheckerResolvesBankConsents: a data service's view of a bank's
// consent, through the checker: the user and the link when allowed, the
// denial's reason as a PERMISSION_DENIED error otherwise.
func TestCheckerResolvesBankConsents(t *testing.T) {
	e := startEnv(t)
	c, _ := e.checker(t, time.Minute)
	ctx := e.asService(t)
	alerts := commonv1.Scope_SCOPE_FRAUD_ALERTS
	alice := e.linkScopes(t, "alice", everyScope)

	got, err := c.ResolveBankConsent(ctx, "sandbox", alice.GetBankConsentId(), alerts)
	if err != nil || got.User != "alice" || got.Link.Link != alice.GetLink() || got.Link.Client != chatApp || got.Link.BankID != "sandbox" {
		t.Fatalf("ResolveBankConsent = %+v, %v; want alice's %s", got, err, alice.GetLink())
	}
	_, err = c.ResolveBankConsent(ctx, "sandbox", "cns-nobody", alerts)
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED)
	if _, err := e.consent.RevokeLink(e.as(t, "alice"), &consentv1.RevokeLinkRequest{Name: alice.GetLink(), IdempotencyKey: randomKey(t)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.ResolveBankConsent(ctx, "sandbox", alice.GetBankConsentId(), alerts)
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED)
}

// TestLinkingFraudAlertsNeedsTheAdaptersEvents: a bank whose adapter
// streams no events (Old Bank's) could never deliver an alert, so a link
// asking for fraud alerts there is refused.
func TestLinkingFraudAlertsNeedsTheAdaptersEvents(t *testing.T) {
	e := startEnv(t)
	_, err := e.consent.CreateLink(e.as(t, "alice"), &consentv1.CreateLinkRequest{
		Parent: "users/alice",
		Link: &consentv1.Link{
			BankId: "oldbank", BankLoginHint: "alice",
			Scopes:   []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS, commonv1.Scope_SCOPE_FRAUD_ALERTS},
			Purposes: []commonv1.Purpose{commonv1.Purpose_PURPOSE_FRAUD_PREVENTION},
		},
		IdempotencyKey: randomKey(t),
	})
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED)
}
