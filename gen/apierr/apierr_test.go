package apierr_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// TestReasonCodes pins every reason to the gRPC code and HTTP status a caller
// sees (the status as the gateway's grpc-gateway runtime maps the code).
// Changing a row is an API change: callers branch on these.
func TestReasonCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		reason string
		code   codes.Code
		http   int
	}{
		{"INVALID_ARGUMENT", codes.InvalidArgument, http.StatusBadRequest},
		{"PAGE_TOKEN_INVALID", codes.InvalidArgument, http.StatusBadRequest},
		{"CURSOR_INVALID", codes.InvalidArgument, http.StatusBadRequest},
		{"TOKEN_INVALID", codes.Unauthenticated, http.StatusUnauthorized},
		{"TOKEN_EXPIRED", codes.Unauthenticated, http.StatusUnauthorized},
		{"USER_MISMATCH", codes.PermissionDenied, http.StatusForbidden},
		{"CLIENT_PURPOSE_NOT_ALLOWED", codes.PermissionDenied, http.StatusForbidden},
		{"CLIENT_NOT_ALLOWED", codes.PermissionDenied, http.StatusForbidden},
		{"CONSENT_REQUIRED", codes.PermissionDenied, http.StatusForbidden},
		{"CONSENT_EXPIRED", codes.PermissionDenied, http.StatusForbidden},
		{"CONSENT_REVOKED", codes.PermissionDenied, http.StatusForbidden},
		{"PURPOSE_NOT_ALLOWED", codes.PermissionDenied, http.StatusForbidden},
		{"LINK_NOT_PENDING", codes.FailedPrecondition, http.StatusBadRequest},
		{"SCA_FAILED", codes.InvalidArgument, http.StatusBadRequest},
		{"SCA_LOCKED", codes.FailedPrecondition, http.StatusBadRequest},
		{"SCA_EXPIRED", codes.FailedPrecondition, http.StatusBadRequest},
		{"SCA_COOLDOWN", codes.ResourceExhausted, http.StatusTooManyRequests},
		{"PENDING_LINKS_LIMIT", codes.ResourceExhausted, http.StatusTooManyRequests},
		{"BANK_NOT_FOUND", codes.NotFound, http.StatusNotFound},
		{"BANK_UNAVAILABLE", codes.Unavailable, http.StatusServiceUnavailable},
		{"BANK_LOGIN_REQUIRED", codes.FailedPrecondition, http.StatusBadRequest},
		{"CAPABILITY_NOT_SUPPORTED", codes.Unimplemented, http.StatusNotImplemented},
		{"CREDENTIALS_UNAVAILABLE", codes.Unavailable, http.StatusServiceUnavailable},
		{"CREDENTIALS_REJECTED", codes.Unauthenticated, http.StatusUnauthorized},
		{"IDEMPOTENCY_KEY_REUSED", codes.AlreadyExists, http.StatusConflict},
		{"RATE_LIMITED", codes.ResourceExhausted, http.StatusTooManyRequests},
		{"NOT_FOUND", codes.NotFound, http.StatusNotFound},
		{"FAILED_PRECONDITION", codes.FailedPrecondition, http.StatusBadRequest},
		{"CARRIER_UNKNOWN", codes.InvalidArgument, http.StatusBadRequest},
		{"CONVERSATION_CLOSED", codes.FailedPrecondition, http.StatusBadRequest},
		{"ALREADY_EXISTS", codes.AlreadyExists, http.StatusConflict},
		// The gateway answers it 413 or 431 itself, not the code's 400.
		{"REQUEST_TOO_LARGE", codes.InvalidArgument, http.StatusBadRequest},
		{"ABORTED", codes.Aborted, http.StatusConflict},
		{"INTERNAL", codes.Internal, http.StatusInternalServerError},
		{"CURSOR_EXPIRED", codes.FailedPrecondition, http.StatusBadRequest},
		{"SERVER_STOPPING", codes.Unavailable, http.StatusServiceUnavailable},
		{"STREAM_BEHIND", codes.Unavailable, http.StatusServiceUnavailable},
		{"CONSENT_UNAVAILABLE", codes.Unavailable, http.StatusServiceUnavailable},
		{"OVERLOADED", codes.Unavailable, http.StatusServiceUnavailable},
		{"AUDIT_UNAVAILABLE", codes.Unavailable, http.StatusServiceUnavailable},
		{"STORAGE_UNAVAILABLE", codes.Unavailable, http.StatusServiceUnavailable},
		{"CONSENT_REVOKED_BY_BANK", codes.PermissionDenied, http.StatusForbidden},
	}
	covered := map[string]bool{"UNSPECIFIED": true}
	for _, tt := range tests {
		covered[tt.reason] = true
		t.Run(tt.reason, func(t *testing.T) {
			t.Parallel()
			reason := apierr.ParseReason(tt.reason)
			if reason == commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
				t.Fatalf("ErrorReason has no %s", tt.reason)
			}
			err := apierr.New(reason, "test")
			st := status.Convert(err)
			if st.Code() != tt.code {
				t.Errorf("code = %v, want %v", st.Code(), tt.code)
			}
			if got := runtime.HTTPStatusFromCode(st.Code()); got != tt.http {
				t.Errorf("HTTP status = %d, want %d", got, tt.http)
			}
			info := apierr.Info(err)
			if info.GetReason() != tt.reason || info.GetDomain() != "bankbridge" {
				t.Errorf("ErrorInfo = %v, want reason %s domain bankbridge", info, tt.reason)
			}
			if !apierr.Is(err, reason) {
				t.Errorf("Is(err, %v) = false", reason)
			}
		})
	}
	for name := range commonv1.ErrorReason_value {
		if short := name[len("ERROR_REASON_"):]; !covered[short] {
			t.Errorf("reason %s has no row in this table", short)
		}
	}
}

