package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// fraudBankContext is ctx for a call to a bank about fraud: the purpose
// it serves, and a deadline.
func fraudBankContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, DefaultBankTimeout)
	return adapters.WithPurpose(ctx, commonv1.Purpose_PURPOSE_FRAUD_PREVENTION), cancel
}

// transient tells whether a bank's refusal may pass: the bank, or the way
// to it, failed, and asking again later may succeed. Any other refusal
// (NOT_FOUND, CONSENT_REVOKED_BY_BANK, CAPABILITY_NOT_SUPPORTED, ...) is
// the bank's answer and stays so.
func transient(err error) bool {
	switch apierr.Reason(err) {
	case commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, commonv1.ErrorReason_ERROR_REASON_RATE_LIMITED,
		commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_UNAVAILABLE, commonv1.ErrorReason_ERROR_REASON_INTERNAL,
		commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED:
		return true
	}
	return false
}

// deliverFraudReport is the fraud report worker's handler: it files a
// SUBMITTING report with its bank (ReportFraud, with a key derived from
// the report, so a redelivery opens no second case) and records the
// bank's case: status RECEIVED, or later when the bank's news of the case
// came first, and where the card block is. A report gone (its link
// revoked) or delivered already is done. A bank that failed gets the
// report again later; a bank that refused it for good leaves it
// SUBMITTING, its card block FAILED (the user should call the bank), and
// the refusal's reason in the log.
func (s *Service) deliverFraudReport(ctx context.Context, d events.Delivered) error {
	var p FraudReportFiled
	if err := json.Unmarshal(d.Data, &p); err != nil {
		s.log.ErrorContext(ctx, "fraud report delivery dropped: unreadable event", slog.String("bankbridge.event_id", d.ID))
		return nil
	}
	r, err := s.store.FraudReport(ctx, p.Report)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return err
	case r.Status != FraudSubmitting:
		return nil
	}
	resp, err := s.reportFraud(ctx, r)
	if err != nil {
		if transient(err) {
			s.log.WarnContext(ctx, "fraud report not delivered; trying again later",
				slog.String(telemetry.AttrBankID, r.BankID), slog.String(telemetry.AttrReason, apierr.ReasonString(apierr.Reason(err))))
			return err
		}
		s.log.ErrorContext(ctx, "fraud report refused by the bank; not sent again",
			slog.String(telemetry.AttrBankID, r.BankID), slog.String(telemetry.AttrReason, apierr.ReasonString(apierr.Reason(err))))
		return s.reportRefused(ctx, p.Report)
	}
	_, err = retry(func() (struct{}, error) {
		// A run after one that committed finds the report past SUBMITTING.
		return struct{}{}, s.store.IdempotentTx(ctx, func(tx Tx) error {
			r, err := tx.LockFraudReport(ctx, p.Report)
			if errors.Is(err, ErrNotFound) || (err == nil && r.Status != FraudSubmitting) {
				return nil
			}
			if err != nil {
				return err
			}
			r.CaseID, r.Status, r.UpdateTime = resp.GetCaseId(), FraudReceived, s.stamp()
			if r.BlockCard {
				r.CardBlockStatus = cardBlockStatus(resp.GetCardBlockStatus())
			}
			u, ok, err := tx.TakeCaseUpdate(ctx, r.BankID, r.CaseID)
			if err != nil {
				return err
			}
			if ok && u.BankConsentID == r.BankConsentID {
				r.Status = r.Status.Advance(u.Status)
			}
			return tx.UpdateFraudReport(ctx, r)
		})
	})
	return err
}

// reportFraud files r with its bank.
func (s *Service) reportFraud(ctx context.Context, r FraudReport) (*adapterv1.ReportFraudResponse, error) {
	client, err := s.banks.Client(r.BankID)
	if err != nil {
		return nil, err
	}
	ctx, cancel := fraudBankContext(ctx)
	defer cancel()
	return client.ReportFraud(ctx, &adapterv1.ReportFraudRequest{
		BankConsentId:  r.BankConsentID,
		BankAccountId:  r.AccountID,
		TransactionId:  r.TransactionID,
		Category:       adapterv1.FraudCategory(adapterv1.FraudCategory_value["FRAUD_CATEGORY_"+string(r.Category)]),
		Description:    r.Description,
		BlockCard:      r.BlockCard,
		BankCardId:     r.CardID,
		IdempotencyKey: idempotencyKey("fraud_report", r.BankID, r.ID),
	})
}

