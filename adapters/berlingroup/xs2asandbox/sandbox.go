// Package xs2asandbox is a bank that speaks the Berlin Group NextGenPSD2
// Access-to-Account interface (Implementation Guidelines 1.3.x), account
// information (AIS) only, written from the public specification for
// testing adapters/berlingroup. It serves plain HTTP handlers; serve them
// over TLS with a configuration that requires a client certificate
// ([PKI.ServerTLS]), as an ASPSP requires the TPP's QWAC. eIDAS
// certificates (QWAC, QSealC) and request signing are out of scope: any
// client certificate of the test CA is a TPP, known by its common name.
//
// What it serves:
//
//	POST   /v1/consents                                  create an AIS consent (EMBEDDED, DECOUPLED or REDIRECT)
//	GET    /v1/consents/{consentId}                      the consent
//	GET    /v1/consents/{consentId}/status               its consentStatus
//	DELETE /v1/consents/{consentId}                      terminate it (terminatedByTpp)
//	POST   /v1/consents/{consentId}/authorisations       start an authorisation (EMBEDDED)
//	GET    /v1/consents/{consentId}/authorisations       the consent's authorisation ids
//	GET    /v1/consents/{consentId}/authorisations/{id}  an authorisation's scaStatus
//	PUT    /v1/consents/{consentId}/authorisations/{id}  select the SCA method, send the OTP
//	GET    /v1/accounts                                  the accounts of the consent
//	GET    /v1/accounts/{id}/balances                    one account's balances
//	GET    /v1/accounts/{id}/transactions                bookingStatus, dateFrom, dateTo; paged by _links.next
//
// and, playing the PSU: GET /sandbox/sca/{consentId}/{authorisationId}
// (the scaRedirect page: approves, or denies with ?decision=deny, then
// redirects to TPP-Redirect-URI) and POST
// /sandbox/psu/decoupled/{consentId}?decision=approve|deny (the PSU's answer
// in the banking app), and POST /sandbox/psu/revoke/{consentId} (the PSU
// revokes the consent at the bank: revokedByPsu).
//
// The SCA approach follows the TPP's preference: TPP-Redirect-Preferred:
// true (with TPP-Redirect-URI) gets REDIRECT, TPP-Decoupled-Preferred: true
// gets DECOUPLED, anything else EMBEDDED. EMBEDDED runs: start the
// authorisation (PSU identified by the consent's PSU-ID; psuData.password
// is accepted but not needed), select an SCA method (authenticationMethodId
// "sms" or "push"), send scaAuthenticationData = [OTP]. [MaxOTPAttempts]
// wrong codes fail the authorisation and reject the consent.
//
// Every /v1 request needs X-Request-ID (a UUID), echoed in the response.
// Errors carry a tppMessages body with the specification's codes and
// statuses: FORMAT_ERROR (400), PSU_CREDENTIALS_INVALID (401),
// CONSENT_INVALID (401), CONSENT_EXPIRED (401), CONSENT_UNKNOWN (403 when
// in the path, 400 when in the Consent-ID header), RESOURCE_UNKNOWN (404),
// RESOURCE_EXPIRED (403), SERVICE_BLOCKED (403), STATUS_INVALID (409),
// PERIOD_INVALID (400), ACCESS_EXCEEDED (429, Retry-After); a down bank
// answers 503 with Retry-After. PSUs: see [PSUAnna] and the others.
package xs2asandbox

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// OTP is the one-time password every PSU's authorisation accepts.
const OTP = "123456"

// MaxOTPAttempts is how many wrong OTPs fail an authorisation.
const MaxOTPAttempts = 3

// Options tune the sandbox. The zero value is a well-behaved bank.
type Options struct {
	// Now is the bank's clock; default time.Now.
	Now func() time.Time
	// PageSize is how many transactions one page of GET
	// /v1/accounts/{id}/transactions holds; default 3.
	PageSize int
	// MaxConsentDays caps a consent's validUntil, counted from its
	// creation; default 90.
	MaxConsentDays int
	// AuthorisationLifetime is how long an authorisation waits for the
	// PSU; default 5 minutes.
	AuthorisationLifetime time.Duration
}

