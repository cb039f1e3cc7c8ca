// Package banks reaches the banks' adapters for the consent service: it
// implements app.Banks over the adapter SDK's registry (which adds
// deadlines, circuit breaker, rate limit and error mapping), and
// runtime.CredentialSource over the platform's Vault provider.
package banks

import (
	"context"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/runtime"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
)

// Adapters implements app.Banks with the registry's clients.
type Adapters struct {
	reg *runtime.Registry
}

var _ app.Banks = (*Adapters)(nil)

// New returns the banks of reg.
func New(reg *runtime.Registry) *Adapters { return &Adapters{reg: reg} }

// Bank describes a configured bank.
func (a *Adapters) Bank(id string) (app.BankInfo, error) {
	b, ok := a.reg.Bank(id)
	if !ok {
		return app.BankInfo{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_NOT_FOUND,
			"no bank with this id is configured", apierr.WithMetadata("bank_id", id))
	}
	return app.BankInfo{ID: b.ID, DisplayName: b.DisplayName}, nil
}

// consentManagement declares to the bank why bankbridge calls: linking and
// unlinking, never data.
func consentManagement(ctx context.Context) context.Context {
	return adapters.WithPurpose(ctx, commonv1.Purpose_PURPOSE_CONSENT_MANAGEMENT)
}

// bankScopes are the scopes whose data a bank holds: only those are asked
// of it. Receipts and shipments come from partners; a link covers them on
// bankbridge's side alone.
var bankScopes = []commonv1.Scope{
	commonv1.Scope_SCOPE_ACCOUNTS, commonv1.Scope_SCOPE_BALANCES,
	commonv1.Scope_SCOPE_TRANSACTIONS, commonv1.Scope_SCOPE_SUPPORT,
	commonv1.Scope_SCOPE_FRAUD_ALERTS,
}

// scopeNeeds are the adapter capabilities a scope needs besides the bank
// granting it at StartSca. The bank judges the other scopes itself (it
// refuses one it cannot serve), but fraud alerts reach bankbridge only on
// the adapter's event stream (EVENTS) and are answered with
// AnswerFraudAlert (FRAUD): a bank could grant the scope through an
// adapter that can deliver no alert, and the link would promise alerts
// that never come.
var scopeNeeds = map[commonv1.Scope][]adapterv1.Capability{
	commonv1.Scope_SCOPE_FRAUD_ALERTS: {adapterv1.Capability_CAPABILITY_FRAUD, adapterv1.Capability_CAPABILITY_EVENTS},
}

// checkCapabilities fails with UNIMPLEMENTED (CAPABILITY_NOT_SUPPORTED)
// when the bank's adapter lacks a capability one of scopes needs
// (scopeNeeds). It asks the adapter only when a scope needs one.
func checkCapabilities(ctx context.Context, c adapterv1.BankAdapterServiceClient, scopes []commonv1.Scope) error {
	var needs []commonv1.Scope
	for _, s := range scopes {
		if len(scopeNeeds[s]) > 0 {
			needs = append(needs, s)
		}
	}
	if len(needs) == 0 {
		return nil
	}
	info, err := c.GetAdapterInfo(ctx, &adapterv1.GetAdapterInfoRequest{})
	if err != nil {
		return err
	}
	for _, s := range needs {
		for _, capability := range scopeNeeds[s] {
			if !slices.Contains(info.GetCapabilities(), capability) {
				scope := strings.TrimPrefix(s.String(), "SCOPE_")
				return apierr.New(commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED,
					"the bank's adapter cannot serve scope "+scope+": it lacks "+strings.TrimPrefix(capability.String(), "CAPABILITY_"),
					apierr.WithMetadata("scope", s.String()))
			}
		}
	}
	return nil
}

