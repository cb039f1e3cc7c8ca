package main

import (
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
)

// TestCheckConsentReportsValidityByItsOwnClock: a consent service whose
// clock runs 2 min ahead (--dev-clock-offset) reports an allowed
// decision's remaining validity by that clock, so a data service keeps the
// decision for no longer than the consent lasts as consent sees it,
// whatever its own clock says.
func TestCheckConsentReportsValidityByItsOwnClock(t *testing.T) {
	const ahead = 2 * time.Minute
	e := startEnv(t, "--dev-clock-offset=2m")
	link := e.linkValid(t, "alice")
	asked := time.Now()
	resp, err := e.check.CheckConsent(e.asService(t), &consentv1.CheckConsentRequest{
		User: "users/alice", BankId: "sandbox", Scope: commonv1.Scope_SCOPE_BALANCES, Purpose: commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION,
	})
	if err != nil {
		t.Fatalf("CheckConsent: %v (%s)", err, apierr.Reason(err))
	}
	if !resp.GetAllowed() || resp.GetLink() != link || resp.GetValidFor() == nil {
		t.Fatalf("CheckConsent = %v, want allowed on %s with valid_for", resp, link)
	}
	// By consent's clock, ahead of ours: ahead less than expire_time minus
	// our clock.
	want := resp.GetExpireTime().AsTime().Sub(asked.Add(ahead))
	if got := resp.GetValidFor().AsDuration(); got > want || got < want-5*time.Second {
		t.Errorf("valid_for = %s, want %s (expire_time by consent's clock, %s ahead of ours)", got, want, ahead)
	}
}
