package consenttest_test

import (
	"errors"
	"testing"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck/consenttest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// TestResolveBankConsent: the fake answers as the checker does, so that a
// service's tests of its bank events see the real decisions.
func TestResolveBankConsent(t *testing.T) {
	t.Parallel()
	alerts := commonv1.Scope_SCOPE_FRAUD_ALERTS
	c := consenttest.New(commonv1.Scope_SCOPE_SUPPORT, alerts)
	link := c.AddLink("alice", "sandbox")
	c.AddLink("bob", "sandbox", commonv1.Scope_SCOPE_SUPPORT)

	got, err := c.ResolveBankConsent(t.Context(), "sandbox", consenttest.BankConsentID("alice", "sandbox"), alerts)
	if err != nil || got.User != "alice" || got.Link.Link != link || got.Link.Client != "chat-app" || got.Link.BankID != "sandbox" {
		t.Fatalf("ResolveBankConsent = %+v, %v; want alice's %s", got, err, link)
	}
	tests := []struct {
		name     string
		bank, id string
		reason   commonv1.ErrorReason
	}{
		{"a link without the scope", "sandbox", consenttest.BankConsentID("bob", "sandbox"), commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED},
		{"another bank", "otherbank", consenttest.BankConsentID("alice", "sandbox"), commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED},
		{"an unknown id", "sandbox", "bc-nobody", commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED},
	}
	for _, tt := range tests {
		_, err := c.ResolveBankConsent(t.Context(), tt.bank, tt.id, alerts)
		testkit.RequireReason(t, err, tt.reason)
	}
	c.SetLinkState(link, consentv1.ConsentState_CONSENT_STATE_EXPIRED)
	_, err = c.ResolveBankConsent(t.Context(), "sandbox", consenttest.BankConsentID("alice", "sandbox"), alerts)
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED)
	c.SetLinkState(link, consentv1.ConsentState_CONSENT_STATE_REVOKED)
	_, err = c.ResolveBankConsent(t.Context(), "sandbox", consenttest.BankConsentID("alice", "sandbox"), alerts)
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED)

	failure := errors.New("consent service down")
	c.FailResolve(failure)
	if _, err := c.ResolveBankConsent(t.Context(), "sandbox", consenttest.BankConsentID("alice", "sandbox"), alerts); !errors.Is(err, failure) {
		t.Errorf("ResolveBankConsent = %v, want %v", err, failure)
	}
}