// StartSca creates the consent at the bank and starts its challenge.
func (a *Adapters) StartSca(ctx context.Context, bankID string, r app.StartScaRequest) (app.Challenge, error) {
	c, err := a.reg.Client(bankID)
	if err != nil {
		return app.Challenge{}, err
	}
	if err := checkCapabilities(consentManagement(ctx), c, r.Scopes); err != nil {
		return app.Challenge{}, err
	}
	scopes := slices.DeleteFunc(slices.Clone(r.Scopes), func(s commonv1.Scope) bool { return !slices.Contains(bankScopes, s) })
	if len(scopes) == 0 {
		// Nothing of the bank's is asked for, yet the bank must still
		// authenticate the user; let it judge the scopes as they are.
		scopes = r.Scopes
	}
	resp, err := c.StartSca(consentManagement(ctx), &adapterv1.StartScaRequest{
		UserReference:   r.UserReference,
		LoginHint:       r.LoginHint,
		Scopes:          scopes,
		ValidUntil:      timestamppb.New(r.ValidUntil),
		PreferredMethod: adapterv1.ScaMethod(adapterv1.ScaMethod_value["SCA_METHOD_"+r.PreferredMethod.String()]),
		IdempotencyKey:  r.IdempotencyKey,
	})
	if err != nil {
		return app.Challenge{}, err
	}
	return app.Challenge{
		BankConsentID:   resp.GetBankConsentId(),
		Method:          app.ParseScaMethod(strings.TrimPrefix(resp.GetMethod().String(), "SCA_METHOD_")),
		Instruction:     resp.GetChallengeText(),
		ExpireTime:      resp.GetExpireTime().AsTime(),
		RedirectURI:     resp.GetRedirectUri(),
		AttemptsAllowed: int(resp.GetAttemptsAllowed()),
	}, nil
}

// VerifySca answers or polls the challenge.
func (a *Adapters) VerifySca(ctx context.Context, bankID string, r app.VerifyScaRequest) (app.VerifyScaResult, error) {
	c, err := a.reg.Client(bankID)
	if err != nil {
		return app.VerifyScaResult{}, err
	}
	resp, err := c.VerifySca(consentManagement(ctx), &adapterv1.VerifyScaRequest{
		BankConsentId:  r.BankConsentID,
		Code:           r.Code,
		IdempotencyKey: r.IdempotencyKey,
	})
	if err != nil {
		return app.VerifyScaResult{}, err
	}
	var validUntil time.Time
	if resp.GetValidUntil() != nil {
		validUntil = resp.GetValidUntil().AsTime()
	}
	return app.VerifyScaResult{
		Status:        app.ParseScaStatus(strings.TrimPrefix(resp.GetStatus().String(), "SCA_STATUS_")),
		BankConsentID: resp.GetBankConsentId(),
		ValidUntil:    validUntil,
	}, nil
}

// RevokeConsent deletes the consent at the bank.
func (a *Adapters) RevokeConsent(ctx context.Context, bankID, bankConsentID string) error {
	c, err := a.reg.Client(bankID)
	if err != nil {
		return err
	}
	_, err = c.RevokeConsent(consentManagement(ctx), &adapterv1.RevokeConsentRequest{BankConsentId: bankConsentID})
	return err
}

// ExtendConsent asks the bank to extend a consent: extended, or the
// challenge the bank wants first.
func (a *Adapters) ExtendConsent(ctx context.Context, bankID string, r app.ExtendConsentRequest) (app.Extension, error) {
	c, err := a.reg.Client(bankID)
	if err != nil {
		return app.Extension{}, err
	}
	resp, err := c.ExtendConsent(consentManagement(ctx), &adapterv1.ExtendConsentRequest{
		BankConsentId:  r.BankConsentID,
		ValidUntil:     timestamppb.New(r.ValidUntil),
		IdempotencyKey: r.IdempotencyKey,
	})
	if err != nil {
		return app.Extension{}, err
	}
	if ch := resp.GetScaRequired(); ch != nil {
		return app.Extension{Challenge: &app.Challenge{
			BankConsentID:   r.BankConsentID,
			Method:          app.ParseScaMethod(strings.TrimPrefix(ch.GetMethod().String(), "SCA_METHOD_")),
			Instruction:     ch.GetChallengeText(),
			ExpireTime:      ch.GetExpireTime().AsTime(),
			RedirectURI:     ch.GetRedirectUri(),
			AttemptsAllowed: int(ch.GetAttemptsAllowed()),
		}}, nil
	}
	// The registry validated the answer: one of the two is set.
	return app.Extension{ValidUntil: resp.GetExtended().GetValidUntil().AsTime()}, nil
}
