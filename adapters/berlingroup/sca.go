package berlingroup

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// challengeLifetime is the expire_time StartSca reports: NextGenPSD2 does
// not say how long an authorisation waits, and banks commonly allow five
// minutes.
const challengeLifetime = 5 * time.Minute

// idPattern is the protocol's pattern for every bank id it carries.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,128}$`)

// otpTypes are the NextGenPSD2 authenticationType values whose challenge
// the customer answers with a code, with what bankbridge tells them. The
// bank's own words (challengeData, name, explanation) are not passed on.
var otpTypes = map[string]string{
	"SMS_OTP":   "Enter the code your bank sent you by text message.",
	"PUSH_OTP":  "Enter the code your bank's app shows.",
	"CHIP_OTP":  "Enter the code your card reader shows.",
	"PHOTO_OTP": "Enter the code your bank's photo TAN reader shows.",
}

const (
	otpFallbackText = "Enter the one-time code from your bank."
	decoupledText   = "Approve the access in your bank's app."
	redirectText    = "Continue on your bank's page."
)

// links is a NextGenPSD2 _links object.
type links map[string]struct {
	Href string `json:"href"`
}

// follow turns one of the bank's links into a request path below BaseURL,
// refusing a link to another host or outside /v1/.
func (a *Adapter) follow(href string) (string, url.Values, error) {
	u, err := url.Parse(href)
	if err != nil || (u.IsAbs() && (u.Scheme != a.base.Scheme || u.Host != a.base.Host)) || u.Opaque != "" {
		return "", nil, errors.New("the bank sent a link to elsewhere")
	}
	p, ok := strings.CutPrefix(u.Path, a.base.Path)
	if !ok || !strings.HasPrefix(p, "/v1/") || strings.Contains(p, "..") {
		return "", nil, errors.New("the bank sent a link outside its API")
	}
	return p, u.Query(), nil
}

// scopeAccess maps bankbridge scopes to the access lists of a
// bank-offered consent (empty lists: the customer picks the accounts at
// the bank). Scopes NextGenPSD2 AIS has no service for are refused.
func scopeAccess(scopes []commonv1.Scope) (map[string][]any, error) {
	access := map[string][]any{}
	for _, s := range scopes {
		switch s {
		case commonv1.Scope_SCOPE_ACCOUNTS:
			access["accounts"] = []any{}
		case commonv1.Scope_SCOPE_BALANCES:
			access["balances"] = []any{}
		case commonv1.Scope_SCOPE_TRANSACTIONS:
			access["transactions"] = []any{}
		default:
			return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED,
				"a NextGenPSD2 AIS consent cannot cover scope "+strings.TrimPrefix(s.String(), "SCOPE_"))
		}
	}
	return access, nil
}

// StartSca implements adapters.SCAAdapter: POST /v1/consents, then, for
// EMBEDDED, start the authorisation and select an OTP method.
func (a *Adapter) StartSca(ctx context.Context, req *adapterv1.StartScaRequest) (*adapterv1.StartScaResponse, error) {
	return adapters.Idempotent(ctx, a.idem, "StartSca", req.GetIdempotencyKey(), req, func(ctx context.Context) (*adapterv1.StartScaResponse, error) {
		return a.startSca(ctx, req)
	})
}

