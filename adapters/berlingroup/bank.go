package berlingroup

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// maxBody bounds what the adapter reads of one answer.
const maxBody = 2 << 20

// Retry delays, when the bank sends no usable Retry-After: bankbridge's
// own default for a failed bank call, and the bounds a bank's Retry-After
// is held to.
const (
	defaultRetryAfter = time.Second
	minRetryAfter     = time.Second
	maxRetryAfter     = 5 * time.Minute
)

// ClientTLS returns the TLS configuration of a TPP: its client
// certificate (PEM files certFile and keyFile) for mutual TLS, and the
// CAs in caFile to check the bank's certificate (empty: the system's).
func ClientTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pemBytes, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("bank CA: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pemBytes) {
			return nil, errors.New("bank CA: no PEM certificate")
		}
	}
	return cfg, nil
}

// request is one call to the bank.
type request struct {
	method    string
	path      string // below BaseURL, starting with /v1/
	query     url.Values
	body      any
	consentID string      // sent as Consent-ID
	header    http.Header // further headers (PSU-ID, TPP-*)
}

// answer is the bank's answer, already checked to be the answer to our
// request.
type answer struct {
	status int
	header http.Header
	body   []byte
	// codes are the tppMessages codes of an error answer, each checked to
	// be a code token; their texts are dropped unread.
	codes []string
}

func (a *answer) has(code string) bool {
	for _, c := range a.codes {
		if c == code {
			return true
		}
	}
	return false
}

// newRequestID returns a random UUID (version 4) for X-Request-ID.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// do calls the bank. It fails with BANK_UNAVAILABLE (and RetryInfo) when
// the bank cannot be reached, answers 5xx, or answers something that is
// not NextGenPSD2 (wrong X-Request-ID echo, a body that is not JSON);
// other answers, errors included, are returned for the caller to map.
func (a *Adapter) do(ctx context.Context, r request) (*answer, error) {
	u := *a.base
	u.Path = a.base.Path + r.path
	u.RawQuery = r.query.Encode()
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return nil, fmt.Errorf("encode %s %s: %w", r.method, r.path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("build %s request: %w", r.method, err)
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	requestID := newRequestID()
	req.Header.Set("X-Request-ID", requestID)
	req.Header.Set("Accept", "application/json")
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.consentID != "" {
		req.Header.Set("Consent-ID", r.consentID)
	}
	resp, err := a.opts.HTTPClient.Do(req)
	if err != nil {
		a.observe(true)
		if ctx.Err() != nil {
			return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, "the bank did not answer in time",
				apierr.WithRetryAfter(defaultRetryAfter))
		}
		// A plain error: the SDK logs it under an incident id and answers
		// BANK_UNAVAILABLE, so the transport's words (hosts, TLS details)
		// never reach the caller.
		return nil, fmt.Errorf("call the bank: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil || len(raw) > maxBody {
		a.observe(true)
		return nil, errors.New("read the bank's answer: failed or too large")
	}
	if resp.StatusCode >= 500 {
		a.observe(true)
		return nil, bankUnavailable(retryAfter(resp.Header))
	}
	a.observe(false)
	ans := &answer{status: resp.StatusCode, header: resp.Header, body: raw}
	if got := resp.Header.Get("X-Request-ID"); got != requestID {
		return nil, errors.New("the bank's answer does not echo our X-Request-ID")
	}
	if len(raw) > 0 {
		if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, fmt.Errorf("the bank answered %d with content type %q, not JSON", resp.StatusCode, mt)
		}
	}
	if resp.StatusCode >= 400 {
		ans.codes = tppCodes(raw)
	}
	return ans, nil
}

// decode reads a successful answer's JSON into v.
func (ans *answer) decode(v any) error {
	if err := json.Unmarshal(ans.body, v); err != nil {
		return errors.New("the bank's answer is not the JSON NextGenPSD2 describes")
	}
	return nil
}

var codePattern = regexp.MustCompile(`^[A-Z][A-Z0-9_]{1,63}$`)

// tppCodes reads the codes of a tppMessages error body. Texts are dropped:
// they are the bank's words, and may carry anything.
func tppCodes(body []byte) []string {
	var e struct {
		TppMessages []struct {
			Category string `json:"category"`
			Code     string `json:"code"`
		} `json:"tppMessages"`
	}
	if json.Unmarshal(body, &e) != nil {
		return nil
	}
	var codes []string
	for _, m := range e.TppMessages {
		if m.Category == "ERROR" && codePattern.MatchString(m.Code) {
			codes = append(codes, m.Code)
		}
	}
	return codes
}

// retryAfter reads Retry-After (seconds or an HTTP date), held to
// [minRetryAfter, maxRetryAfter]; 0 when absent or unreadable.
func retryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	} else {
		return 0
	}
	return min(max(d, minRetryAfter), maxRetryAfter)
}

