package sandbox

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// Errors of TriggerFraudAlert.
var (
	// ErrUnknownCustomer is TriggerFraudAlert's error when no sandbox
	// customer has the login.
	ErrUnknownCustomer = errors.New("sandbox: no customer with this login")
	// ErrNoActiveConsent is TriggerFraudAlert's error when the customer has
	// no valid consent covering SCOPE_FRAUD_ALERTS, so an alert would reach
	// nobody.
	ErrNoActiveConsent = errors.New("sandbox: the customer has no active consent covering fraud alerts")
)

// fraudAlert is an alert the bank raised, guarded by Bank.mu.
type fraudAlert struct {
	consentID string
	answer    adapterv1.FraudAlertAnswer // UNSPECIFIED until answered
}

// ReportFraud implements adapters.FraudAdapter: every report opens a case,
// announced at once on the event stream as FraudCaseUpdated RECEIVED and,
// with Options.FraudCaseStep, moved on to IN_REVIEW and RESOLVED a step
// apart; with block_card, it blocks the card(s) as BlockCard does, for
// suspected fraud. It needs SCOPE_SUPPORT.
func (b *Bank) ReportFraud(ctx context.Context, req *adapterv1.ReportFraudRequest) (*adapterv1.ReportFraudResponse, error) {
	var resp *adapterv1.ReportFraudResponse
	err := b.dataCall(ctx, req.GetBankConsentId(), commonv1.Scope_SCOPE_SUPPORT, func(c *consent, cust *customer) error {
		var err error
		resp, err = idempotent(b.idem, "ReportFraud", req.GetIdempotencyKey(), req, func() (*adapterv1.ReportFraudResponse, error) {
			a := cust.account(req.GetBankAccountId())
			if a == nil {
				return nil, notFound("account under this consent")
			}
			if id := req.GetTransactionId(); id != "" && !a.hasTransaction(id) {
				return nil, notFound("transaction on this account")
			}
			r := &adapterv1.ReportFraudResponse{
				CaseId:          randomID("fraud-"),
				CardBlockStatus: adapterv1.CardBlockStatus_CARD_BLOCK_STATUS_NOT_REQUESTED,
			}
			if req.GetBlockCard() {
				if _, err := b.block(a, req.GetBankCardId(), adapterv1.CardBlockReason_CARD_BLOCK_REASON_FRAUD_SUSPECTED); err != nil {
					return nil, err
				}
				r.CardBlockStatus = adapterv1.CardBlockStatus_CARD_BLOCK_STATUS_BLOCKED
			}
			b.fraudCaseUpdated(c.id, r.CaseId, adapterv1.FraudCaseStatus_FRAUD_CASE_STATUS_RECEIVED)
			if b.opts.FraudCaseStep > 0 {
				go b.progressFraudCase(c.id, r.CaseId)
			}
			return r, nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// progressFraudCase moves a fraud case to IN_REVIEW and then RESOLVED, one
// FraudCaseStep apart, unless the bank closes first.
func (b *Bank) progressFraudCase(consentID, caseID string) {
	for _, st := range []adapterv1.FraudCaseStatus{
		adapterv1.FraudCaseStatus_FRAUD_CASE_STATUS_IN_REVIEW,
		adapterv1.FraudCaseStatus_FRAUD_CASE_STATUS_RESOLVED,
	} {
		t := time.NewTimer(b.opts.FraudCaseStep)
		select {
		case <-b.closed:
			t.Stop()
			return
		case <-t.C:
		}
		b.fraudCaseUpdated(consentID, caseID, st)
	}
}

func (b *Bank) fraudCaseUpdated(consentID, caseID string, st adapterv1.FraudCaseStatus) {
	b.events.append(&adapterv1.StreamEventsResponse{Event: &adapterv1.StreamEventsResponse_FraudCaseUpdated{
		FraudCaseUpdated: &adapterv1.FraudCaseUpdated{BankConsentId: consentID, CaseId: caseID, Status: st},
	}})
}

// AnswerFraudAlert implements adapters.FraudAdapter: the bank records the
// customer's answer to an alert it raised under the consent (NOT_FOUND
// otherwise); the same answer again succeeds, another one is
// FAILED_PRECONDITION. It needs SCOPE_FRAUD_ALERTS. [Bank.AlertAnswer]
// tells what was recorded.
func (b *Bank) AnswerFraudAlert(ctx context.Context, req *adapterv1.AnswerFraudAlertRequest) (*adapterv1.AnswerFraudAlertResponse, error) {
	err := b.dataCall(ctx, req.GetBankConsentId(), commonv1.Scope_SCOPE_FRAUD_ALERTS, func(c *consent, _ *customer) error {
		a := b.alerts[req.GetAlertId()]
		switch {
		case a == nil || a.consentID != c.id:
			return notFound("alert under this consent")
		case a.answer == adapterv1.FraudAlertAnswer_FRAUD_ALERT_ANSWER_UNSPECIFIED:
			a.answer = req.GetAnswer()
		case a.answer != req.GetAnswer():
			return apierr.New(commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION, "the alert was already answered otherwise")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &adapterv1.AnswerFraudAlertResponse{}, nil
}

// AlertAnswer returns how the customer answered the alert with alertID
// (UNSPECIFIED while unanswered) and whether the bank raised such an alert.
// The admin endpoint GET /admin/fraud-alerts/{id} reports it.
func (b *Bank) AlertAnswer(alertID string) (adapterv1.FraudAlertAnswer, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.alerts[alertID]
	if a == nil {
		return adapterv1.FraudAlertAnswer_FRAUD_ALERT_ANSWER_UNSPECIFIED, false
	}
	return a.answer, true
}

// TriggerFraudAlert makes the bank suspect fraud on the customer with the
// login: one FraudAlert event per active consent of theirs that covers
// SCOPE_FRAUD_ALERTS, on their card account (or first account) and its
// first card. It returns the alerts' ids, which AnswerFraudAlert takes
// under the consent each was raised under. The admin endpoint
// POST /admin/fraud-alerts?user=<login> calls it.
func (b *Bank) TriggerFraudAlert(login string) ([]string, error) {
	cust := b.customers[login]
	if cust == nil {
		return nil, ErrUnknownCustomer
	}
	if len(cust.accounts) == 0 {
		return nil, ErrNoActiveConsent
	}
	a := cust.accounts[0]
	for _, acc := range cust.accounts {
		if acc.typ == adapterv1.AccountType_ACCOUNT_TYPE_CARD {
			a = acc
			break
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.opts.Now()
	var ids []string
	for _, id := range slices.Sorted(maps.Keys(b.consents)) {
		c := b.consents[id]
		if c.login != login || c.usable(now, commonv1.Scope_SCOPE_FRAUD_ALERTS) != nil {
			continue
		}
		alert := &adapterv1.FraudAlert{
			AlertId:       randomID("alert-"),
			BankConsentId: c.id,
			BankAccountId: a.id,
			Amount:        eur(-899_00),
			MerchantName:  "Gadget Hub Online",
			ActivityTime:  timestamppb.New(now.Add(-2 * time.Minute)),
			Severity:      adapterv1.FraudSeverity_FRAUD_SEVERITY_HIGH,
			Description:   "Card payment in a country you have not used this card in before. Was it you?",
		}
		if len(a.cards) > 0 {
			alert.BankCardId = a.cards[0].id
		}
		b.alerts[alert.AlertId] = &fraudAlert{consentID: c.id}
		b.events.append(&adapterv1.StreamEventsResponse{Event: &adapterv1.StreamEventsResponse_FraudAlert{FraudAlert: alert}})
		ids = append(ids, alert.AlertId)
	}
	if len(ids) == 0 {
		return nil, ErrNoActiveConsent
	}
	return ids, nil
}