func (a *Adapter) startSca(ctx context.Context, req *adapterv1.StartScaRequest) (*adapterv1.StartScaResponse, error) {
	if req.GetLoginHint() == "" {
		return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT,
			"invalid request: login_hint: the bank needs the customer's PSU-ID",
			apierr.WithFieldViolations(apierr.FieldViolation{Field: "login_hint", Description: "the bank needs the customer's PSU-ID", Reason: "berlingroup.psu_id_required"}))
	}
	access, err := scopeAccess(req.GetScopes())
	if err != nil {
		return nil, err
	}
	method := a.opts.ScaMethods[0]
	if p := req.GetPreferredMethod(); slices.Contains(a.opts.ScaMethods, p) {
		method = p
	}
	if method == adapterv1.ScaMethod_SCA_METHOD_REDIRECT && req.GetReturnUri() == "" {
		if a.opts.ScaMethods[0] == adapterv1.ScaMethod_SCA_METHOD_REDIRECT {
			return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT,
				"invalid request: return_uri: the bank's redirect SCA needs it",
				apierr.WithFieldViolations(apierr.FieldViolation{Field: "return_uri", Description: "the bank's redirect SCA needs it", Reason: "berlingroup.return_uri_required"}))
		}
		method = a.opts.ScaMethods[0]
	}
	header := http.Header{}
	header.Set("PSU-ID", req.GetLoginHint())
	header.Set("PSU-IP-Address", a.opts.PSUIPAddress)
	switch method {
	case adapterv1.ScaMethod_SCA_METHOD_REDIRECT:
		header.Set("TPP-Redirect-Preferred", "true")
		header.Set("TPP-Redirect-URI", req.GetReturnUri())
	case adapterv1.ScaMethod_SCA_METHOD_DECOUPLED:
		header.Set("TPP-Redirect-Preferred", "false")
		header.Set("TPP-Decoupled-Preferred", "true")
	default:
		header.Set("TPP-Redirect-Preferred", "false")
	}
	body := map[string]any{
		"access":                   access,
		"recurringIndicator":       true,
		"validUntil":               req.GetValidUntil().AsTime().UTC().Format(time.DateOnly),
		"frequencyPerDay":          a.opts.FrequencyPerDay,
		"combinedServiceIndicator": false,
	}
	ans, err := a.do(ctx, request{method: http.MethodPost, path: "/v1/consents", body: body, header: header})
	if err != nil {
		return nil, err
	}
	if ans.status != http.StatusCreated && ans.status != http.StatusOK {
		if ans.has("PSU_CREDENTIALS_INVALID") {
			return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "the bank knows no customer by this login")
		}
		if err := a.mapCommon(ctx, ans, ""); err != nil {
			return nil, err
		}
		return nil, unexpected("create consent", ans)
	}
	var created struct {
		ConsentStatus string `json:"consentStatus"`
		ConsentID     string `json:"consentId"`
		Links         links  `json:"_links"`
	}
	if err := ans.decode(&created); err != nil {
		return nil, err
	}
	if !idPattern.MatchString(created.ConsentID) || created.ConsentStatus != "received" {
		return nil, errors.New("create consent: the bank answered a malformed consent")
	}
	resp := &adapterv1.StartScaResponse{BankConsentId: created.ConsentID, ExpireTime: timestamppb.New(a.opts.Now().Add(challengeLifetime))}
	switch approach := ans.header.Get("ASPSP-SCA-Approach"); approach {
	case "REDIRECT":
		href := created.Links["scaRedirect"].Href
		u, err := url.Parse(href)
		if err != nil || u.Scheme != "https" || u.Host == "" || len(href) > 2048 {
			return nil, errors.New("create consent: the bank's scaRedirect is not an https URL")
		}
		resp.Method, resp.RedirectUri, resp.ChallengeText = adapterv1.ScaMethod_SCA_METHOD_REDIRECT, href, redirectText
	case "DECOUPLED":
		if _, ok := created.Links["scaStatus"]; !ok {
			if _, err := a.startAuthorisation(ctx, created.ConsentID, created.Links); err != nil {
				return nil, err
			}
		}
		resp.Method, resp.ChallengeText = adapterv1.ScaMethod_SCA_METHOD_DECOUPLED, decoupledText
	case "EMBEDDED":
		text, err := a.embedded(ctx, created.ConsentID, created.Links)
		if err != nil {
			return nil, err
		}
		resp.Method, resp.ChallengeText = adapterv1.ScaMethod_SCA_METHOD_OTP, text
	default:
		return nil, errors.New("create consent: the bank named no SCA approach this adapter runs")
	}
	return resp, nil
}

// scaMethod is one entry of scaMethods / chosenScaMethod.
type scaMethod struct {
	AuthenticationType     string `json:"authenticationType"`
	AuthenticationMethodID string `json:"authenticationMethodId"`
}

// authorisationAnswer is the body of the authorisation calls.
type authorisationAnswer struct {
	ScaStatus       string      `json:"scaStatus"`
	AuthorisationID string      `json:"authorisationId"`
	ScaMethods      []scaMethod `json:"scaMethods"`
	ChosenScaMethod *scaMethod  `json:"chosenScaMethod"`
	Links           links       `json:"_links"`
}

