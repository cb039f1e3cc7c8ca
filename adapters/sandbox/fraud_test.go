package sandbox_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/adapters/sandbox"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

func TestReportFraud(t *testing.T) {
	t.Parallel()
	bank := newBank(t, sandbox.Options{})
	c := inProcess(t, bank, nil)
	consent := link(t, c, "alice")
	report := func(key string, change func(*adapterv1.ReportFraudRequest)) (*adapterv1.ReportFraudResponse, error) {
		req := &adapterv1.ReportFraudRequest{
			BankConsentId: consent, BankAccountId: creditAccount, TransactionId: "tx-alice-card-001",
			Category: adapterv1.FraudCategory_FRAUD_CATEGORY_UNRECOGNISED_TRANSACTION, BlockCard: true, IdempotencyKey: key,
		}
		if change != nil {
			change(req)
		}
		return c.ReportFraud(t.Context(), req)
	}

	filed, err := report("report-0001", nil)
	if err != nil {
		t.Fatal(err)
	}
	if filed.GetCardBlockStatus() != adapterv1.CardBlockStatus_CARD_BLOCK_STATUS_BLOCKED || !bank.CardBlocked(creditCard) || bank.CardBlocked(debitCard) {
		t.Errorf("ReportFraud with block_card: %v; credit card blocked %v, debit card blocked %v, want only the credit card",
			filed.GetCardBlockStatus(), bank.CardBlocked(creditCard), bank.CardBlocked(debitCard))
	}
	resp, err := c.ListCards(t.Context(), &adapterv1.ListCardsRequest{BankConsentId: consent})
	if err != nil {
		t.Fatal(err)
	}
	for _, card := range resp.GetCards() {
		if card.GetBankCardId() == creditCard && card.GetBlockReason() != adapterv1.CardBlockReason_CARD_BLOCK_REASON_FRAUD_SUSPECTED {
			t.Errorf("the card ReportFraud blocked: %v, want blocked for FRAUD_SUSPECTED", card)
		}
	}

	tests := []struct {
		name   string
		change func(*adapterv1.ReportFraudRequest)
		want   commonv1.ErrorReason
	}{
		{name: "unknown account", want: commonv1.ErrorReason_ERROR_REASON_NOT_FOUND,
			change: func(r *adapterv1.ReportFraudRequest) { r.BankAccountId = "acc-bob-savings" }},
		{name: "unknown transaction", want: commonv1.ErrorReason_ERROR_REASON_NOT_FOUND,
			change: func(r *adapterv1.ReportFraudRequest) { r.TransactionId = "tx-bob-sav-001" }},
		{name: "unknown card", want: commonv1.ErrorReason_ERROR_REASON_NOT_FOUND,
			change: func(r *adapterv1.ReportFraudRequest) { r.BankCardId = debitCard }},
		{name: "consent without support", want: commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED,
			change: func(r *adapterv1.ReportFraudRequest) {
				r.BankConsentId = linkFor(t, c, "alice", commonv1.Scope_SCOPE_ACCOUNTS, commonv1.Scope_SCOPE_FRAUD_ALERTS)
			}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := report("report-refused-"+string(rune('a'+i)), tt.change)
			wantReason(t, err, tt.want)
		})
	}
}

// TestFraudCaseProgress: a report's case is RECEIVED at once on the event
// stream and, with FraudCaseStep, moves to IN_REVIEW and RESOLVED; a retry
// of the report files nothing twice.
func TestFraudCaseProgress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		step time.Duration
		want []string
	}{
		{name: "no step: the case stays RECEIVED", want: []string{"fraud_case:RECEIVED"}},
		{name: "a step", step: 10 * time.Millisecond, want: []string{"fraud_case:RECEIVED", "fraud_case:IN_REVIEW", "fraud_case:RESOLVED"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bank := newBank(t, sandbox.Options{FraudCaseStep: tt.step})
			c := inProcess(t, bank, nil)
			consent := link(t, c, "alice")
			_, events := openEvents(t, c, bank, "alice")
			req := &adapterv1.ReportFraudRequest{
				BankConsentId: consent, BankAccountId: debitAccount,
				Category: adapterv1.FraudCategory_FRAUD_CATEGORY_PHISHING, IdempotencyKey: "report-0001",
			}
			var caseID string
			for range 2 {
				filed, err := c.ReportFraud(t.Context(), req)
				if err != nil {
					t.Fatal(err)
				}
				caseID = filed.GetCaseId()
			}
			var got []string
			for len(got) < len(tt.want) {
				ev := next(t, events)
				u := ev.GetFraudCaseUpdated()
				if u == nil {
					continue // the stream's first alerts
				}
				if u.GetCaseId() != caseID || u.GetBankConsentId() != consent {
					t.Errorf("update %v, want case %s under consent %s", u, caseID, consent)
				}
				got = append(got, describe(ev))
			}
			for _, ev := range drain(t, bank, "alice", events) {
				if ev.GetFraudCaseUpdated() != nil {
					got = append(got, describe(ev))
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("updates %v, want %v", got, tt.want)
			}
		})
	}
}

