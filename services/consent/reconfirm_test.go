package main

// Issue 9 in the consent service, over gRPC with the sandbox bank served
// remotely: ReconfirmLink with and without a new SCA, each of its
// documented failures, and revocations that reach a bank which was down
// when the user revoked, across a restart of the consent service.

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/sandbox"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// switchableBank is the sandbox with a switch that takes its consent
// management down (RevokeConsent and ExtendConsent answer
// BANK_UNAVAILABLE), as a bank's outage would, and counts the revocations
// it was asked for.
type switchableBank struct {
	*sandbox.Bank
	down    atomic.Bool
	revokes atomic.Int64
	// starts and verifies count StartSca and VerifySca calls (see
	// linking_abuse_test.go), each taking verifyDelay; extends counts
	// ExtendConsent calls. StartSca and ExtendConsent take bankDelay.
	starts, verifies, extends atomic.Int64
	verifyDelay, bankDelay    atomic.Int64
}

func (b *switchableBank) unavailable() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, "the bank is down", apierr.WithRetryAfter(time.Second))
}

func (b *switchableBank) RevokeConsent(ctx context.Context, req *adapterv1.RevokeConsentRequest) (*adapterv1.RevokeConsentResponse, error) {
	b.revokes.Add(1)
	if b.down.Load() {
		return nil, b.unavailable()
	}
	return b.Bank.RevokeConsent(ctx, req)
}

func (b *switchableBank) ExtendConsent(ctx context.Context, req *adapterv1.ExtendConsentRequest) (*adapterv1.ExtendConsentResponse, error) {
	b.extends.Add(1)
	time.Sleep(time.Duration(b.bankDelay.Load()))
	if b.down.Load() {
		return nil, b.unavailable()
	}
	return b.Bank.ExtendConsent(ctx, req)
}

// withoutExtension is an adapter that links and serves accounts but cannot
// extend a consent, as adapters written before the capability.
type withoutExtension struct {
	adapters.Adapter
	adapters.SCAAdapter
	adapters.AccountsAdapter
}

func (w withoutExtension) Info(ctx context.Context) (*adapterv1.GetAdapterInfoResponse, error) {
	info, err := w.Adapter.Info(ctx)
	if err != nil {
		return nil, err
	}
	info.Capabilities = adapters.Capabilities(w)
	return info, nil
}

func (e *env) reconfirm(ctx context.Context, t testing.TB, name string) (*consentv1.Link, error) {
	t.Helper()
	resp, err := e.consent.ReconfirmLink(ctx, &consentv1.ReconfirmLinkRequest{Name: name, IdempotencyKey: randomKey(t)})
	return resp.GetLink(), err
}

func (e *env) linked(t testing.TB, user, bank string) *consentv1.Link {
	t.Helper()
	l, err := e.verify(t, user, e.createLink(t, user, bank).GetName(), sandbox.Code)
	if err != nil || l.GetState() != consentv1.ConsentState_CONSENT_STATE_VALID {
		t.Fatalf("linking %s to %s: %v, %v", user, bank, l.GetState(), err)
	}
	return l
}