// startAuthorisation starts the consent's authorisation with the PSU
// identified by the consent's PSU-ID: the adapter never handles the
// customer's online banking password (psuData), which a chat must not ask
// for.
func (a *Adapter) startAuthorisation(ctx context.Context, consentID string, l links) (*authorisationAnswer, error) {
	path := "/v1/consents/" + url.PathEscape(consentID) + "/authorisations"
	switch {
	case l["startAuthorisationWithPsuIdentification"].Href != "", l["startAuthorisation"].Href != "":
		href := l["startAuthorisationWithPsuIdentification"].Href
		if href == "" {
			href = l["startAuthorisation"].Href
		}
		p, _, err := a.follow(href)
		if err != nil {
			return nil, err
		}
		path = p
	case l["startAuthorisationWithPsuAuthentication"].Href != "":
		// The bank wants the customer's password first: not offered.
		return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED,
			"the bank's embedded SCA needs the customer's password; use redirect or decoupled")
	}
	ans, err := a.do(ctx, request{method: http.MethodPost, path: path, body: map[string]any{}})
	if err != nil {
		return nil, err
	}
	if ans.status != http.StatusCreated && ans.status != http.StatusOK {
		if err := a.mapCommon(ctx, ans, consentID); err != nil {
			return nil, err
		}
		return nil, unexpected("start authorisation", ans)
	}
	var auth authorisationAnswer
	if err := ans.decode(&auth); err != nil {
		return nil, err
	}
	if !idPattern.MatchString(auth.AuthorisationID) {
		return nil, errors.New("start authorisation: the bank answered a malformed authorisationId")
	}
	return &auth, nil
}

// embedded runs EMBEDDED up to the OTP: start the authorisation, select
// the first OTP method the bank offers. It returns the text for the
// customer.
func (a *Adapter) embedded(ctx context.Context, consentID string, l links) (string, error) {
	auth, err := a.startAuthorisation(ctx, consentID, l)
	if err != nil {
		return "", err
	}
	if auth.ScaStatus == "scaMethodSelected" && auth.ChosenScaMethod != nil {
		return otpText(auth.ChosenScaMethod.AuthenticationType), nil
	}
	i := slices.IndexFunc(auth.ScaMethods, func(m scaMethod) bool { _, ok := otpTypes[m.AuthenticationType]; return ok })
	if i < 0 || !idPattern.MatchString(auth.ScaMethods[i].AuthenticationMethodID) {
		return "", apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_LOGIN_REQUIRED, "the bank offers the customer no one-time code method")
	}
	ans, err := a.do(ctx, request{method: http.MethodPut, path: a.authorisationPath(consentID, auth.AuthorisationID),
		body: map[string]string{"authenticationMethodId": auth.ScaMethods[i].AuthenticationMethodID}})
	if err != nil {
		return "", err
	}
	if ans.status != http.StatusOK {
		if err := a.mapCommon(ctx, ans, consentID); err != nil {
			return "", err
		}
		return "", unexpected("select SCA method", ans)
	}
	var selected authorisationAnswer
	if err := ans.decode(&selected); err != nil {
		return "", err
	}
	if selected.ScaStatus != "scaMethodSelected" {
		return "", errors.New("select SCA method: the bank answered an unexpected scaStatus")
	}
	return otpText(auth.ScaMethods[i].AuthenticationType), nil
}

func otpText(authenticationType string) string {
	if t, ok := otpTypes[authenticationType]; ok {
		return t
	}
	return otpFallbackText
}

func (a *Adapter) authorisationPath(consentID, authorisationID string) string {
	return "/v1/consents/" + url.PathEscape(consentID) + "/authorisations/" + url.PathEscape(authorisationID)
}

// VerifySca implements adapters.SCAAdapter: it reads the consent's status
// and, while it is not valid, its last authorisation: with a code it sends
// the OTP (scaAuthenticationData), without one it polls scaStatus.
func (a *Adapter) VerifySca(ctx context.Context, req *adapterv1.VerifyScaRequest) (*adapterv1.VerifyScaResponse, error) {
	return adapters.Idempotent(ctx, a.idem, "VerifySca", req.GetIdempotencyKey(), req, func(ctx context.Context) (*adapterv1.VerifyScaResponse, error) {
		return a.verifySca(ctx, req)
	})
}

