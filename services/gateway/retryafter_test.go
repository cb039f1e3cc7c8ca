package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/bankbridge/bankbridge/gen/apierr"
	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
)

// refusingBalance refuses every balance with the error its account id
// names in refusals.
type refusingBalance struct {
	balancev1.UnimplementedBalanceServiceServer
}

// refusals are refusingBalance's errors, by account id.
var refusals = map[string]error{
	"cooldown": apierr.New(commonv1.ErrorReason_ERROR_REASON_SCA_COOLDOWN, "cooling down", apierr.WithRetryAfter(59*time.Minute+30*time.Second)),
	"pending": apierr.New(commonv1.ErrorReason_ERROR_REASON_PENDING_LINKS_LIMIT, "too many pending",
		apierr.WithRetryAfter(90*time.Second), apierr.WithMetadata("limit", "3")),
	"bank":    apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, "bank down", apierr.WithRetryAfter(200*time.Millisecond)),
	"audit":   apierr.New(commonv1.ErrorReason_ERROR_REASON_AUDIT_UNAVAILABLE, "audit down", apierr.WithRetryAfter(2*time.Second)),
	"no-hint": apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, "bank down"),
}

func (refusingBalance) GetBalance(_ context.Context, req *balancev1.GetBalanceRequest) (*balancev1.GetBalanceResponse, error) {
	// users/{user}/accounts/sandbox~{id}/balance
	_, id, _ := strings.Cut(strings.TrimSuffix(req.GetName(), "/balance"), "/accounts/sandbox~")
	if err, ok := refusals[id]; ok {
		return nil, err
	}
	return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "no such account")
}

// TestEveryRefusalWithRetryInfoAnswersRetryAfter: a REST client is told
// when to come back by Retry-After — whole seconds, rounded up, at least
// one — whatever the reason whose details carry a RetryInfo, through the
// real server kit and gateway; a refusal without one has no Retry-After,
// and only a rate limit has the RateLimit fields.
func TestEveryRefusalWithRetryInfoAnswersRetryAfter(t *testing.T) {
	t.Parallel()
	url, srv := kitBehindGateway(t, "balance", []string{"balance"}, nil, func(r grpc.ServiceRegistrar) {
		balancev1.RegisterBalanceServiceServer(r, refusingBalance{})
	})
	token, err := srv.Issuer.Mint("alice", servertest.Client, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		account    string
		status     int
		reason     string
		retryAfter string
	}{
		{"cooldown", http.StatusTooManyRequests, "SCA_COOLDOWN", "3570"},
		{"pending", http.StatusTooManyRequests, "PENDING_LINKS_LIMIT", "90"},
		{"bank", http.StatusServiceUnavailable, "BANK_UNAVAILABLE", "1"},
		{"audit", http.StatusServiceUnavailable, "AUDIT_UNAVAILABLE", "2"},
		{"no-hint", http.StatusServiceUnavailable, "BANK_UNAVAILABLE", ""},
	}
	for _, tt := range tests {
		t.Run(tt.account, func(t *testing.T) {
			resp, body := get(t, url+"/v1/users/alice/accounts/sandbox~"+tt.account+"/balance", token, "ACCOUNT_INFORMATION")
			if resp.StatusCode != tt.status || !strings.Contains(body, `"reason":"`+tt.reason+`"`) {
				t.Fatalf("%d %s, want %d %s", resp.StatusCode, body, tt.status, tt.reason)
			}
			if got := resp.Header.Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
			for _, h := range []string{"RateLimit", "RateLimit-Policy"} {
				if v := resp.Header.Get(h); v != "" {
					t.Errorf("%s: %s on a refusal that is not a rate limit", h, v)
				}
			}
		})
	}
}
