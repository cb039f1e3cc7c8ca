package sandbox_test

import (
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/adapters/sandbox"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// clock is a settable clock for the sandbox; it only moves forward, so
// that what the sandbox grants stays in the real future the protocol's
// rules check against.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

const day = 24 * time.Hour

func TestExtendConsent(t *testing.T) {
	t.Parallel()
	t0 := time.Now().Add(time.Minute).Truncate(time.Second)
	clk := &clock{now: t0}
	c := inProcess(t, newBank(t, sandbox.Options{Now: clk.Now}), nil)
	linkFor := func(t *testing.T, login string) string {
		t.Helper()
		start, err := c.StartSca(t.Context(), &adapterv1.StartScaRequest{
			UserReference: "user-" + login, LoginHint: login, Scopes: []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS},
			ValidUntil: timestamppb.New(clk.Now().Add(90 * day)), IdempotencyKey: "link-" + t.Name(),
		})
		if err != nil {
			t.Fatal(err)
		}
		v, err := c.VerifySca(t.Context(), &adapterv1.VerifyScaRequest{BankConsentId: start.GetBankConsentId(), Code: sandbox.Code, IdempotencyKey: "verify-" + t.Name()})
		if err != nil || !v.GetValidUntil().AsTime().Equal(clk.Now().Add(90*day)) {
			t.Fatalf("linking %s: %v until %v, want 90 days", login, err, v.GetValidUntil().AsTime())
		}
		return v.GetBankConsentId()
	}
	extend := func(t *testing.T, consent string, until time.Time, key string) (*adapterv1.ExtendConsentResponse, error) {
		t.Helper()
		return c.ExtendConsent(t.Context(), &adapterv1.ExtendConsentRequest{BankConsentId: consent, ValidUntil: timestamppb.New(until), IdempotencyKey: key})
	}
	wantExtended := func(t *testing.T, resp *adapterv1.ExtendConsentResponse, err error, want time.Time) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.GetExtended().GetValidUntil().AsTime(); resp.GetExtended() == nil || !got.Equal(want) {
			t.Fatalf("ExtendConsent = %v, want extended until %s", resp, want)
		}
	}
	verify := func(t *testing.T, consent, code, key string) (*adapterv1.VerifyScaResponse, error) {
		t.Helper()
		return c.VerifySca(t.Context(), &adapterv1.VerifyScaRequest{BankConsentId: consent, Code: code, IdempotencyKey: key})
	}

	// One timeline, moving forward: the subtests run in order.
	alice := linkFor(t, "alice")
	t.Run("alice reconfirms without SCA, by 90 days", func(t *testing.T) {
		clk.set(t0.Add(83 * day))
		resp, err := extend(t, alice, t0.Add(173*day), "extend-alice-1")
		wantExtended(t, resp, err, t0.Add(173*day))
		again, err := extend(t, alice, t0.Add(173*day), "extend-alice-1")
		wantExtended(t, again, err, t0.Add(173*day))
	})
	t.Run("180 days after her SCA cap the second extension", func(t *testing.T) {
		clk.set(t0.Add(166 * day))
		resp, err := extend(t, alice, t0.Add(256*day), "extend-alice-2")
		wantExtended(t, resp, err, t0.Add(180*day))
		if _, err := c.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: alice}); err != nil {
			t.Errorf("the extended consent does not serve: %v", err)
		}
	})
	t.Run("at the cap, the bank asks for SCA, which extends from then", func(t *testing.T) {
		clk.set(t0.Add(173 * day))
		resp, err := extend(t, alice, t0.Add(263*day), "extend-alice-3")
		if err != nil || resp.GetScaRequired() == nil || resp.GetScaRequired().GetMethod() != adapterv1.ScaMethod_SCA_METHOD_OTP {
			t.Fatalf("ExtendConsent at the cap = %v, %v; want an OTP challenge", resp, err)
		}
		v, err := verify(t, alice, sandbox.Code, "verify-alice-3")
		if err != nil || v.GetStatus() != adapterv1.ScaStatus_SCA_STATUS_FINALISED || !v.GetValidUntil().AsTime().Equal(t0.Add(263*day)) {
			t.Fatalf("VerifySca = %v, %v; want FINALISED until day 263", v, err)
		}
	})

	bob := linkFor(t, "bob")
	t.Run("bob's bank always asks for SCA; a wrong code keeps the consent as it was", func(t *testing.T) {
		requested := clk.Now().Add(90 * day)
		resp, err := extend(t, bob, requested, "extend-bob")
		if err != nil || resp.GetScaRequired() == nil {
			t.Fatalf("ExtendConsent = %v, %v; want a challenge", resp, err)
		}
		_, err = verify(t, bob, "654321", "verify-bob-wrong")
		wantReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED)
		if got := apierr.Info(err).GetMetadata()["attempts_remaining"]; got != "4" {
			t.Errorf("attempts_remaining %q, want 4", got)
		}
		if _, err := c.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: bob}); err != nil {
			t.Errorf("the consent stopped serving during its extension's challenge: %v", err)
		}
		clk.set(clk.Now().Add(time.Minute)) // within the challenge's 5 minutes
		v, err := verify(t, bob, sandbox.Code, "verify-bob-right")
		if err != nil || v.GetStatus() != adapterv1.ScaStatus_SCA_STATUS_FINALISED || !v.GetValidUntil().AsTime().Equal(requested) {
			t.Fatalf("VerifySca = %v, %v; want FINALISED until the time asked for", v, err)
		}
	})

	t.Run("unknown, revoked and pending consents", func(t *testing.T) {
		_, err := extend(t, "cns-none", clk.Now().Add(day), "extend-unknown")
		wantReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK)
		start, err := c.StartSca(t.Context(), &adapterv1.StartScaRequest{
			UserReference: "user-pending", LoginHint: "alice", Scopes: []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS},
			ValidUntil: timestamppb.New(clk.Now().Add(day)), IdempotencyKey: "start-pending",
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = extend(t, start.GetBankConsentId(), clk.Now().Add(day), "extend-pending")
		wantReason(t, err, commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION)
		if _, err := c.RevokeConsent(t.Context(), &adapterv1.RevokeConsentRequest{BankConsentId: bob}); err != nil {
			t.Fatal(err)
		}
		_, err = extend(t, bob, clk.Now().Add(day), "extend-revoked")
		wantReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK) // the registry's mapping of CONSENT_REVOKED

		short, err := c.StartSca(t.Context(), &adapterv1.StartScaRequest{
			UserReference: "user-short", LoginHint: "erin", Scopes: []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS},
			ValidUntil: timestamppb.New(clk.Now().Add(day)), IdempotencyKey: "start-short",
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := verify(t, short.GetBankConsentId(), sandbox.Code, "verify-short"); err != nil {
			t.Fatal(err)
		}
		clk.set(clk.Now().Add(2 * day))
		_, err = extend(t, short.GetBankConsentId(), clk.Now().Add(day), "extend-expired")
		wantReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED)
	})
}