func (a *Adapter) verifySca(ctx context.Context, req *adapterv1.VerifyScaRequest) (*adapterv1.VerifyScaResponse, error) {
	id := req.GetBankConsentId()
	st, err := a.consentStatus(ctx, id)
	if err != nil {
		return nil, err
	}
	switch st {
	case "valid":
		return a.finalised(ctx, id)
	case "revokedByPsu", "terminatedByTpp":
		return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, "the consent was revoked")
	case "expired":
		return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED, "the consent has expired")
	}
	authID, err := a.lastAuthorisation(ctx, id)
	if err != nil {
		return nil, err
	}
	if authID == "" {
		if st == "rejected" {
			return &adapterv1.VerifyScaResponse{Status: adapterv1.ScaStatus_SCA_STATUS_FAILED, BankConsentId: id}, nil
		}
		return &adapterv1.VerifyScaResponse{Status: adapterv1.ScaStatus_SCA_STATUS_STARTED, BankConsentId: id}, nil
	}
	sca, err := a.scaStatus(ctx, id, authID)
	if err != nil {
		return nil, err
	}
	if req.GetCode() != "" && sca == "scaMethodSelected" {
		return a.sendOTP(ctx, id, authID, req.GetCode())
	}
	switch {
	case sca == "finalised" && st != "rejected":
		return a.finalised(ctx, id)
	case sca == "failed" || st == "rejected":
		if req.GetCode() != "" {
			return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED, "the bank accepts no more codes for this challenge")
		}
		return &adapterv1.VerifyScaResponse{Status: adapterv1.ScaStatus_SCA_STATUS_FAILED, BankConsentId: id}, nil
	case sca == "scaMethodSelected":
		return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "invalid request: code: required for an OTP challenge",
			apierr.WithFieldViolations(apierr.FieldViolation{Field: "code", Description: "required for an OTP challenge", Reason: "berlingroup.code_required"}))
	}
	return &adapterv1.VerifyScaResponse{Status: adapterv1.ScaStatus_SCA_STATUS_STARTED, BankConsentId: id}, nil
}

// scaStatuses are the scaStatus values of the specification.
var scaStatuses = map[string]bool{
	"received": true, "psuIdentified": true, "psuAuthenticated": true, "scaMethodSelected": true,
	"started": true, "unconfirmed": true, "finalised": true, "failed": true, "exempted": true,
}

func (a *Adapter) scaStatus(ctx context.Context, consentID, authID string) (string, error) {
	ans, err := a.do(ctx, request{method: http.MethodGet, path: a.authorisationPath(consentID, authID)})
	if err != nil {
		return "", err
	}
	if ans.status != http.StatusOK {
		if err := a.mapCommon(ctx, ans, consentID); err != nil {
			return "", err
		}
		return "", unexpected("authorisation status", ans)
	}
	var s authorisationAnswer
	if err := ans.decode(&s); err != nil {
		return "", err
	}
	if !scaStatuses[s.ScaStatus] {
		return "", errors.New("authorisation status: the bank answered an unknown scaStatus")
	}
	if s.ScaStatus == "exempted" {
		return "finalised", nil
	}
	return s.ScaStatus, nil
}

// lastAuthorisation is the consent's latest authorisation id; "" for none.
func (a *Adapter) lastAuthorisation(ctx context.Context, consentID string) (string, error) {
	ans, err := a.do(ctx, request{method: http.MethodGet, path: "/v1/consents/" + url.PathEscape(consentID) + "/authorisations"})
	if err != nil {
		return "", err
	}
	if ans.status != http.StatusOK {
		if err := a.mapCommon(ctx, ans, consentID); err != nil {
			return "", err
		}
		return "", unexpected("list authorisations", ans)
	}
	var l struct {
		AuthorisationIDs []string `json:"authorisationIds"`
	}
	if err := ans.decode(&l); err != nil {
		return "", err
	}
	if len(l.AuthorisationIDs) == 0 {
		return "", nil
	}
	last := l.AuthorisationIDs[len(l.AuthorisationIDs)-1]
	if !idPattern.MatchString(last) {
		return "", errors.New("list authorisations: the bank answered a malformed authorisationId")
	}
	return last, nil
}

