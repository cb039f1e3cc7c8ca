package app

import (
	"testing"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
)

func TestFraudStatusAdvance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		cur, next FraudStatus
		want      FraudStatus
	}{
		{"the bank has the case", FraudSubmitting, FraudReceived, FraudReceived},
		{"straight to review", FraudSubmitting, FraudInReview, FraudInReview},
		{"on to review", FraudReceived, FraudInReview, FraudInReview},
		{"resolved", FraudInReview, FraudResolved, FraudResolved},
		{"never back to received", FraudInReview, FraudReceived, FraudInReview},
		{"resolved is final", FraudResolved, FraudInReview, FraudResolved},
		{"never back to submitting", FraudReceived, FraudSubmitting, FraudReceived},
		{"nothing named", FraudReceived, "", FraudReceived},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.cur.Advance(tt.next); got != tt.want {
				t.Errorf("%s.Advance(%s) = %s, want %s", tt.cur, tt.next, got, tt.want)
			}
		})
	}
}

func TestBankStatuses(t *testing.T) {
	t.Parallel()
	blocks := map[adapterv1.CardBlockStatus]CardBlockStatus{
		adapterv1.CardBlockStatus_CARD_BLOCK_STATUS_NOT_REQUESTED: CardBlockNotRequested,
		adapterv1.CardBlockStatus_CARD_BLOCK_STATUS_BLOCKED:       CardBlockBlocked,
		adapterv1.CardBlockStatus_CARD_BLOCK_STATUS_PENDING:       CardBlockPending,
		adapterv1.CardBlockStatus_CARD_BLOCK_STATUS_FAILED:        CardBlockFailed,
		// Outside the protocol: the user is told to call the bank.
		adapterv1.CardBlockStatus_CARD_BLOCK_STATUS_UNSPECIFIED: CardBlockFailed,
		adapterv1.CardBlockStatus(42):                           CardBlockFailed,
	}
	for in, want := range blocks {
		if got := cardBlockStatus(in); got != want {
			t.Errorf("cardBlockStatus(%s) = %s, want %s", in, got, want)
		}
	}
	for in, want := range map[adapterv1.FraudCaseStatus]FraudStatus{
		adapterv1.FraudCaseStatus_FRAUD_CASE_STATUS_RECEIVED:  FraudReceived,
		adapterv1.FraudCaseStatus_FRAUD_CASE_STATUS_IN_REVIEW: FraudInReview,
		adapterv1.FraudCaseStatus_FRAUD_CASE_STATUS_RESOLVED:  FraudResolved,
	} {
		if got, ok := fraudCaseStatus(in); !ok || got != want {
			t.Errorf("fraudCaseStatus(%s) = %s, %v; want %s", in, got, ok, want)
		}
	}
	for _, in := range []adapterv1.FraudCaseStatus{0, 1, 42} {
		if got, ok := fraudCaseStatus(in); ok {
			t.Errorf("fraudCaseStatus(%d) = %s, want none", in, got)
		}
	}
}