func TestDetails(t *testing.T) {
	t.Parallel()
	err := apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, "bank sandbox did not answer",
		apierr.WithMetadata("bank_id", "sandbox"),
		apierr.WithRetryAfter(30*time.Second),
		apierr.WithFieldViolations(apierr.FieldViolation{Field: "page_size", Description: "at most 100", Reason: "int32.lte"}),
	)
	var (
		retry *errdetails.RetryInfo
		bad   *errdetails.BadRequest
	)
	for _, d := range status.Convert(err).Details() {
		switch d := d.(type) {
		case *errdetails.RetryInfo:
			retry = d
		case *errdetails.BadRequest:
			bad = d
		}
	}
	if got := retry.GetRetryDelay().AsDuration(); got != 30*time.Second {
		t.Errorf("RetryInfo delay = %v, want 30s", got)
	}
	if v := bad.GetFieldViolations(); len(v) != 1 || v[0].GetField() != "page_size" || v[0].GetReason() != "int32.lte" {
		t.Errorf("BadRequest = %v", bad)
	}
	if got := apierr.Info(err).GetMetadata()["bank_id"]; got != "sandbox" {
		t.Errorf("metadata bank_id = %q", got)
	}
	// What a client reads, after the status crossed the wire and was
	// wrapped on the way.
	wire := fmt.Errorf("open: %w", status.ErrorProto(status.Convert(err).Proto()))
	if got := apierr.RetryDelay(wire); got != 30*time.Second {
		t.Errorf("RetryDelay = %v, want 30s", got)
	}
	if got := apierr.RetryDelay(apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "no such thing")); got != 0 {
		t.Errorf("RetryDelay without RetryInfo = %v, want 0", got)
	}
}

func TestInternalMasksTheCause(t *testing.T) {
	t.Parallel()
	id, err := apierr.Internal()
	st := status.Convert(err)
	if st.Code() != codes.Internal {
		t.Fatalf("code = %v, want INTERNAL", st.Code())
	}
	if got := apierr.Info(err).GetMetadata()["incident_id"]; got != id || len(id) != 16 {
		t.Errorf("incident_id = %q, want %q (16 hex)", got, id)
	}
	if id2, _ := apierr.Internal(); id2 == id {
		t.Error("two incidents share an id")
	}
}