// sendOTP sends the customer's code. A wrong one is SCA_FAILED while the
// authorisation goes on, SCA_LOCKED once the bank failed it. NextGenPSD2
// does not say how many attempts are left, so attempts_remaining is not
// set.
func (a *Adapter) sendOTP(ctx context.Context, consentID, authID, code string) (*adapterv1.VerifyScaResponse, error) {
	ans, err := a.do(ctx, request{method: http.MethodPut, path: a.authorisationPath(consentID, authID),
		body: map[string]string{"scaAuthenticationData": code}})
	if err != nil {
		return nil, err
	}
	switch {
	case ans.status == http.StatusOK:
		var s authorisationAnswer
		if err := ans.decode(&s); err != nil {
			return nil, err
		}
		switch s.ScaStatus {
		case "finalised", "exempted":
			return a.finalised(ctx, consentID)
		case "failed":
			return &adapterv1.VerifyScaResponse{Status: adapterv1.ScaStatus_SCA_STATUS_FAILED, BankConsentId: consentID}, nil
		}
		return nil, errors.New("send OTP: the bank answered an unexpected scaStatus")
	case ans.has("RESOURCE_EXPIRED"):
		return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_SCA_EXPIRED, "the challenge has expired")
	case ans.has("PSU_CREDENTIALS_INVALID"), ans.has("STATUS_INVALID"):
		sca, err := a.scaStatus(ctx, consentID, authID)
		if err != nil {
			return nil, err
		}
		if sca == "failed" {
			return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED, "the bank accepts no more codes for this challenge")
		}
		return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_SCA_FAILED, "the code is wrong")
	}
	if err := a.mapCommon(ctx, ans, consentID); err != nil {
		return nil, err
	}
	return nil, unexpected("send OTP", ans)
}

// finalised answers FINALISED with the consent's validUntil: the end of
// that day (UTC), as NextGenPSD2 dates are inclusive.
func (a *Adapter) finalised(ctx context.Context, consentID string) (*adapterv1.VerifyScaResponse, error) {
	ans, err := a.do(ctx, request{method: http.MethodGet, path: "/v1/consents/" + url.PathEscape(consentID)})
	if err != nil {
		return nil, err
	}
	if ans.status != http.StatusOK {
		if err := a.mapCommon(ctx, ans, consentID); err != nil {
			return nil, err
		}
		return nil, unexpected("read consent", ans)
	}
	var c struct {
		ValidUntil    string `json:"validUntil"`
		ConsentStatus string `json:"consentStatus"`
	}
	if err := ans.decode(&c); err != nil {
		return nil, err
	}
	day, err := time.Parse(time.DateOnly, c.ValidUntil)
	if err != nil {
		return nil, errors.New("read consent: the bank answered a malformed validUntil")
	}
	until := day.AddDate(0, 0, 1)
	if !until.After(a.opts.Now()) || c.ConsentStatus != "valid" {
		return nil, errors.New("read consent: the bank's consent is not valid")
	}
	return &adapterv1.VerifyScaResponse{Status: adapterv1.ScaStatus_SCA_STATUS_FINALISED, BankConsentId: consentID, ValidUntil: timestamppb.New(until)}, nil
}

// RevokeConsent implements adapters.SCAAdapter: DELETE /v1/consents/{id}.
// A consent the bank does not know, or no longer serves, is gone already.
func (a *Adapter) RevokeConsent(ctx context.Context, req *adapterv1.RevokeConsentRequest) (*adapterv1.RevokeConsentResponse, error) {
	ans, err := a.do(ctx, request{method: http.MethodDelete, path: "/v1/consents/" + url.PathEscape(req.GetBankConsentId())})
	if err != nil {
		return nil, err
	}
	switch {
	case ans.status == http.StatusNoContent, ans.status == http.StatusOK,
		ans.has("CONSENT_UNKNOWN"), ans.has("CONSENT_EXPIRED"), ans.has("CONSENT_INVALID"), ans.status == http.StatusNotFound:
		return &adapterv1.RevokeConsentResponse{}, nil
	}
	if err := a.mapCommon(ctx, ans, ""); err != nil {
		return nil, err
	}
	return nil, unexpected("delete consent", ans)
}
