package sandbox

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

const (
	// challengeLifetime is how long a challenge waits for its code.
	challengeLifetime = 5 * time.Minute
	// maxConsentLifetime caps what the bank grants at once, as PSD2 banks do.
	maxConsentLifetime = 90 * 24 * time.Hour
	// maxSinceSCA caps how long a consent lasts after the customer's last
	// SCA however often it is extended without one, as Berlin Group banks
	// allow (180 days since the 2022 RTS); past it, ExtendConsent asks for
	// a new SCA.
	maxSinceSCA = 180 * 24 * time.Hour
)

// grantable reports whether a bank consent can cover scope; receipts and
// shipping are not the bank's data.
func grantable(scope commonv1.Scope) bool {
	switch scope {
	case commonv1.Scope_SCOPE_ACCOUNTS, commonv1.Scope_SCOPE_BALANCES,
		commonv1.Scope_SCOPE_TRANSACTIONS, commonv1.Scope_SCOPE_SUPPORT,
		commonv1.Scope_SCOPE_FRAUD_ALERTS:
		return true
	}
	return false
}

// consent is one consent at the bank. It is guarded by Bank.mu, except
// id and login, which never change.
type consent struct {
	id             string
	login          string
	scopes         []commonv1.Scope
	status         adapterv1.ScaStatus
	revoked        bool
	requestedUntil time.Time
	validUntil     time.Time
	expireTime     time.Time
	wrongCodes     int
	// scaTime is when the customer last passed SCA on this consent.
	scaTime time.Time
	// extension is the running challenge of an ExtendConsent that asked
	// for SCA; nil when none runs.
	extension *extension
}

// extension is the SCA challenge of a consent's extension.
type extension struct {
	requestedUntil time.Time
	expireTime     time.Time
	wrongCodes     int
}

// codeAttempts is how many codes a challenge accepts, as most banks allow
// a few typos before they lock the challenge.
const codeAttempts = 5

// usable checks that the consent may serve scope now.
func (c *consent) usable(now time.Time, scope commonv1.Scope) error {
	switch {
	case c.revoked:
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, "the consent was revoked")
	case c.status != adapterv1.ScaStatus_SCA_STATUS_FINALISED:
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, "the consent is not authorised")
	case !now.Before(c.validUntil):
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED, "the consent has expired")
	case !slices.Contains(c.scopes, scope):
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED,
			"the consent does not cover "+strings.ToLower(strings.TrimPrefix(scope.String(), "SCOPE_")))
	}
	return nil
}

// StartSca implements adapters.SCAAdapter: it needs the login hint, offers
// OTP only and grants accounts, balances, transactions, support and fraud
// alerts.
func (b *Bank) StartSca(ctx context.Context, req *adapterv1.StartScaRequest) (*adapterv1.StartScaResponse, error) {
	if err := b.bankCall(ctx); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return idempotent(b.idem, "StartSca", req.GetIdempotencyKey(), req, func() (*adapterv1.StartScaResponse, error) {
		if req.GetLoginHint() == "" {
			return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT,
				"invalid request: login_hint: this bank needs the customer's login",
				apierr.WithFieldViolations(apierr.FieldViolation{
					Field: "login_hint", Description: "this bank needs the customer's login", Reason: "sandbox.login_hint_required",
				}))
		}
		cust := b.customers[req.GetLoginHint()]
		if cust == nil {
			return nil, notFound("customer with this login")
		}
		for _, s := range req.GetScopes() {
			if !grantable(s) {
				return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED,
					fmt.Sprintf("the bank cannot grant scope %s", strings.TrimPrefix(s.String(), "SCOPE_")))
			}
		}
		now := b.opts.Now()
		c := &consent{
			id:             randomID("cns-"),
			login:          cust.login,
			scopes:         slices.Clone(req.GetScopes()),
			status:         adapterv1.ScaStatus_SCA_STATUS_STARTED,
			requestedUntil: req.GetValidUntil().AsTime(),
			expireTime:     now.Add(challengeLifetime),
		}
		b.consents[c.id] = c
		return &adapterv1.StartScaResponse{
			BankConsentId:   c.id,
			Method:          adapterv1.ScaMethod_SCA_METHOD_OTP,
			ChallengeText:   "Enter the 6-digit code we sent to your phone. In the sandbox the code is always " + Code + ".",
			ExpireTime:      timestamppb.New(c.expireTime),
			AttemptsAllowed: codeAttempts,
		}, nil
	})
}

// VerifySca implements adapters.SCAAdapter: Code finalises the challenge;
// any other code is refused with SCA_FAILED and the attempts left, and the
// fifth wrong code locks the challenge for good (SCA_LOCKED).
func (b *Bank) VerifySca(ctx context.Context, req *adapterv1.VerifyScaRequest) (*adapterv1.VerifyScaResponse, error) {
	if err := b.bankCall(ctx); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return idempotent(b.idem, "VerifySca", req.GetIdempotencyKey(), req, func() (*adapterv1.VerifyScaResponse, error) {
		c := b.consents[req.GetBankConsentId()]
		switch {
		case c == nil:
			return nil, errUnknownConsent()
		case c.revoked:
			return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, "the consent was revoked")
		}
		now := b.opts.Now()
		resp := &adapterv1.VerifyScaResponse{BankConsentId: c.id}
		switch c.status {
		case adapterv1.ScaStatus_SCA_STATUS_STARTED:
			if !now.Before(c.expireTime) || !now.Before(c.requestedUntil) {
				return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_SCA_EXPIRED, "the challenge has expired")
			}
			if req.GetCode() == "" {
				return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT,
					"invalid request: code: required for an OTP challenge",
					apierr.WithFieldViolations(apierr.FieldViolation{
						Field: "code", Description: "required for an OTP challenge", Reason: "sandbox.code_required",
					}))
			}
			if req.GetCode() == Code {
				c.status = adapterv1.ScaStatus_SCA_STATUS_FINALISED
				c.scaTime = now
				c.validUntil = c.requestedUntil
				if limit := now.Add(maxConsentLifetime); limit.Before(c.validUntil) {
					c.validUntil = limit
				}
			} else {
				c.wrongCodes++
				if c.wrongCodes >= codeAttempts {
					c.status = adapterv1.ScaStatus_SCA_STATUS_FAILED
					return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED,
						"too many wrong codes; the challenge is locked")
				}
				return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_SCA_FAILED, "the code is wrong",
					apierr.WithMetadata("attempts_remaining", strconv.Itoa(codeAttempts-c.wrongCodes)))
			}
		case adapterv1.ScaStatus_SCA_STATUS_FAILED:
			return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED, "the challenge is locked")
		case adapterv1.ScaStatus_SCA_STATUS_FINALISED:
			if !now.Before(c.validUntil) {
				return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED, "the consent has expired")
			}
			if c.extension != nil {
				if err := c.verifyExtension(now, req.GetCode()); err != nil {
					return nil, err
				}
			}
		}
		resp.Status = c.status
		if c.status == adapterv1.ScaStatus_SCA_STATUS_FINALISED {
			resp.ValidUntil = timestamppb.New(c.validUntil)
		}
		return resp, nil
	})
}

// RevokeConsent implements adapters.SCAAdapter; an unknown or revoked
// consent succeeds.
func (b *Bank) RevokeConsent(ctx context.Context, req *adapterv1.RevokeConsentRequest) (*adapterv1.RevokeConsentResponse, error) {
	if err := b.bankCall(ctx); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if c := b.consents[req.GetBankConsentId()]; c != nil {
		c.revoked = true
	}
	return &adapterv1.RevokeConsentResponse{}, nil
}
