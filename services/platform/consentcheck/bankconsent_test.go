package consentcheck_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// bankConsentServer answers ResolveBankConsent with resp, or fails with
// failing; got is the last request.
type bankConsentServer struct {
	consentv1.UnimplementedConsentCheckServiceServer
	mu      sync.Mutex
	resp    *consentv1.ResolveBankConsentResponse
	failing error
	got     *consentv1.ResolveBankConsentRequest
}

func (s *bankConsentServer) ResolveBankConsent(_ context.Context, req *consentv1.ResolveBankConsentRequest) (*consentv1.ResolveBankConsentResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = req
	if s.failing != nil {
		return nil, s.failing
	}
	return s.resp, nil
}

func (s *bankConsentServer) answer(resp *consentv1.ResolveBankConsentResponse, failing error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resp, s.failing = resp, failing
}

func TestResolveBankConsent(t *testing.T) {
	t.Parallel()
	fake := &bankConsentServer{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	consentv1.RegisterConsentCheckServiceServer(srv, fake)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	var logs testkit.SyncBuffer
	c := consentcheck.New(consentv1.NewConsentCheckServiceClient(conn), consentcheck.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	alerts := commonv1.Scope_SCOPE_FRAUD_ALERTS
	expire := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
	link := &consentv1.CoveringLink{
		Link: "users/alice/links/l1", BankId: "sandbox", BankConsentId: "cns-1", ExpireTime: timestamppb.New(expire),
		Scopes: []commonv1.Scope{commonv1.Scope_SCOPE_SUPPORT, alerts}, Client: "chat-app",
	}

	t.Run("allowed: the user and the link, with its client", func(t *testing.T) {
		fake.answer(&consentv1.ResolveBankConsentResponse{Allowed: true, User: "users/alice", Link: link}, nil)
		got, err := c.ResolveBankConsent(t.Context(), "sandbox", "cns-1", alerts)
		if err != nil {
			t.Fatal(err)
		}
		if got.User != "alice" || got.Link.Link != "users/alice/links/l1" || got.Link.Client != "chat-app" ||
			got.Link.BankConsentID != "cns-1" || !got.Link.ExpireTime.Equal(expire) || len(got.Link.Scopes) != 2 {
			t.Errorf("ResolveBankConsent = %+v", got)
		}
		fake.mu.Lock()
		defer fake.mu.Unlock()
		if r := fake.got; r.GetBankId() != "sandbox" || r.GetBankConsentId() != "cns-1" || r.GetScope() != alerts {
			t.Errorf("asked %v", r)
		}
	})

	tests := []struct {
		name   string
		resp   *consentv1.ResolveBankConsentResponse
		fail   error
		reason commonv1.ErrorReason
	}{
		{"no such consent", &consentv1.ResolveBankConsentResponse{DenialReason: commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED}, nil,
			commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED},
		{"expired", &consentv1.ResolveBankConsentResponse{DenialReason: commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED}, nil,
			commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED},
		{"revoked", &consentv1.ResolveBankConsentResponse{DenialReason: commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED}, nil,
			commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED},
		{"a denial without a reason", &consentv1.ResolveBankConsentResponse{}, nil,
			commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED},
		{"a denial with an unexpected reason", &consentv1.ResolveBankConsentResponse{DenialReason: commonv1.ErrorReason_ERROR_REASON_RATE_LIMITED}, nil,
			commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED},
		{"allowed without a user", &consentv1.ResolveBankConsentResponse{Allowed: true, User: "alice", Link: link}, nil,
			commonv1.ErrorReason_ERROR_REASON_INTERNAL},
		{"allowed with another bank's link", &consentv1.ResolveBankConsentResponse{Allowed: true, User: "users/alice",
			Link: &consentv1.CoveringLink{Link: "users/alice/links/l9", BankId: "otherbank", BankConsentId: "cns-1"}}, nil,
			commonv1.ErrorReason_ERROR_REASON_INTERNAL},
		{"the consent service fails", nil, status.Error(codes.Internal, "store broken"),
			commonv1.ErrorReason_ERROR_REASON_INTERNAL},
		{"the consent service is unavailable", nil, status.Error(codes.Unavailable, "store down"),
			commonv1.ErrorReason_ERROR_REASON_CONSENT_UNAVAILABLE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake.answer(tt.resp, tt.fail)
			got, err := c.ResolveBankConsent(t.Context(), "sandbox", "cns-1", alerts)
			md := testkit.RequireReason(t, err, tt.reason)
			if got.User != "" || got.Link.Link != "" {
				t.Errorf("a refusal answered %+v", got)
			}
			if tt.reason == commonv1.ErrorReason_ERROR_REASON_INTERNAL {
				if id := md["incident_id"]; id == "" || !strings.Contains(logs.String(), id) {
					t.Errorf("incident id %q not logged:\n%s", id, logs.String())
				}
				if strings.Contains(err.Error(), "store broken") {
					t.Errorf("the cause reached the caller: %v", err)
				}
			}
		})
	}
	if strings.Contains(logs.String(), "alice") {
		t.Errorf("the log holds a user id:\n%s", logs.String())
	}
}