// Bank is a running sandbox ASPSP, safe for concurrent use.
type Bank struct {
	opts Options
	mu   sync.Mutex
	psus map[string]*psu
	// consents by id.
	consents map[string]*consent
}

type consent struct {
	id          string
	tpp         string
	psu         *psu
	status      string // received, valid, rejected, revokedByPsu, expired, terminatedByTpp
	validUntil  string
	access      access
	approach    string
	redirectURI string
	frequency   int
	recurring   bool
	lastAction  string
	auths       []*authorisation
}

type authorisation struct {
	id        string
	scaStatus string // received, psuIdentified, psuAuthenticated, scaMethodSelected, started, finalised, failed
	method    string
	wrong     int
	expires   time.Time
}

// New returns a sandbox bank with its PSUs' data dated from today.
func New(opts Options) *Bank {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 3
	}
	if opts.MaxConsentDays <= 0 {
		opts.MaxConsentDays = 90
	}
	if opts.AuthorisationLifetime <= 0 {
		opts.AuthorisationLifetime = 5 * time.Minute
	}
	return &Bank{opts: opts, psus: fixtures(opts.Now()), consents: map[string]*consent{}}
}

// Handler serves the bank's routes.
func (b *Bank) Handler() http.Handler {
	mux := http.NewServeMux()
	v1 := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, requireRequestID(h)) }
	v1("POST /v1/consents", b.createConsent)
	v1("GET /v1/consents/{consentId}", b.getConsent)
	v1("GET /v1/consents/{consentId}/status", b.getConsentStatus)
	v1("DELETE /v1/consents/{consentId}", b.deleteConsent)
	v1("POST /v1/consents/{consentId}/authorisations", b.startAuthorisation)
	v1("GET /v1/consents/{consentId}/authorisations", b.listAuthorisations)
	v1("GET /v1/consents/{consentId}/authorisations/{authorisationId}", b.getAuthorisation)
	v1("PUT /v1/consents/{consentId}/authorisations/{authorisationId}", b.updateAuthorisation)
	v1("GET /v1/accounts", b.listAccounts)
	v1("GET /v1/accounts/{accountId}/balances", b.balances)
	v1("GET /v1/accounts/{accountId}/transactions", b.transactions)
	mux.HandleFunc("GET /sandbox/sca/{consentId}/{authorisationId}", b.redirectPage)
	mux.HandleFunc("POST /sandbox/psu/decoupled/{consentId}", b.decoupledAnswer)
	mux.HandleFunc("POST /sandbox/psu/revoke/{consentId}", b.psuRevoke)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		tppError(w, http.StatusNotFound, "SERVICE_INVALID", "the addressed service is not available")
	})
	return mux
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// requireRequestID refuses a request without a UUID X-Request-ID and
// echoes it in the response, as every NextGenPSD2 response does.
func requireRequestID(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-ID")
		if !uuidPattern.MatchString(id) {
			tppError(w, http.StatusBadRequest, "FORMAT_ERROR", "X-Request-ID is missing or not a UUID")
			return
		}
		w.Header().Set("X-Request-ID", id)
		h.ServeHTTP(w, r)
	})
}

// tppMessage is one entry of a NextGenPSD2 error body.
type tppMessage struct {
	Category string `json:"category"`
	Code     string `json:"code"`
	Path     string `json:"path,omitempty"`
	Text     string `json:"text,omitempty"`
}

