package berlingroup_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/adapters/berlingroup"
	"github.com/bankbridge/bankbridge/adapters/berlingroup/xs2asandbox"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// secret is in every text the scripted bank sends: it must never reach
// bankbridge.
const secret = "DE89370400440532013000 secret bank words"

// scripted is a stand-in bank (a fake, named as such) for answers the
// sandbox does not give: it answers every call with one scripted answer,
// over the same mutual TLS.
type scripted struct {
	status     int
	body       string
	header     map[string]string
	echoWrong  bool
	consentSts string // the consent's status, for GET .../status
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("X-Request-ID")
	if s.echoWrong {
		id = "00000000-0000-4000-8000-000000000000"
	}
	w.Header().Set("X-Request-ID", id)
	w.Header().Set("Content-Type", "application/json")
	if strings.HasSuffix(r.URL.Path, "/status") && s.consentSts != "" {
		_, _ = w.Write([]byte(`{"consentStatus":"` + s.consentSts + `"}`))
		return
	}
	for k, v := range s.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(s.status)
	_, _ = w.Write([]byte(s.body))
}

func tpp(code string) string {
	return `{"tppMessages":[{"category":"ERROR","code":"` + code + `","text":"` + secret + `"}]}`
}

func TestErrorMapping(t *testing.T) {
	pki, err := xs2asandbox.WriteTestPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		bank       scripted
		reason     commonv1.ErrorReason
		retryAfter time.Duration
	}{
		{"401 CERTIFICATE_INVALID", scripted{status: 401, body: tpp("CERTIFICATE_INVALID")}, commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_REJECTED, 0},
		{"401 without a code", scripted{status: 401, body: `{}`}, commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_REJECTED, 0},
		{"403 without a code", scripted{status: 403, body: `{}`}, commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_REJECTED, 0},
		{"403 CONSENT_UNKNOWN", scripted{status: 403, body: tpp("CONSENT_UNKNOWN")}, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK, 0},
		{"401 CONSENT_EXPIRED", scripted{status: 401, body: tpp("CONSENT_EXPIRED")}, commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED, 0},
		{"401 CONSENT_INVALID, expired", scripted{status: 401, body: tpp("CONSENT_INVALID"), consentSts: "expired"}, commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED, 0},
		{"429 with Retry-After", scripted{status: 429, body: tpp("ACCESS_EXCEEDED"), header: map[string]string{"Retry-After": "12"}}, commonv1.ErrorReason_ERROR_REASON_RATE_LIMITED, 12 * time.Second},
		{"429 with an absurd Retry-After", scripted{status: 429, body: tpp("ACCESS_EXCEEDED"), header: map[string]string{"Retry-After": "999999"}}, commonv1.ErrorReason_ERROR_REASON_RATE_LIMITED, 5 * time.Minute},
		{"503 without Retry-After", scripted{status: 503, body: secret}, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, time.Second},
		{"500 with Retry-After", scripted{status: 500, body: tpp("INTERNAL"), header: map[string]string{"Retry-After": "4"}}, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, 4 * time.Second},
		{"400 FORMAT_ERROR (the adapter's mistake)", scripted{status: 400, body: tpp("FORMAT_ERROR")}, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, time.Second},
		{"200 that is not JSON", scripted{status: 200, body: "<html>" + secret}, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, time.Second},
		{"200 with another X-Request-ID", scripted{status: 200, body: `{"accounts":[]}`, echoWrong: true}, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, time.Second},
		{"200 with an account number as its id", scripted{status: 200, body: `{"accounts":[{"resourceId":"DE89 3704","iban":"DE89370400440532013000","currency":"EUR"}]}`}, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := bankServer(t, pki, &tt.bank)
			a, err := berlingroup.New(berlingroup.Options{BaseURL: srv.URL, HTTPClient: httpClient(t, pki.ClientCert, pki.ClientKey, pki.CAFile)})
			if err != nil {
				t.Fatal(err)
			}
			client := serve(t, a)
			_, err = client.ListAccounts(ctx(t), &adapterv1.ListAccountsRequest{BankConsentId: "cns-1"})
			wantReason(t, "ListAccounts", err, tt.reason)
			if got := apierr.RetryDelay(err); got != tt.retryAfter {
				t.Errorf("retry delay %s, want %s", got, tt.retryAfter)
			}
			if msg := status.Convert(err).Message(); strings.Contains(msg, "secret") || strings.Contains(msg, "DE89") {
				t.Errorf("the bank's text reached the caller: %q", msg)
			}
		})
	}
}

func TestStartScaMapping(t *testing.T) {
	pki, err := xs2asandbox.WriteTestPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		bank   scripted
		reason commonv1.ErrorReason
	}{
		{"401 PSU_CREDENTIALS_INVALID: unknown PSU-ID", scripted{status: 401, body: tpp("PSU_CREDENTIALS_INVALID")}, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND},
		{"403 SERVICE_BLOCKED", scripted{status: 403, body: tpp("SERVICE_BLOCKED")}, commonv1.ErrorReason_ERROR_REASON_BANK_LOGIN_REQUIRED},
		{"201 with a scaRedirect to plain http", scripted{status: 201, header: map[string]string{"ASPSP-SCA-Approach": "REDIRECT"},
			body: `{"consentStatus":"received","consentId":"c1","_links":{"scaRedirect":{"href":"http://bank.example/sca"}}}`}, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE},
		{"201 with an unknown approach", scripted{status: 201, header: map[string]string{"ASPSP-SCA-Approach": "OAUTH"},
			body: `{"consentStatus":"received","consentId":"c1","_links":{}}`}, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := bankServer(t, pki, &tt.bank)
			a, err := berlingroup.New(berlingroup.Options{BaseURL: srv.URL, HTTPClient: httpClient(t, pki.ClientCert, pki.ClientKey, pki.CAFile)})
			if err != nil {
				t.Fatal(err)
			}
			_, err = serve(t, a).StartSca(ctx(t), startReq("anna", adapterv1.ScaMethod_SCA_METHOD_OTP, "start-mapping-"+string(rune('a'+i))))
			wantReason(t, "StartSca", err, tt.reason)
		})
	}
}