// reportRefused records a report the bank refused for good: its card
// block, if one was asked for, FAILED.
func (s *Service) reportRefused(ctx context.Context, k BankKey) error {
	_, err := retry(func() (struct{}, error) {
		// A run after one that committed finds the block FAILED already.
		return struct{}{}, s.store.IdempotentTx(ctx, func(tx Tx) error {
			r, err := tx.LockFraudReport(ctx, k)
			if errors.Is(err, ErrNotFound) || (err == nil && (r.Status != FraudSubmitting || r.CardBlockStatus != CardBlockPending)) {
				return nil
			}
			if err != nil {
				return err
			}
			r.CardBlockStatus, r.UpdateTime = CardBlockFailed, s.stamp()
			return tx.UpdateFraudReport(ctx, r)
		})
	})
	return err
}

// cardBlockStatus is the adapter's card block status in the domain's
// terms; anything the protocol does not name reads as FAILED, so the
// user is told to call the bank.
func cardBlockStatus(st adapterv1.CardBlockStatus) CardBlockStatus {
	switch st {
	case adapterv1.CardBlockStatus_CARD_BLOCK_STATUS_NOT_REQUESTED, adapterv1.CardBlockStatus_CARD_BLOCK_STATUS_BLOCKED,
		adapterv1.CardBlockStatus_CARD_BLOCK_STATUS_PENDING:
		return CardBlockStatus(strings.TrimPrefix(st.String(), "CARD_BLOCK_STATUS_"))
	}
	return CardBlockFailed
}

// fraudCaseStatus is the adapter's case status in the domain's terms; ok
// is false for one the protocol does not name.
func fraudCaseStatus(st adapterv1.FraudCaseStatus) (FraudStatus, bool) {
	switch st {
	case adapterv1.FraudCaseStatus_FRAUD_CASE_STATUS_RECEIVED:
		return FraudReceived, true
	case adapterv1.FraudCaseStatus_FRAUD_CASE_STATUS_IN_REVIEW:
		return FraudInReview, true
	case adapterv1.FraudCaseStatus_FRAUD_CASE_STATUS_RESOLVED:
		return FraudResolved, true
	}
	return "", false
}

// applyCaseUpdate moves the report of the bank's case on to the status
// the bank reports, never back; the case's report must have been filed
// under the consent the update names. An update of a case not known yet
// (the bank announced it before ReportFraud answered) is kept for the
// report's delivery. It runs in the bank event consumer's transaction.
func (s *Service) applyCaseUpdate(ctx context.Context, tx Tx, bankID string, u *adapterv1.FraudCaseUpdated) error {
	status, ok := fraudCaseStatus(u.GetStatus())
	if !ok || !adapterIDPattern.MatchString(u.GetCaseId()) || !adapterIDPattern.MatchString(u.GetBankConsentId()) {
		s.log.WarnContext(ctx, "fraud case update dropped: it breaks the adapter protocol", slog.String(telemetry.AttrBankID, bankID))
		return nil
	}
	r, err := tx.FraudReportByCase(ctx, bankID, u.GetCaseId())
	if errors.Is(err, ErrNotFound) {
		return tx.KeepCaseUpdate(ctx, CaseUpdate{
			BankID: bankID, CaseID: u.GetCaseId(), BankConsentID: u.GetBankConsentId(), Status: status, Time: s.stamp(),
		})
	}
	if err != nil {
		return fmt.Errorf("read the case's fraud report: %w", err)
	}
	if r.BankConsentID != u.GetBankConsentId() {
		s.log.WarnContext(ctx, "fraud case update dropped: it names another consent than the case's report", slog.String(telemetry.AttrBankID, bankID))
		return nil
	}
	next := r.Status.Advance(status)
	if next == r.Status {
		return nil
	}
	r.Status, r.UpdateTime = next, s.stamp()
	return tx.UpdateFraudReport(ctx, r)
}
