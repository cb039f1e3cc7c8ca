package conformance

import (
	"google.golang.org/protobuf/proto"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// testFraudReport is fraud/report.
func (k *kit) testFraudReport(c *C) {
	k.needAccounts(c)
	report := &adapterv1.ReportFraudRequest{
		BankConsentId:  k.consentID,
		BankAccountId:  k.accounts[0].GetBankAccountId(),
		Category:       adapterv1.FraudCategory_FRAUD_CATEGORY_PHISHING,
		Description:    "Conformance check: a phishing mail asked for my login.",
		IdempotencyKey: k.key("report"),
	}
	filed, err := k.client.ReportFraud(k.ctx(c), report)
	if ok(c, "ReportFraud", err) {
		k.check(c, "ReportFraud", filed)
		k.fraudCase = filed.GetCaseId()
		if filed.GetCardBlockStatus() != adapterv1.CardBlockStatus_CARD_BLOCK_STATUS_NOT_REQUESTED {
			c.Errorf("ReportFraud without block_card: card_block_status %s, want NOT_REQUESTED", filed.GetCardBlockStatus())
		}
		retry, err := k.client.ReportFraud(k.ctx(c), report)
		if ok(c, "ReportFraud retried with the same key", err) && retry.GetCaseId() != filed.GetCaseId() {
			c.Error("ReportFraud retried with the same key: filed another case")
		}
		other := proto.CloneOf(report)
		other.Category = adapterv1.FraudCategory_FRAUD_CATEGORY_SCAM
		_, err = k.client.ReportFraud(k.ctx(c), other)
		wantError(c, "ReportFraud with a used key and another request", err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
		k.awaitPrompt(c, "FraudCaseUpdated RECEIVED for the case ReportFraud filed", func(ev *adapterv1.StreamEventsResponse) bool {
			u := ev.GetFraudCaseUpdated()
			return u.GetCaseId() == filed.GetCaseId() && u.GetStatus() == adapterv1.FraudCaseStatus_FRAUD_CASE_STATUS_RECEIVED
		})
	}
}

// testAnswerUnknownAlert is fraud/answer-unknown-alert.
func (k *kit) testAnswerUnknownAlert(c *C) {
	k.needConsent(c)
	_, err := k.client.AnswerFraudAlert(k.ctx(c), &adapterv1.AnswerFraudAlertRequest{
		BankConsentId: k.consentID, AlertId: unknownID, Answer: adapterv1.FraudAlertAnswer_FRAUD_ALERT_ANSWER_NOT_RECOGNISED,
	})
	wantError(c, "AnswerFraudAlert of an unknown alert", err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
}

// testAnswerFraudAlert (fraud/answer-alert) answers an alert the bank raised under the kit's
// consent: "not me", the same again (success), then "this was me" (a
// conflicting answer: FAILED_PRECONDITION).
func (k *kit) testAnswerFraudAlert(c *C) {
	k.needConsent(c)
	switch {
	case k.fx.TriggerFraudAlert == nil:
		c.Skip("no trigger_fraud_alert in the fixtures (Fixtures.TriggerFraudAlert)")
	case k.watch == nil:
		c.Skip("no event stream to learn the alert's id from (the adapter does not declare EVENTS, or events/watch did not pass)")
	}
	answer := func(alertID string, a adapterv1.FraudAlertAnswer) (*adapterv1.AnswerFraudAlertResponse, error) {
		return k.client.AnswerFraudAlert(k.ctx(c), &adapterv1.AnswerFraudAlertRequest{BankConsentId: k.consentID, AlertId: alertID, Answer: a})
	}
	mark := k.watch.len()
	if err := k.fx.TriggerFraudAlert(k.ctx(c)); err != nil {
		c.Fatalf("Fixtures.TriggerFraudAlert: %v", err)
	}
	ev, err := k.watch.await(mark, eventWait, func(ev *adapterv1.StreamEventsResponse) bool {
		return ev.GetFraudAlert().GetBankConsentId() == k.consentID
	})
	if err != nil || ev == nil {
		c.Fatalf("StreamEvents: no FraudAlert under the kit's consent within %s of TriggerFraudAlert (%v); "+
			"alerts go to every consent of the customer that covers SCOPE_FRAUD_ALERTS", eventWait, err)
	}
	alertID := ev.GetFraudAlert().GetAlertId()
	notMe := adapterv1.FraudAlertAnswer_FRAUD_ALERT_ANSWER_NOT_RECOGNISED
	resp, err := answer(alertID, notMe)
	if !ok(c, "AnswerFraudAlert NOT_RECOGNISED", err) {
		return
	}
	k.check(c, "AnswerFraudAlert", resp)
	_, err = answer(alertID, notMe)
	ok(c, "AnswerFraudAlert with the same answer again", err)
	_, err = answer(alertID, adapterv1.FraudAlertAnswer_FRAUD_ALERT_ANSWER_RECOGNISED)
	wantError(c, "AnswerFraudAlert with another answer", err, commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION)
}
