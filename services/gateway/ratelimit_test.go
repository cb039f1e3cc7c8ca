package main

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/gen/apierr"
	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/limits"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
)

// openShipments opens a watch stream and sends one event, as a subscribed
// stream does.
type openShipments struct {
	shippingv1.UnimplementedShippingServiceServer
}

func (openShipments) WatchShipments(_ *shippingv1.WatchShipmentsRequest, st grpc.ServerStreamingServer[shippingv1.WatchShipmentsResponse]) error {
	if err := st.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	return st.Send(&shippingv1.WatchShipmentsResponse{Cursor: "c1"})
}

// startLimited serves balance and shipping through the real server kit,
// each user limited to 2 reads and 2 stream opens per 10 s, behind the
// gateway.
func startLimited(t *testing.T) (url string, token func(user string) string) {
	t.Helper()
	tight := limits.Rate{Count: 2, Per: 10 * time.Second, Burst: 2}
	url, srv := kitBehindGateway(t, "balance", []string{"balance", "shipping"}, func(c *server.Config) {
		c.Limits.ReadUser, c.Limits.StreamUser = tight, tight
	}, func(r grpc.ServiceRegistrar) {
		balancev1.RegisterBalanceServiceServer(r, cannedBalance{})
		shippingv1.RegisterShippingServiceServer(r, openShipments{})
	})
	return url, func(user string) string {
		tok, err := srv.Issuer.Mint(user, servertest.Client, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
}

// get returns the response, its body read.
func get(t *testing.T, url, token, purpose string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Bankbridge-Purpose", purpose)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// requireTooManyRequests checks a rate-limited REST answer: 429, the
// reason, Retry-After in whole seconds within the window, and the IETF
// RateLimit-Policy and RateLimit fields of the user's policy.
func requireTooManyRequests(t *testing.T, resp *http.Response, body string) {
	t.Helper()
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, `"reason":"RATE_LIMITED"`) {
		t.Fatalf("status %d, body %s; want 429, RATE_LIMITED", resp.StatusCode, body)
	}
	retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || retry < 1 || retry > 10 {
		t.Errorf("Retry-After = %q, want 1..10 seconds", resp.Header.Get("Retry-After"))
	}
	if got := resp.Header.Get("RateLimit-Policy"); got != `"user";q=2;w=10` {
		t.Errorf("RateLimit-Policy = %q", got)
	}
	if got, want := resp.Header.Get("RateLimit"), fmt.Sprintf(`"user";r=0;t=%d`, retry); got != want {
		t.Errorf("RateLimit = %q, want %q", got, want)
	}
}

func TestRateLimitedCallsAnswer429WithRateLimitHeaders(t *testing.T) {
	t.Parallel()
	url, token := startLimited(t)
	alice := token("alice")
	balance := url + "/v1/users/alice/accounts/sandbox~a1/balance"
	for i := range 2 {
		if resp, body := get(t, balance, alice, "ACCOUNT_INFORMATION"); resp.StatusCode != http.StatusOK {
			t.Fatalf("call %d: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, body := get(t, balance, alice, "ACCOUNT_INFORMATION")
	requireTooManyRequests(t, resp, body)

	t.Run("a stream refused when it opens", func(t *testing.T) {
		watch := url + "/v1/users/alice/shipments:watch"
		for i := range 2 {
			resp, body := get(t, watch, alice, "ORDER_TRACKING")
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"cursor":"c1"`) {
				t.Fatalf("stream %d: %d %s", i, resp.StatusCode, body)
			}
		}
		resp, body := get(t, watch, alice, "ORDER_TRACKING")
		requireTooManyRequests(t, resp, body)
	})
	t.Run("other refusals carry no rate-limit headers", func(t *testing.T) {
		for _, url := range []string{balance, url + "/v1/users/alice/shipments:watch"} {
			resp, _ := get(t, url, "", "ACCOUNT_INFORMATION")
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s without a token: %d, want 401", url, resp.StatusCode)
			}
			for _, h := range []string{"Retry-After", "RateLimit", "RateLimit-Policy"} {
				if v := resp.Header.Get(h); v != "" {
					t.Errorf("%s without a token: %s: %s", url, h, v)
				}
			}
		}
	})
}

func TestRateLimitHeaders(t *testing.T) {
	t.Parallel()
	limited := func(delay time.Duration, md map[string]string) *status.Status {
		opts := []apierr.Option{apierr.WithRetryAfter(delay)}
		for k, v := range md {
			opts = append(opts, apierr.WithMetadata(k, v))
		}
		return status.Convert(apierr.New(commonv1.ErrorReason_ERROR_REASON_RATE_LIMITED, "too many", opts...))
	}
	clientPolicy := map[string]string{limits.MetaPolicy: "client", limits.MetaQuota: "2000", limits.MetaWindowSeconds: "60"}
	tests := []struct {
		name                      string
		st                        *status.Status
		retryAfter, policy, limit string
	}{
		{"a client's limit", limited(2100*time.Millisecond, clientPolicy), "3", `"client";q=2000;w=60`, `"client";r=0;t=3`},
		{"under a second rounds up", limited(300*time.Millisecond, clientPolicy), "1", `"client";q=2000;w=60`, `"client";r=0;t=1`},
		{"an unknown policy: Retry-After alone", limited(time.Second, map[string]string{limits.MetaPolicy: "x\r\nSet-Cookie: a", limits.MetaQuota: "1", limits.MetaWindowSeconds: "1"}), "1", "", ""},
		{"no quota: Retry-After alone", limited(time.Second, map[string]string{limits.MetaPolicy: "user"}), "1", "", ""},
		{"another reason with RetryInfo: Retry-After alone", status.Convert(apierr.New(commonv1.ErrorReason_ERROR_REASON_AUDIT_UNAVAILABLE, "x", apierr.WithRetryAfter(1500*time.Millisecond), apierr.WithMetadata(limits.MetaPolicy, "user"), apierr.WithMetadata(limits.MetaQuota, "1"), apierr.WithMetadata(limits.MetaWindowSeconds, "1"))), "2", "", ""},
		{"another reason without RetryInfo", status.Convert(apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, "x")), "", "", ""},
		{"not ours", status.New(codes.ResourceExhausted, "grpc's own"), "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			retryHeaders(h, tt.st)
			if h.Get("Retry-After") != tt.retryAfter || h.Get("RateLimit-Policy") != tt.policy || h.Get("RateLimit") != tt.limit {
				t.Errorf("headers = %v", h)
			}
		})
	}
}