func tppError(w http.ResponseWriter, status int, code, text string) {
	writeJSON(w, status, map[string]any{"tppMessages": []tppMessage{{Category: "ERROR", Code: code, Text: text}}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type link struct {
	Href string `json:"href"`
}

// tpp names the caller by its client certificate's common name.
func tpp(r *http.Request) string {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return r.TLS.PeerCertificates[0].Subject.CommonName
	}
	return ""
}

func newID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

type accountReference struct {
	IBAN     string `json:"iban,omitempty"`
	Currency string `json:"currency,omitempty"`
}

type access struct {
	Accounts          []accountReference `json:"accounts,omitempty"`
	Balances          []accountReference `json:"balances,omitempty"`
	Transactions      []accountReference `json:"transactions,omitempty"`
	AvailableAccounts string             `json:"availableAccounts,omitempty"`
	AllPsd2           string             `json:"allPsd2,omitempty"`
	// present records which lists the TPP sent, even empty (bank-offered).
	present map[string]bool
}

type consentRequest struct {
	Access                   json.RawMessage `json:"access"`
	RecurringIndicator       *bool           `json:"recurringIndicator"`
	ValidUntil               string          `json:"validUntil"`
	FrequencyPerDay          *int            `json:"frequencyPerDay"`
	CombinedServiceIndicator *bool           `json:"combinedServiceIndicator"`
}

func parseAccess(raw json.RawMessage) (access, error) {
	var a access
	if err := json.Unmarshal(raw, &a); err != nil {
		return a, err
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return a, err
	}
	a.present = map[string]bool{}
	for k := range keys {
		a.present[k] = true
	}
	return a, nil
}

// covers says whether the consent grants the service (accounts, balances
// or transactions) on the PSU's accounts. The sandbox grants bank-offered
// consents (empty lists) on every account of the PSU, and allPsd2.
func (a access) covers(service string) bool {
	if a.AllPsd2 == "allAccounts" {
		return true
	}
	switch service {
	case "accounts":
		return a.present["accounts"] || a.present["balances"] || a.present["transactions"] || a.AvailableAccounts != ""
	default:
		return a.present[service]
	}
}

func (b *Bank) createConsent(w http.ResponseWriter, r *http.Request) {
	var req consentRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil || req.Access == nil ||
		req.RecurringIndicator == nil || req.FrequencyPerDay == nil || req.CombinedServiceIndicator == nil || req.ValidUntil == "" {
		tppError(w, http.StatusBadRequest, "FORMAT_ERROR", "the consent request is malformed")
		return
	}
	acc, err := parseAccess(req.Access)
	if err != nil {
		tppError(w, http.StatusBadRequest, "FORMAT_ERROR", "access is malformed")
		return
	}
	now := b.opts.Now()
	until, err := time.Parse(time.DateOnly, req.ValidUntil)
	if err != nil || until.Before(truncateDay(now)) {
		tppError(w, http.StatusBadRequest, "FORMAT_ERROR", "validUntil is not a date from today on")
		return
	}
	if r.Header.Get("PSU-IP-Address") == "" {
		tppError(w, http.StatusBadRequest, "FORMAT_ERROR", "PSU-IP-Address is required")
		return
	}
	if limit := truncateDay(now).AddDate(0, 0, b.opts.MaxConsentDays); until.After(limit) {
		until = limit
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.psus[r.Header.Get("PSU-ID")]
	if p == nil {
		tppError(w, http.StatusUnauthorized, "PSU_CREDENTIALS_INVALID", "the PSU-ID cannot be matched by the ASPSP")
		return
	}
	c := &consent{
		id: newID("cns"), tpp: tpp(r), psu: p, status: "received", validUntil: until.Format(time.DateOnly),
		access: acc, frequency: *req.FrequencyPerDay, recurring: *req.RecurringIndicator, lastAction: now.Format(time.DateOnly),
	}
	self := "/v1/consents/" + c.id
	links := map[string]link{"self": {self}, "status": {self + "/status"}}
	resp := map[string]any{"consentStatus": c.status, "consentId": c.id, "_links": links}
	switch {
	case r.Header.Get("TPP-Redirect-Preferred") == "true":
		uri := r.Header.Get("TPP-Redirect-URI")
		if u, err := url.Parse(uri); err != nil || u.Scheme != "https" || u.Host == "" {
			tppError(w, http.StatusBadRequest, "FORMAT_ERROR", "TPP-Redirect-URI must be an https URI for the redirect approach")
			return
		}
		c.approach, c.redirectURI = "REDIRECT", uri
		a := b.newAuthorisation(c, "received")
		links["scaRedirect"] = link{"https://" + r.Host + "/sandbox/sca/" + c.id + "/" + a.id}
		links["scaStatus"] = link{self + "/authorisations/" + a.id}
	case r.Header.Get("TPP-Decoupled-Preferred") == "true":
		c.approach = "DECOUPLED"
		a := b.newAuthorisation(c, "started")
		links["scaStatus"] = link{self + "/authorisations/" + a.id}
		resp["psuMessage"] = "Please confirm the access in your banking app."
	default:
		c.approach = "EMBEDDED"
		links["startAuthorisationWithPsuIdentification"] = link{self + "/authorisations"}
	}
	b.consents[c.id] = c
	w.Header().Set("ASPSP-SCA-Approach", c.approach)
	w.Header().Set("Location", self)
	writeJSON(w, http.StatusCreated, resp)
}

func (b *Bank) newAuthorisation(c *consent, status string) *authorisation {
	a := &authorisation{id: newID("auth"), scaStatus: status, expires: b.opts.Now().Add(b.opts.AuthorisationLifetime)}
	c.auths = append(c.auths, a)
	return a
}

func truncateDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// pathConsent finds the consent named in the path, answering 403
// CONSENT_UNKNOWN for one this TPP does not have. The caller holds b.mu.
func (b *Bank) pathConsent(w http.ResponseWriter, r *http.Request) *consent {
	c := b.consents[r.PathValue("consentId")]
	if c == nil || c.tpp != tpp(r) {
		tppError(w, http.StatusForbidden, "CONSENT_UNKNOWN", "the consent is unknown to the ASPSP")
		return nil
	}
	b.expire(c)
	return c
}

// expire moves a valid consent past its validUntil to expired.
func (b *Bank) expire(c *consent) {
	if c.status == "valid" && b.opts.Now().UTC().Format(time.DateOnly) > c.validUntil {
		c.status = "expired"
	}
}

func (b *Bank) getConsent(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.pathConsent(w, r)
	if c == nil {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access": json.RawMessage(mustJSON(c.access)), "recurringIndicator": c.recurring, "validUntil": c.validUntil,
		"frequencyPerDay": c.frequency, "lastActionDate": c.lastAction, "consentStatus": c.status,
		"_links": map[string]link{"account": {"/v1/accounts"}},
	})
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func (b *Bank) getConsentStatus(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c := b.pathConsent(w, r); c != nil {
		writeJSON(w, http.StatusOK, map[string]string{"consentStatus": c.status})
	}
}

func (b *Bank) deleteConsent(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c := b.pathConsent(w, r); c != nil {
		c.status = "terminatedByTpp"
		w.WriteHeader(http.StatusNoContent)
	}
}

func (b *Bank) psuRevoke(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.consents[r.PathValue("consentId")]
	if c == nil {
		http.NotFound(w, r)
		return
	}
	c.status = "revokedByPsu"
	w.WriteHeader(http.StatusNoContent)
}

// scaMethods are the EMBEDDED methods every PSU has.
var scaMethods = []map[string]string{
	{"authenticationType": "SMS_OTP", "authenticationMethodId": "sms", "name": "SMS to +49 *** *** 12"},
	{"authenticationType": "PUSH_OTP", "authenticationMethodId": "push", "name": "Banking app"},
}

func (b *Bank) startAuthorisation(w http.ResponseWriter, r *http.Request) {
	var body struct {
		PsuData *struct {
			Password string `json:"password"`
		} `json:"psuData"`
	}
	if r.ContentLength != 0 {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&body); err != nil {
			tppError(w, http.StatusBadRequest, "FORMAT_ERROR", "the body is malformed")
			return
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.pathConsent(w, r)
	if c == nil {
		return
	}
	if c.approach != "EMBEDDED" || c.status != "received" {
		tppError(w, http.StatusConflict, "STATUS_INVALID", "the consent cannot be authorised this way now")
		return
	}
	if id := r.Header.Get("PSU-ID"); id != "" && id != c.psu.id {
		tppError(w, http.StatusUnauthorized, "PSU_CREDENTIALS_INVALID", "the PSU-ID does not match the consent")
		return
	}
	status := "psuIdentified"
	if body.PsuData != nil && body.PsuData.Password != "" {
		status = "psuAuthenticated"
	}
	a := b.newAuthorisation(c, status)
	self := "/v1/consents/" + c.id + "/authorisations/" + a.id
	writeJSON(w, http.StatusCreated, map[string]any{
		"scaStatus": a.scaStatus, "authorisationId": a.id, "scaMethods": scaMethods,
		"_links": map[string]link{"selectAuthenticationMethod": {self}, "scaStatus": {self}},
	})
}

func (b *Bank) listAuthorisations(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.pathConsent(w, r)
	if c == nil {
		return
	}
	ids := []string{}
	for _, a := range c.auths {
		ids = append(ids, a.id)
	}
	writeJSON(w, http.StatusOK, map[string]any{"authorisationIds": ids})
}

// pathAuthorisation finds the authorisation in the path; the caller holds
// b.mu and has found c.
func (b *Bank) pathAuthorisation(w http.ResponseWriter, r *http.Request, c *consent) *authorisation {
	for _, a := range c.auths {
		if a.id == r.PathValue("authorisationId") {
			b.timeout(c, a)
			return a
		}
	}
	tppError(w, http.StatusForbidden, "RESOURCE_UNKNOWN", "the authorisation is unknown")
	return nil
}

// timeout fails an authorisation the PSU left unfinished past its lifetime.
func (b *Bank) timeout(c *consent, a *authorisation) {
	if a.scaStatus != "finalised" && a.scaStatus != "failed" && !b.opts.Now().Before(a.expires) {
		a.scaStatus = "failed"
		if c.status == "received" {
			c.status = "rejected"
		}
	}
}

func (b *Bank) getAuthorisation(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.pathConsent(w, r)
	if c == nil {
		return
	}
	if a := b.pathAuthorisation(w, r, c); a != nil {
		writeJSON(w, http.StatusOK, map[string]string{"scaStatus": a.scaStatus})
	}
}

func (b *Bank) updateAuthorisation(w http.ResponseWriter, r *http.Request) {
	var body struct {
		AuthenticationMethodID string `json:"authenticationMethodId"`
		ScaAuthenticationData  string `json:"scaAuthenticationData"`
		PsuData                *struct {
			Password string `json:"password"`
		} `json:"psuData"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&body); err != nil {
		tppError(w, http.StatusBadRequest, "FORMAT_ERROR", "the body is malformed")
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.pathConsent(w, r)
	if c == nil {
		return
	}
	a := b.pathAuthorisation(w, r, c)
	if a == nil {
		return
	}
	if a.scaStatus == "failed" && !b.opts.Now().Before(a.expires) {
		tppError(w, http.StatusForbidden, "RESOURCE_EXPIRED", "the authorisation has expired")
		return
	}
	self := "/v1/consents/" + c.id + "/authorisations/" + a.id
	switch {
	case c.approach != "EMBEDDED" || a.scaStatus == "finalised" || a.scaStatus == "failed":
		tppError(w, http.StatusConflict, "STATUS_INVALID", "the authorisation takes no update in its status")
	case body.PsuData != nil:
		if body.PsuData.Password == "" {
			tppError(w, http.StatusUnauthorized, "PSU_CREDENTIALS_INVALID", "the password is not correct")
			return
		}
		a.scaStatus = "psuAuthenticated"
		writeJSON(w, http.StatusOK, map[string]any{"scaStatus": a.scaStatus, "scaMethods": scaMethods,
			"_links": map[string]link{"selectAuthenticationMethod": {self}}})
	case body.AuthenticationMethodID != "":
		i := slices.IndexFunc(scaMethods, func(m map[string]string) bool { return m["authenticationMethodId"] == body.AuthenticationMethodID })
		if i < 0 || a.scaStatus == "scaMethodSelected" {
			tppError(w, http.StatusBadRequest, "SCA_METHOD_UNKNOWN", "the SCA method is unknown or already selected")
			return
		}
		a.scaStatus, a.method = "scaMethodSelected", body.AuthenticationMethodID
		writeJSON(w, http.StatusOK, map[string]any{
			"scaStatus": a.scaStatus, "chosenScaMethod": scaMethods[i],
			"challengeData": map[string]any{"otpMaxLength": len(OTP), "otpFormat": "integer",
				"additionalInformation": "Sandbox: the TAN is " + OTP + "."},
			"_links": map[string]link{"authoriseTransaction": {self}, "scaStatus": {self}},
		})
	case body.ScaAuthenticationData != "":
		if a.scaStatus != "scaMethodSelected" {
			tppError(w, http.StatusConflict, "STATUS_INVALID", "select an SCA method first")
			return
		}
		if body.ScaAuthenticationData != OTP {
			a.wrong++
			if a.wrong >= MaxOTPAttempts {
				a.scaStatus = "failed"
				c.status = "rejected"
			}
			tppError(w, http.StatusUnauthorized, "PSU_CREDENTIALS_INVALID", "the OTP is not correct")
			return
		}
		a.scaStatus = "finalised"
		c.status = "valid"
		writeJSON(w, http.StatusOK, map[string]any{"scaStatus": a.scaStatus, "_links": map[string]link{"scaStatus": {self}}})
	default:
		tppError(w, http.StatusBadRequest, "FORMAT_ERROR", "nothing to update")
	}
}

// decide records the PSU's answer to a DECOUPLED or REDIRECT authorisation.
// The caller holds b.mu.
func (b *Bank) decide(c *consent, a *authorisation, approve bool) bool {
	b.timeout(c, a)
	if a.scaStatus == "finalised" || a.scaStatus == "failed" || c.status != "received" {
		return false
	}
	if approve {
		a.scaStatus, c.status = "finalised", "valid"
	} else {
		a.scaStatus, c.status = "failed", "rejected"
	}
	return true
}

func (b *Bank) redirectPage(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.consents[r.PathValue("consentId")]
	if c == nil || c.approach != "REDIRECT" {
		http.NotFound(w, r)
		return
	}
	i := slices.IndexFunc(c.auths, func(a *authorisation) bool { return a.id == r.PathValue("authorisationId") })
	if i < 0 {
		http.NotFound(w, r)
		return
	}
	if !b.decide(c, c.auths[i], r.URL.Query().Get("decision") != "deny") {
		http.Error(w, "this authorisation is over", http.StatusConflict)
		return
	}
	http.Redirect(w, r, c.redirectURI, http.StatusFound)
}

func (b *Bank) decoupledAnswer(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.consents[r.PathValue("consentId")]
	if c == nil || c.approach != "DECOUPLED" || len(c.auths) == 0 {
		http.NotFound(w, r)
		return
	}
	if !b.decide(c, c.auths[len(c.auths)-1], r.URL.Query().Get("decision") != "deny") {
		http.Error(w, "this authorisation is over", http.StatusConflict)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Approve plays the PSU answering the consent's DECOUPLED or REDIRECT
// authorisation in the bank's app or page; false when there is nothing to
// answer.
func (b *Bank) Approve(consentID string, approve bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.consents[consentID]
	if c == nil || len(c.auths) == 0 || c.approach == "EMBEDDED" {
		return false
	}
	return b.decide(c, c.auths[len(c.auths)-1], approve)
}

// RevokeByPSU plays the PSU revoking the consent at the bank.
func (b *Bank) RevokeByPSU(consentID string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.consents[consentID]
	if c == nil {
		return false
	}
	c.status = "revokedByPsu"
	return true
}

// dataConsent checks the Consent-ID header for an account call on service
// and the PSU's state; it writes the error and returns nil when the call
// may not go on. The caller holds b.mu.
func (b *Bank) dataConsent(w http.ResponseWriter, r *http.Request, service string) *consent {
	id := r.Header.Get("Consent-ID")
	if id == "" {
		tppError(w, http.StatusBadRequest, "FORMAT_ERROR", "Consent-ID is required")
		return nil
	}
	c := b.consents[id]
	if c == nil || c.tpp != tpp(r) {
		tppError(w, http.StatusBadRequest, "CONSENT_UNKNOWN", "the consent is unknown to the ASPSP")
		return nil
	}
	b.expire(c)
	switch {
	case c.status == "expired":
		tppError(w, http.StatusUnauthorized, "CONSENT_EXPIRED", "the consent has expired")
		return nil
	case c.status != "valid" || !c.access.covers(service):
		tppError(w, http.StatusUnauthorized, "CONSENT_INVALID", "the consent is not valid for this service")
		return nil
	}
	switch c.psu.fail {
	case failDown:
		w.Header().Set("Retry-After", strconv.Itoa(int(DownRetryAfter/time.Second)))
		http.Error(w, "service unavailable", http.StatusServiceUnavailable)
		return nil
	case failBlocked:
		tppError(w, http.StatusForbidden, "SERVICE_BLOCKED", "the PSU's access is blocked")
		return nil
	case failRateLimited:
		w.Header().Set("Retry-After", strconv.Itoa(int(RateLimitRetryAfter/time.Second)))
		tppError(w, http.StatusTooManyRequests, "ACCESS_EXCEEDED", "the access limit of this consent is exceeded")
		return nil
	}
	c.lastAction = b.opts.Now().UTC().Format(time.DateOnly)
	return c
}

// pathAccount finds the account of the consent's PSU named in the path.
func pathAccount(w http.ResponseWriter, r *http.Request, c *consent) *account {
	for _, a := range c.psu.accounts {
		if a.resourceID == r.PathValue("accountId") {
			return a
		}
	}
	tppError(w, http.StatusNotFound, "RESOURCE_UNKNOWN", "the account is unknown")
	return nil
}

func (a *account) details() map[string]any {
	d := map[string]any{
		"resourceId": a.resourceID, "iban": a.iban, "currency": a.currency, "name": a.name,
		"cashAccountType": a.cashType, "status": "enabled", "usage": "PRIV",
		"_links": map[string]link{
			"balances":     {"/v1/accounts/" + a.resourceID + "/balances"},
			"transactions": {"/v1/accounts/" + a.resourceID + "/transactions"},
		},
	}
	if a.product != "" {
		d["product"] = a.product
	}
	return d
}

func (b *Bank) listAccounts(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.dataConsent(w, r, "accounts")
	if c == nil {
		return
	}
	list := []map[string]any{}
	for _, a := range c.psu.accounts {
		list = append(list, a.details())
	}
	writeJSON(w, http.StatusOK, map[string]any{"accounts": list})
}

func amount(currency, value string) map[string]string {
	return map[string]string{"currency": currency, "amount": value}
}

func (b *Bank) balances(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.dataConsent(w, r, "balances")
	if c == nil {
		return
	}
	a := pathAccount(w, r, c)
	if a == nil {
		return
	}
	list := []map[string]any{}
	for _, bal := range a.balances {
		e := map[string]any{"balanceType": bal.typ, "balanceAmount": amount(a.currency, bal.amount)}
		if bal.creditLimitIncluded {
			e["creditLimitIncluded"] = true
		}
		if bal.referenceDate != "" {
			e["referenceDate"] = bal.referenceDate
		}
		if !bal.lastChange.IsZero() {
			e["lastChangeDateTime"] = bal.lastChange.UTC().Format(time.RFC3339)
		}
		list = append(list, e)
	}
	writeJSON(w, http.StatusOK, map[string]any{"account": map[string]string{"iban": a.iban, "currency": a.currency}, "balances": list})
}

func (t transaction) json(currency string) map[string]any {
	e := map[string]any{"transactionId": t.id, "transactionAmount": amount(currency, t.amount)}
	set := func(k, v string) {
		if v != "" {
			e[k] = v
		}
	}
	set("entryReference", t.entryRef)
	set("bookingDate", t.bookingDate)
	set("valueDate", t.valueDate)
	set("creditorName", t.creditor)
	set("debtorName", t.debtor)
	set("remittanceInformationUnstructured", t.remittance)
	set("bankTransactionCode", t.bankTxCode)
	set("merchantCategoryCode", t.mcc)
	return e
}

func (b *Bank) transactions(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.dataConsent(w, r, "transactions")
	if c == nil {
		return
	}
	a := pathAccount(w, r, c)
	if a == nil {
		return
	}
	q := r.URL.Query()
	status := q.Get("bookingStatus")
	if status != "booked" && status != "pending" && status != "both" {
		tppError(w, http.StatusBadRequest, "FORMAT_ERROR", "bookingStatus must be booked, pending or both")
		return
	}
	now := b.opts.Now()
	var from, to string
	if v := q.Get("dateFrom"); v != "" {
		d, err := time.Parse(time.DateOnly, v)
		if err != nil {
			tppError(w, http.StatusBadRequest, "FORMAT_ERROR", "dateFrom is not a date")
			return
		}
		if d.Before(truncateDay(now).AddDate(0, 0, -540)) {
			tppError(w, http.StatusBadRequest, "PERIOD_INVALID", "dateFrom is too far in the past")
			return
		}
		from = v
	} else if status != "pending" {
		tppError(w, http.StatusBadRequest, "FORMAT_ERROR", "dateFrom is required for booked transactions")
		return
	}
	if v := q.Get("dateTo"); v != "" {
		if _, err := time.Parse(time.DateOnly, v); err != nil {
			tppError(w, http.StatusBadRequest, "FORMAT_ERROR", "dateTo is not a date")
			return
		}
		to = v
	}
	page := 0
	if v := q.Get("page"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 {
			tppError(w, http.StatusBadRequest, "FORMAT_ERROR", "page is malformed")
			return
		}
		page = p
	}
	if page == 0 && status != "booked" {
		a.listings++
		if a.listings >= 2 && a.posting != nil && !a.posting.posted {
			a.posting.posted = true
			booked := *a.posting
			booked.bookingDate = now.UTC().Format(time.DateOnly)
			booked.entryRef = "E" + strings.TrimPrefix(booked.id, "tx-")
			a.booked = append(a.booked, booked)
		}
	}
	type entry struct {
		t      transaction
		booked bool
	}
	var all []entry
	if status != "pending" {
		for _, t := range a.booked {
			if t.bookingDate >= from && (to == "" || t.bookingDate <= to) {
				all = append(all, entry{t, true})
			}
		}
	}
	if status != "booked" {
		for _, t := range a.pending {
			all = append(all, entry{t, false})
		}
		if a.posting != nil && !a.posting.posted {
			all = append(all, entry{*a.posting, false})
		}
	}
	start := max(page-1, 0) * b.opts.PageSize
	end := min(start+b.opts.PageSize, len(all))
	booked, pending := []map[string]any{}, []map[string]any{}
	for _, e := range all[min(start, len(all)):end] {
		if e.booked {
			booked = append(booked, e.t.json(a.currency))
		} else {
			pending = append(pending, e.t.json(a.currency))
		}
	}
	links := map[string]link{"account": {"/v1/accounts/" + a.resourceID}}
	if end < len(all) {
		next := url.Values{"bookingStatus": {status}, "page": {strconv.Itoa(max(page, 1) + 1)}}
		if from != "" {
			next.Set("dateFrom", from)
		}
		if to != "" {
			next.Set("dateTo", to)
		}
		links["next"] = link{"/v1/accounts/" + a.resourceID + "/transactions?" + next.Encode()}
	}
	report := map[string]any{"_links": links}
	if status != "pending" {
		report["booked"] = booked
	}
	if status != "booked" {
		report["pending"] = pending
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"account":      map[string]string{"iban": a.iban, "currency": a.currency},
		"transactions": report,
	})
}

// String names the bank for logs.
func (b *Bank) String() string { return fmt.Sprintf("xs2asandbox(%d PSUs)", len(b.psus)) }