// TestAnswerFraudAlert answers one alert, in order: the first answer
// sticks, the same again is fine, another is refused; the alert is
// answerable only under its own consent, and only under SCOPE_FRAUD_ALERTS.
func TestAnswerFraudAlert(t *testing.T) {
	t.Parallel()
	bank := newBank(t, sandbox.Options{})
	c := inProcess(t, bank, nil)
	consent := link(t, c, "alice")
	first, _ := openEvents(t, c, bank, "alice")
	alertID := first.GetFraudAlert().GetAlertId()
	other := link(t, c, "alice")
	supportOnly := linkFor(t, c, "alice", commonv1.Scope_SCOPE_SUPPORT)
	if answer, ok := bank.AlertAnswer(alertID); !ok || answer != adapterv1.FraudAlertAnswer_FRAUD_ALERT_ANSWER_UNSPECIFIED {
		t.Fatalf("AlertAnswer before an answer: %v, %v", answer, ok)
	}

	const (
		notMe   = adapterv1.FraudAlertAnswer_FRAUD_ALERT_ANSWER_NOT_RECOGNISED
		itWasMe = adapterv1.FraudAlertAnswer_FRAUD_ALERT_ANSWER_RECOGNISED
	)
	tests := []struct {
		name    string
		consent string
		alert   string
		answer  adapterv1.FraudAlertAnswer
		want    commonv1.ErrorReason
	}{
		{name: "not me", consent: consent, alert: alertID, answer: notMe},
		{name: "not me, again", consent: consent, alert: alertID, answer: notMe},
		{name: "it was me, after not me", consent: consent, alert: alertID, answer: itWasMe, want: commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION},
		{name: "an unknown alert", consent: consent, alert: "alert-unknown", answer: notMe, want: commonv1.ErrorReason_ERROR_REASON_NOT_FOUND},
		{name: "under another consent", consent: other, alert: alertID, answer: notMe, want: commonv1.ErrorReason_ERROR_REASON_NOT_FOUND},
		{name: "under a consent without fraud alerts", consent: supportOnly, alert: alertID, answer: notMe, want: commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED},
		{name: "under an unknown consent", consent: "cns-unknown", alert: alertID, answer: notMe, want: commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK},
	}
	for _, tt := range tests { // in order: the first answer is what sticks
		_, err := c.AnswerFraudAlert(t.Context(), &adapterv1.AnswerFraudAlertRequest{BankConsentId: tt.consent, AlertId: tt.alert, Answer: tt.answer})
		if tt.want == commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
		} else {
			t.Run(tt.name, func(t *testing.T) { wantReason(t, err, tt.want) })
		}
		if answer, _ := bank.AlertAnswer(alertID); answer != notMe {
			t.Errorf("%s: AlertAnswer %v, want the first answer, NOT_RECOGNISED", tt.name, answer)
		}
	}

	srv := httptest.NewServer(bank.AdminHandler())
	defer srv.Close()
	unanswered, err := bank.TriggerFraudAlert("alice")
	if err != nil {
		t.Fatal(err)
	}
	admin := []struct {
		id       string
		wantCode int
		want     map[string]string
	}{
		{id: alertID, wantCode: http.StatusOK, want: map[string]string{"alert_id": alertID, "answer": "NOT_RECOGNISED"}},
		{id: unanswered[0], wantCode: http.StatusOK, want: map[string]string{"alert_id": unanswered[0], "answer": ""}},
		{id: "alert-unknown", wantCode: http.StatusNotFound},
	}
	for _, tt := range admin {
		resp, err := http.Get(srv.URL + "/admin/fraud-alerts/" + tt.id)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tt.wantCode || (tt.want != nil && (body["alert_id"] != tt.want["alert_id"] || body["answer"] != tt.want["answer"] || len(body) != 2)) {
			t.Errorf("GET /admin/fraud-alerts/%s: %d %v, want %d %v", tt.id, resp.StatusCode, body, tt.wantCode, tt.want)
		}
	}
}

// TestFraudAlertsNeedTheirScope: the bank alerts only the consents that
// cover SCOPE_FRAUD_ALERTS and are in force.
func TestFraudAlertsNeedTheirScope(t *testing.T) {
	t.Parallel()
	bank := newBank(t, sandbox.Options{})
	c := inProcess(t, bank, nil)
	linkFor(t, c, "alice", commonv1.Scope_SCOPE_ACCOUNTS, commonv1.Scope_SCOPE_SUPPORT)
	if _, err := bank.TriggerFraudAlert("alice"); !errors.Is(err, sandbox.ErrNoActiveConsent) {
		t.Fatalf("an alert for alice linked without fraud alerts: %v, want ErrNoActiveConsent", err)
	}
	revoked := linkFor(t, c, "alice", commonv1.Scope_SCOPE_FRAUD_ALERTS)
	if _, err := c.RevokeConsent(t.Context(), &adapterv1.RevokeConsentRequest{BankConsentId: revoked}); err != nil {
		t.Fatal(err)
	}
	if _, err := bank.TriggerFraudAlert("alice"); !errors.Is(err, sandbox.ErrNoActiveConsent) {
		t.Fatalf("an alert for alice whose fraud alert consent is revoked: %v, want ErrNoActiveConsent", err)
	}
	alerted := linkFor(t, c, "alice", commonv1.Scope_SCOPE_FRAUD_ALERTS)
	ids, err := bank.TriggerFraudAlert("alice")
	if err != nil || len(ids) != 1 {
		t.Fatalf("an alert for alice: %v, %v; want one, for the one consent covering fraud alerts", ids, err)
	}
	first, _ := openEvents(t, c, bank, "alice")
	if got := first.GetFraudAlert().GetBankConsentId(); got != alerted {
		t.Errorf("the alert came under consent %s, want %s", got, alerted)
	}
}