func TestReconfirmLink(t *testing.T) {
	e := startEnv(t)

	t.Run("alice's bank extends without a new SCA", func(t *testing.T) {
		l := e.linked(t, "alice", "sandbox")
		got, err := e.reconfirm(e.as(t, "alice"), t, l.GetName())
		if err != nil {
			t.Fatal(err)
		}
		if got.GetState() != consentv1.ConsentState_CONSENT_STATE_VALID || got.GetSca().GetStatus() != consentv1.ScaStatus_SCA_STATUS_FINALISED ||
			!got.GetExpireTime().AsTime().After(l.GetExpireTime().AsTime()) {
			t.Errorf("reconfirmed link %s / %s until %v; want VALID / FINALISED past %v", got.GetState(), got.GetSca().GetStatus(),
				got.GetExpireTime().AsTime(), l.GetExpireTime().AsTime())
		}
		if until := time.Until(got.GetExpireTime().AsTime()); until > 90*24*time.Hour {
			t.Errorf("expire_time in %s, more than 90 days", until)
		}
	})

	t.Run("bob's bank asks for SCA, and VerifyLink completes it", func(t *testing.T) {
		l := e.linked(t, "bob", "sandbox")
		pending, err := e.reconfirm(e.as(t, "bob"), t, l.GetName())
		if err != nil {
			t.Fatal(err)
		}
		if pending.GetState() != consentv1.ConsentState_CONSENT_STATE_VALID || pending.GetSca().GetStatus() != consentv1.ScaStatus_SCA_STATUS_STARTED ||
			pending.GetSca().GetMethod() != consentv1.ScaMethod_SCA_METHOD_OTP || pending.GetSca().GetAttemptsRemaining() != 5 ||
			!pending.GetExpireTime().AsTime().Equal(l.GetExpireTime().AsTime()) {
			t.Fatalf("link %v: want VALID with its expiry and a STARTED OTP challenge", pending)
		}
		if d := e.checkConsent(t, "bob", "sandbox"); !d.GetAllowed() {
			t.Errorf("CheckConsent during the challenge = %v, want allowed", d)
		}
		_, err = e.verify(t, "bob", l.GetName(), "000000")
		md := testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED)
		if md["attempts_remaining"] != "4" {
			t.Errorf("attempts_remaining %q, want 4", md["attempts_remaining"])
		}
		done, err := e.verify(t, "bob", l.GetName(), sandbox.Code)
		if err != nil {
			t.Fatal(err)
		}
		if done.GetState() != consentv1.ConsentState_CONSENT_STATE_VALID || done.GetSca().GetStatus() != consentv1.ScaStatus_SCA_STATUS_FINALISED ||
			!done.GetExpireTime().AsTime().After(l.GetExpireTime().AsTime()) {
			t.Errorf("after the code: %v; want VALID, FINALISED, a later expiry", done)
		}
	})

	withPurpose := func(purpose string) context.Context {
		tok, err := e.issuer.Mint("carol", chatApp, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+tok, "bankbridge-purpose", purpose)
	}
	asClient := func(client string, ttl time.Duration) context.Context {
		tok, err := e.issuer.Mint("carol", client, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+tok, "bankbridge-purpose", "CONSENT_MANAGEMENT")
	}
	carol := e.linked(t, "carol", "sandbox")
	pendingLink := e.createLink(t, "carol", "oldbank")
	revoked := e.linked(t, "dave", "sandbox")
	if _, err := e.consent.RevokeLink(e.as(t, "dave"), &consentv1.RevokeLinkRequest{Name: revoked.GetName(), IdempotencyKey: randomKey(t)}); err != nil {
		t.Fatal(err)
	}
	old := e.linked(t, "carol", "oldbank") // with pendingLink, three of Old Bank's four calls

	// Each failure code ReconfirmLink's contract names, provoked.
	tests := []struct {
		name   string
		call   func(t *testing.T) error
		reason commonv1.ErrorReason
	}{
		{"a malformed name", func(t *testing.T) error {
			_, err := e.reconfirm(e.as(t, "carol"), t, "users/carol/links/")
			return err
		}, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT},
		{"no token", func(t *testing.T) error {
			ctx := metadata.AppendToOutgoingContext(t.Context(), "bankbridge-purpose", "CONSENT_MANAGEMENT")
			_, err := e.reconfirm(ctx, t, carol.GetName())
			return err
		}, commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID},
		{"an expired token", func(t *testing.T) error {
			_, err := e.reconfirm(asClient(chatApp, -time.Minute), t, carol.GetName())
			return err
		}, commonv1.ErrorReason_ERROR_REASON_TOKEN_EXPIRED},
		{"another user's link", func(t *testing.T) error {
			_, err := e.reconfirm(e.as(t, "bob"), t, carol.GetName())
			return err
		}, commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH},
		{"a client that may not manage consents", func(t *testing.T) error {
			_, err := e.reconfirm(asClient("stranger-app", time.Hour), t, carol.GetName())
			return err
		}, commonv1.ErrorReason_ERROR_REASON_CLIENT_PURPOSE_NOT_ALLOWED},
		{"a purpose other than consent management", func(t *testing.T) error {
			_, err := e.reconfirm(withPurpose("ACCOUNT_INFORMATION"), t, carol.GetName())
			return err
		}, commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED},
		{"an unknown link", func(t *testing.T) error {
			_, err := e.reconfirm(e.as(t, "carol"), t, "users/carol/links/nope")
			return err
		}, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND},
		{"a RECEIVED link", func(t *testing.T) error {
			_, err := e.reconfirm(e.as(t, "carol"), t, pendingLink.GetName())
			return err
		}, commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION},
		{"a REVOKED link", func(t *testing.T) error {
			_, err := e.reconfirm(e.as(t, "dave"), t, revoked.GetName())
			return err
		}, commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION},
		{"a key used for another link", func(t *testing.T) error {
			key := randomKey(t)
			if _, err := e.consent.ReconfirmLink(e.as(t, "carol"), &consentv1.ReconfirmLinkRequest{Name: carol.GetName(), IdempotencyKey: key}); err != nil {
				t.Fatal(err)
			}
			_, err := e.consent.ReconfirmLink(e.as(t, "carol"), &consentv1.ReconfirmLinkRequest{Name: old.GetName(), IdempotencyKey: key})
			return err
		}, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED},
		{"a bank whose adapter cannot extend", func(t *testing.T) error {
			_, err := e.reconfirm(e.as(t, "carol"), t, old.GetName())
			return err
		}, commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED},
		{"the bank's rate limit", func(t *testing.T) error {
			_, err := e.reconfirm(e.as(t, "carol"), t, old.GetName())
			return err
		}, commonv1.ErrorReason_ERROR_REASON_RATE_LIMITED},
		{"a bank that is down", func(t *testing.T) error {
			e.bank.down.Store(true)
			defer e.bank.down.Store(false)
			_, err := e.reconfirm(e.as(t, "carol"), t, carol.GetName())
			return err
		}, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE},
		{"a bank that no longer knows the consent", func(t *testing.T) error {
			d := e.checkConsent(t, "carol", "sandbox")
			if _, err := e.bankClient(t).RevokeConsent(withAPIKey(t.Context(), e.currentSandboxKey()), &adapterv1.RevokeConsentRequest{BankConsentId: d.GetBankConsentId()}); err != nil {
				t.Fatal(err)
			}
			_, err := e.reconfirm(e.as(t, "carol"), t, carol.GetName())
			return err
		}, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testkit.RequireReason(t, tt.call(t), tt.reason)
		})
	}
	got, err := e.consent.GetLink(e.as(t, "carol"), &consentv1.GetLinkRequest{Name: carol.GetName()})
	if err != nil || got.GetLink().GetState() != consentv1.ConsentState_CONSENT_STATE_REVOKED || !got.GetLink().GetRevokedByBank() {
		t.Errorf("carol's link after her bank forgot it: %v, %v; want REVOKED by the bank", got.GetLink(), err)
	}
}

