package banks_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/adapters/sandbox"
	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/consent/internal/banks"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// inProcess is the sandbox behind the SDK's registry, in process.
func inProcess(t *testing.T) *banks.Adapters {
	t.Helper()
	return banks.New(testkit.SandboxRegistry(t))
}

func TestAdaptersLinkWithTheSandbox(t *testing.T) {
	t.Parallel()
	b := inProcess(t)
	if info, err := b.Bank("sandbox"); err != nil || info.DisplayName != "Sandbox Bank" {
		t.Fatalf("Bank(sandbox) = %+v, %v", info, err)
	}
	if _, err := b.Bank("nobank"); !apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_BANK_NOT_FOUND) {
		t.Fatalf("Bank(nobank) = %v, want BANK_NOT_FOUND", err)
	}
	until := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second)
	ch, err := b.StartSca(t.Context(), "sandbox", app.StartScaRequest{
		UserReference: "u-ref-1", LoginHint: "alice",
		// Receipts are not the bank's to grant: they stay on bankbridge's side.
		Scopes:     []commonv1.Scope{commonv1.Scope_SCOPE_BALANCES, commonv1.Scope_SCOPE_RECEIPTS},
		ValidUntil: until, IdempotencyKey: "key-00000001",
	})
	if err != nil {
		t.Fatal(err)
	}
	if ch.Method != app.ScaMethodOTP || ch.BankConsentID == "" || ch.ExpireTime.IsZero() || ch.Instruction == "" {
		t.Fatalf("challenge %+v", ch)
	}
	res, err := b.VerifySca(t.Context(), "sandbox", app.VerifyScaRequest{BankConsentID: ch.BankConsentID, Code: sandbox.Code, IdempotencyKey: "key-00000002"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != app.ScaStatusFinalised || !res.ValidUntil.Equal(until) {
		t.Fatalf("verify = %+v, want FINALISED until %v", res, until)
	}
	longer := until.Add(10 * 24 * time.Hour)
	ext, err := b.ExtendConsent(t.Context(), "sandbox", app.ExtendConsentRequest{BankConsentID: ch.BankConsentID, ValidUntil: longer, IdempotencyKey: "key-00000003"})
	if err != nil || ext.Challenge != nil || !ext.ValidUntil.Equal(longer) {
		t.Fatalf("extend = %+v, %v; want extended until %v without SCA", ext, err, longer)
	}
	if err := b.RevokeConsent(t.Context(), "sandbox", ch.BankConsentID); err != nil {
		t.Fatal(err)
	}
}

func TestAdaptersExtendWithSCAWhereTheBankAsks(t *testing.T) {
	t.Parallel()
	b := inProcess(t)
	until := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second)
	ch, err := b.StartSca(t.Context(), "sandbox", app.StartScaRequest{
		UserReference: "u-ref-2", LoginHint: "bob", Scopes: []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS},
		ValidUntil: until, IdempotencyKey: "key-00000011",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.VerifySca(t.Context(), "sandbox", app.VerifyScaRequest{BankConsentID: ch.BankConsentID, Code: sandbox.Code, IdempotencyKey: "key-00000012"}); err != nil {
		t.Fatal(err)
	}
	ext, err := b.ExtendConsent(t.Context(), "sandbox", app.ExtendConsentRequest{BankConsentID: ch.BankConsentID, ValidUntil: until.Add(24 * time.Hour), IdempotencyKey: "key-00000013"})
	if err != nil || ext.Challenge == nil {
		t.Fatalf("extend = %+v, %v; want a challenge", ext, err)
	}
	if c := ext.Challenge; c.Method != app.ScaMethodOTP || c.BankConsentID != ch.BankConsentID || c.AttemptsAllowed != 5 || c.Instruction == "" {
		t.Errorf("challenge %+v: want OTP on the same consent, 5 attempts, an instruction", c)
	}
	_, err = b.ExtendConsent(t.Context(), "sandbox", app.ExtendConsentRequest{BankConsentID: "cns-unknown", ValidUntil: until, IdempotencyKey: "key-00000014"})
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK)
}

func TestAdaptersPassTheBanksErrorsOn(t *testing.T) {
	t.Parallel()
	b := inProcess(t)
	tests := []struct {
		name   string
		req    app.StartScaRequest
		reason commonv1.ErrorReason
	}{
		{"unknown login", app.StartScaRequest{LoginHint: "zed"}, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND},
		{"login needed", app.StartScaRequest{}, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT},
		{"only scopes the bank cannot grant", app.StartScaRequest{LoginHint: "alice", Scopes: []commonv1.Scope{commonv1.Scope_SCOPE_SHIPPING}},
			commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.req.UserReference = "u-ref"
			if tt.req.Scopes == nil {
				tt.req.Scopes = []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS}
			}
			tt.req.ValidUntil = time.Now().Add(time.Hour)
			tt.req.IdempotencyKey = fmt.Sprintf("key-%08d", i)
			_, err := b.StartSca(t.Context(), "sandbox", tt.req)
			if !apierr.Is(err, tt.reason) {
				t.Fatalf("StartSca = %v, want %s", err, apierr.ReasonString(tt.reason))
			}
		})
	}
}

// TestAdaptersAConsentTheBankForgot: a sandbox that knows no such consent
// (say, restarted since) answers VerifySca with CONSENT_REVOKED_BY_BANK,
// in bankbridge's words, which VerifyLink takes as a challenge the bank
// forgot.
func TestAdaptersAConsentTheBankForgot(t *testing.T) {
	t.Parallel()
	b := inProcess(t)
	_, err := b.VerifySca(t.Context(), "sandbox", app.VerifyScaRequest{BankConsentID: "cns-from-before-a-restart", Code: sandbox.Code, IdempotencyKey: "key-00000003"})
	if !apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK) {
		t.Fatalf("VerifySca = %v, want CONSENT_REVOKED_BY_BANK", err)
	}
	if msg := status.Convert(err).Message(); strings.Contains(msg, "knows no such consent") {
		t.Errorf("message %q: the bank's own words reached the caller", msg)
	}
}