// bankUnavailable is BANK_UNAVAILABLE with the bank's retry delay, or the
// default.
func bankUnavailable(after time.Duration) error {
	if after <= 0 {
		after = defaultRetryAfter
	}
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, "the bank failed", apierr.WithRetryAfter(after))
}

// errUnknownConsent is CONSENT_REVOKED_BY_BANK: the bank knows no such
// consent (CONSENT_UNKNOWN).
func errUnknownConsent() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK, "the bank knows no such consent")
}

// mapCommon maps the answers every call can get, in the order of the
// README's table; nil when the caller must decide (its own codes, or an
// answer that means the adapter sent something the bank did not take,
// which the caller reports as a plain error).
func (a *Adapter) mapCommon(ctx context.Context, ans *answer, consentID string) error {
	switch {
	case ans.status == http.StatusTooManyRequests:
		after := retryAfter(ans.header)
		if after == 0 {
			after = defaultRetryAfter
		}
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_RATE_LIMITED, "the bank's access limit is reached", apierr.WithRetryAfter(after))
	case ans.has("CONSENT_UNKNOWN"):
		return errUnknownConsent()
	case ans.has("CONSENT_EXPIRED"):
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED, "the consent has expired at the bank")
	case ans.has("CONSENT_INVALID") && consentID == "":
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, "the consent does not cover this call")
	case ans.has("CONSENT_INVALID"):
		return a.consentInvalid(ctx, consentID)
	case ans.has("SERVICE_BLOCKED"), ans.has("PERIOD_INVALID"):
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_LOGIN_REQUIRED, "the bank needs the customer to act at the bank first")
	case ans.status == http.StatusUnauthorized && anyPrefix(ans.codes, "CERTIFICATE_", "TOKEN_", "SIGNATURE_"),
		ans.status == http.StatusUnauthorized && len(ans.codes) == 0:
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_REJECTED, "the bank rejected the adapter's credentials")
	case ans.status == http.StatusForbidden && len(ans.codes) == 0:
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_REJECTED, "the bank refused the adapter")
	}
	return nil
}

func anyPrefix(codes []string, prefixes ...string) bool {
	for _, c := range codes {
		for _, p := range prefixes {
			if strings.HasPrefix(c, p) {
				return true
			}
		}
	}
	return false
}

// unexpected reports an answer no mapping covers: the bank refused what
// the adapter sent (FORMAT_ERROR, ...) or answered outside the
// specification. The SDK logs it under an incident id and answers
// BANK_UNAVAILABLE; the log names the status and codes, never texts.
func unexpected(what string, ans *answer) error {
	return fmt.Errorf("%s: the bank answered %d %v", what, ans.status, ans.codes)
}

// consentInvalid maps CONSENT_INVALID by the consent's status at the bank.
func (a *Adapter) consentInvalid(ctx context.Context, consentID string) error {
	st, err := a.consentStatus(ctx, consentID)
	if err != nil {
		return err
	}
	switch st {
	case "revokedByPsu":
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, "the customer revoked the consent at the bank")
	case "terminatedByTpp":
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, "the consent was deleted")
	case "expired":
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED, "the consent has expired at the bank")
	case "rejected":
		return errUnknownConsent()
	}
	// received, partiallyAuthorised: not authorised yet; valid: it does
	// not cover this service or account.
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, "the consent does not cover this call")
}

// consentStatuses are the consentStatus values of the specification.
var consentStatuses = map[string]bool{
	"received": true, "rejected": true, "valid": true, "revokedByPsu": true,
	"expired": true, "terminatedByTpp": true, "partiallyAuthorised": true,
}

// consentStatus reads GET /v1/consents/{id}/status.
func (a *Adapter) consentStatus(ctx context.Context, consentID string) (string, error) {
	ans, err := a.do(ctx, request{method: http.MethodGet, path: "/v1/consents/" + url.PathEscape(consentID) + "/status"})
	if err != nil {
		return "", err
	}
	if ans.status != http.StatusOK {
		if ans.has("CONSENT_UNKNOWN") || ans.status == http.StatusNotFound {
			return "", errUnknownConsent()
		}
		if err := a.mapCommon(ctx, ans, ""); err != nil {
			return "", err
		}
		return "", unexpected("consent status", ans)
	}
	var s struct {
		ConsentStatus string `json:"consentStatus"`
	}
	if err := ans.decode(&s); err != nil {
		return "", err
	}
	if !consentStatuses[s.ConsentStatus] {
		return "", errors.New("consent status: the bank answered an unknown consentStatus")
	}
	return s.ConsentStatus, nil
}