// TestRevocationReachesABankThatWasDownAcrossARestart revokes a link while
// its bank is down, stops the consent service while the revocation waits
// for its retry, brings the bank back, and starts the service again: the
// bank gets the revocation, from the event the first process committed.
func TestRevocationReachesABankThatWasDownAcrossARestart(t *testing.T) {
	e := startEnv(t)
	l := e.linked(t, "alice", "sandbox")
	consentID := e.checkConsent(t, "alice", "sandbox").GetBankConsentId()

	e.bank.down.Store(true)
	resp, err := e.consent.RevokeLink(e.as(t, "alice"), &consentv1.RevokeLinkRequest{Name: l.GetName(), IdempotencyKey: randomKey(t)})
	if err != nil || resp.GetLink().GetState() != consentv1.ConsentState_CONSENT_STATE_REVOKED {
		t.Fatalf("RevokeLink with the bank down: %v, %v; want REVOKED at once", resp.GetLink().GetState(), err)
	}
	if d := e.checkConsent(t, "alice", "sandbox"); d.GetAllowed() {
		t.Fatalf("CheckConsent after the revocation = %v, want denied", d)
	}
	if !testkit.Within(10*time.Second, func() bool { return e.bank.revokes.Load() >= 1 }) {
		t.Fatal("the bank was never asked to revoke")
	}

	e.stop()
	e.bank.down.Store(false)
	bank := e.bankClient(t)
	if _, err := bank.ListAccounts(withAPIKey(t.Context(), e.currentSandboxKey()), &adapterv1.ListAccountsRequest{BankConsentId: consentID}); err != nil {
		t.Fatalf("the bank, back up, lost the consent before being told: %v", err)
	}
	e.start(t)
	if !testkit.Within(15*time.Second, func() bool {
		_, err = bank.ListAccounts(withAPIKey(t.Context(), e.currentSandboxKey()), &adapterv1.ListAccountsRequest{BankConsentId: consentID})
		return apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED)
	}) {
		t.Fatalf("after the restart the bank still serves the revoked consent: %v (asked %d times)", err, e.bank.revokes.Load())
	}
}
