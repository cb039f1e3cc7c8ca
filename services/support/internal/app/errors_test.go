package app

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// TestRetryable decides which refusals of queued work are retried.
func TestRetryable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"bank down", apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, "down"), true},
		{"rate limited", apierr.New(commonv1.ErrorReason_ERROR_REASON_RATE_LIMITED, "slow down"), true},
		{"credentials rejected (they rotate)", apierr.New(commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_REJECTED, "no"), true},
		{"not the protocol's", errors.New("connection reset"), true},
		{"case closed", apierr.New(commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION, "closed"), false},
		{"unknown case", apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "no case"), false},
		{"consent revoked at the bank", apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK, "gone"), false},
		{"no support handoff", apierr.New(commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED, "no"), false},
		{"the message is gone", errGone, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := retryable(tt.err); got != tt.want {
				t.Errorf("retryable = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestHandoffError maps a bank's refusal of a handoff to the contract's.
func TestHandoffError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		err       error
		want      commonv1.ErrorReason
		wantRetry time.Duration
	}{
		{"no agents through the adapter", apierr.New(commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED, "bank text"),
			commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED, 0},
		{"bank down, with a retry delay", apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, "bank text", apierr.WithRetryAfter(3*time.Second)),
			commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, 3 * time.Second},
		{"no new cases for now", apierr.New(commonv1.ErrorReason_ERROR_REASON_RATE_LIMITED, "bank text"), commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, 0},
		{"consent gone at the bank", apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK, "bank text"), commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, 0},
		{"a deadline", errors.New("context deadline exceeded"), commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := handoffError(tt.err)
			if got := apierr.Reason(err); got != tt.want {
				t.Errorf("reason = %v, want %v", got, tt.want)
			}
			if got := apierr.RetryDelay(err); got != tt.wantRetry {
				t.Errorf("retry delay = %v, want %v", got, tt.wantRetry)
			}
			if s := err.Error(); len(s) == 0 || strings.Contains(s, "bank text") {
				t.Errorf("error %q passes the bank's text on", s)
			}
		})
	}
}
