package transport_test

import (
	"context"
	"strings"
	"testing"
	"time"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	supportv1 "github.com/bankbridge/bankbridge/gen/bankbridge/support/v1"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/support/internal/app"
)

const (
	checking    = "users/alice/accounts/sandbox~acc-alice-checking"
	groceries   = checking + "/transactions/tx-alice-chk-003"
	description = "Not me: I was at home that evening"
)

// unrecognised is alice's report of the grocery payment, with the debit
// card to block.
func unrecognised() *supportv1.FraudReport {
	return &supportv1.FraudReport{
		Account: checking, Transaction: groceries, Category: supportv1.FraudCategory_FRAUD_CATEGORY_UNRECOGNISED_TRANSACTION,
		Description: description, BlockCard: true, Card: debitCard,
	}
}

func (e *fraudEnv) report(ctx context.Context, r *supportv1.FraudReport, key string) (*supportv1.FraudReport, error) {
	resp, err := e.support.CreateFraudReport(ctx, &supportv1.CreateFraudReportRequest{Parent: "users/alice", FraudReport: r, IdempotencyKey: key})
	return resp.GetFraudReport(), err
}

func (e *fraudEnv) getReport(t *testing.T, name string) *supportv1.FraudReport {
	t.Helper()
	resp, err := e.support.GetFraudReport(e.as(t, "alice"), &supportv1.GetFraudReportRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetFraudReport()
}

// waitReport waits until the report reaches status.
func (e *fraudEnv) waitReport(t *testing.T, name string, status supportv1.FraudReportStatus) *supportv1.FraudReport {
	t.Helper()
	var r *supportv1.FraudReport
	if !testkit.Within(10*time.Second, func() bool {
		r = e.getReport(t, name)
		return r.GetStatus() == status
	}) {
		t.Fatalf("report is %v, want %s", r, status)
	}
	return r
}

// caseUpdate is the bank's news of a case, as its event stream says it.
func caseUpdate(consent, caseID string, st adapterv1.FraudCaseStatus) *adapterv1.StreamEventsResponse {
	return &adapterv1.StreamEventsResponse{Event: &adapterv1.StreamEventsResponse_FraudCaseUpdated{
		FraudCaseUpdated: &adapterv1.FraudCaseUpdated{BankConsentId: consent, CaseId: caseID, Status: st},
	}}
}

// TestFraudReports: a report goes SUBMITTING, through the outbox to the
// bank, and on with the bank's case; the card blocked with it.
func TestFraudReports(t *testing.T) {
	e := startFraud(t, 100*time.Millisecond)
	alice := e.as(t, "alice")

	var first *supportv1.FraudReport
	t.Run("recorded SUBMITTING, then the bank's case to its end", func(t *testing.T) {
		key := newKey()
		r, err := e.report(alice, unrecognised(), key)
		if err != nil {
			t.Fatal(err)
		}
		first = r
		id, ok := strings.CutPrefix(r.GetName(), "users/alice/fraudReports/sandbox~")
		if !ok || id == "" {
			t.Errorf("name %q, want users/alice/fraudReports/sandbox~{id}", r.GetName())
		}
		if r.GetAccount() != checking || r.GetTransaction() != groceries || r.GetCard() != debitCard || !r.GetBlockCard() ||
			r.GetDescription() != description || r.GetCategory() != supportv1.FraudCategory_FRAUD_CATEGORY_UNRECOGNISED_TRANSACTION ||
			r.GetCreateTime() == nil {
			t.Errorf("report %v: want what alice filed", r)
		}
		// Delivery is the outbox's: the answer does not wait for the bank.
		if r.GetStatus() != supportv1.FraudReportStatus_FRAUD_REPORT_STATUS_SUBMITTING || r.GetCardBlockStatus() != supportv1.CardBlockStatus_CARD_BLOCK_STATUS_PENDING ||
			r.GetBankCaseReference() != "" {
			t.Errorf("new report %v, want SUBMITTING, card block PENDING, no case", r)
		}
		var seen []supportv1.FraudReportStatus
		if !testkit.Within(10*time.Second, func() bool {
			got := e.getReport(t, r.GetName())
			if len(seen) == 0 || seen[len(seen)-1] != got.GetStatus() {
				seen = append(seen, got.GetStatus())
			}
			return got.GetStatus() == supportv1.FraudReportStatus_FRAUD_REPORT_STATUS_RESOLVED
		}) {
			t.Fatalf("statuses %v, never RESOLVED", seen)
		}
		got := e.getReport(t, r.GetName())
		if !strings.HasPrefix(got.GetBankCaseReference(), "fraud-") || got.GetCardBlockStatus() != supportv1.CardBlockStatus_CARD_BLOCK_STATUS_BLOCKED ||
			!got.GetUpdateTime().AsTime().After(got.GetCreateTime().AsTime()) {
			t.Errorf("delivered report %v, want the bank's case and the card BLOCKED", got)
		}
		for i := 1; i < len(seen); i++ {
			if seen[i] < seen[i-1] {
				t.Errorf("statuses %v went back", seen)
			}
		}
		cards, err := e.support.ListCards(alice, &supportv1.ListCardsRequest{Parent: "users/alice", BankId: "sandbox"})
		if err != nil || cards.GetCards()[0].GetState() != supportv1.CardState_CARD_STATE_BLOCKED ||
			cards.GetCards()[0].GetBlockReason() != supportv1.CardBlockReason_CARD_BLOCK_REASON_FRAUD_SUSPECTED {
			t.Errorf("the bank's cards %v, %v; want the debit card BLOCKED for suspected fraud", cards, err)
		}
		// A retry answers the report as it now is; another body is refused.
		again, err := e.report(alice, unrecognised(), key)
		if err != nil || again.GetName() != r.GetName() || again.GetStatus() != supportv1.FraudReportStatus_FRAUD_REPORT_STATUS_RESOLVED {
			t.Errorf("a retry = %v, %v; want the same report, RESOLVED", again, err)
		}
		other := unrecognised()
		other.Description = "another story"
		_, err = e.report(alice, other, key)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
	})

	t.Run("a bank that is down gets the report when it is back", func(t *testing.T) {
		e.bank.down.Store(true)
		r, err := e.report(alice, &supportv1.FraudReport{Account: checking, Category: supportv1.FraudCategory_FRAUD_CATEGORY_PHISHING,
			Description: description}, newKey())
		if err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, func() bool {
			return strings.Contains(e.logs.String(), "fraud report not delivered; trying again later")
		}, 10*time.Second)
		if got := e.getReport(t, r.GetName()); got.GetStatus() != supportv1.FraudReportStatus_FRAUD_REPORT_STATUS_SUBMITTING ||
			got.GetCardBlockStatus() != supportv1.CardBlockStatus_CARD_BLOCK_STATUS_NOT_REQUESTED {
			t.Errorf("while the bank is down: %v, want SUBMITTING, no card block", got)
		}
		e.bank.down.Store(false)
		if got := e.waitReport(t, r.GetName(), supportv1.FraudReportStatus_FRAUD_REPORT_STATUS_RESOLVED); got.GetBankCaseReference() == "" {
			t.Errorf("delivered %v without a case", got)
		}
	})

	t.Run("a bank that cannot take reports: SUBMITTING, the card block FAILED", func(t *testing.T) {
		r, err := e.report(alice, &supportv1.FraudReport{Account: "users/alice/accounts/nocards~acc-alice-checking",
			Category: supportv1.FraudCategory_FRAUD_CATEGORY_CARD_LOST, BlockCard: true}, newKey())
		if err != nil {
			t.Fatal(err)
		}
		var got *supportv1.FraudReport
		if !testkit.Within(10*time.Second, func() bool {
			got = e.getReport(t, r.GetName())
			return got.GetCardBlockStatus() == supportv1.CardBlockStatus_CARD_BLOCK_STATUS_FAILED
		}) {
			t.Fatalf("report %v, want its card block FAILED", got)
		}
		if got.GetStatus() != supportv1.FraudReportStatus_FRAUD_REPORT_STATUS_SUBMITTING {
			t.Errorf("report %v, want SUBMITTING", got)
		}
		if !strings.Contains(e.logs.String(), "CAPABILITY_NOT_SUPPORTED") {
			t.Errorf("the refusal's reason is not in the log:\n%s", e.logs.String())
		}
	})

	t.Run("listed newest first, a page at a time, at banks still consented", func(t *testing.T) {
		var names []string
		req := &supportv1.ListFraudReportsRequest{Parent: "users/alice", PageSize: 1}
		for {
			resp, err := e.support.ListFraudReports(alice, req)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range resp.GetFraudReports() {
				names = append(names, r.GetName())
			}
			if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
				break
			}
		}
		if len(names) != 3 || names[2] != first.GetName() || !strings.HasPrefix(names[0], "users/alice/fraudReports/nocards~") {
			t.Fatalf("reports %v, want 3, the nocards one first, the first filed last", names)
		}
		// The nocards link ends: its report is no longer listed.
		e.consent.SetLinkState(e.nocardsLink, consentv1.ConsentState_CONSENT_STATE_REVOKED)
		resp, err := e.support.ListFraudReports(alice, &supportv1.ListFraudReportsRequest{Parent: "users/alice"})
		if err != nil || len(resp.GetFraudReports()) != 2 {
			t.Errorf("after the nocards link ended: %v, %v; want the 2 sandbox reports", resp, err)
		}
		for _, r := range resp.GetFraudReports() {
			if !strings.HasPrefix(r.GetName(), "users/alice/fraudReports/sandbox~") {
				t.Errorf("listed %s", r.GetName())
			}
		}
	})

	t.Run("the assistant files an unrecognised charge through the app", func(t *testing.T) {
		g := app.Grant{User: "alice", Client: "chat-app", BankID: "sandbox", Link: e.link, BankConsentID: e.bankConsent}
		tx, err := names.ParseTransaction(groceries)
		if err != nil {
			t.Fatal(err)
		}
		key := newKey()
		r, err := e.svc.CreateFraudReport(t.Context(), g, app.FraudReportInput{
			Account: tx.Account, TransactionID: tx.ID, Category: app.FraudUnrecognisedTransaction, IdempotencyKey: key,
		})
		if err != nil || r.Status != app.FraudSubmitting || r.CardBlockStatus != app.CardBlockNotRequested {
			t.Fatalf("CreateFraudReport = %+v, %v", r, err)
		}
		again, err := e.svc.CreateFraudReport(t.Context(), g, app.FraudReportInput{
			Account: tx.Account, TransactionID: tx.ID, Category: app.FraudUnrecognisedTransaction, IdempotencyKey: key,
		})
		if err != nil || again.ID != r.ID {
			t.Errorf("the same key again = %+v, %v; want report %s", again, err, r.ID)
		}
		e.waitReport(t, r.Name(), supportv1.FraudReportStatus_FRAUD_REPORT_STATUS_RESOLVED)
		_, err = e.svc.CreateFraudReport(t.Context(), g, app.FraudReportInput{
			Account: names.Account{User: "alice", BankID: "nocards", BankAccountID: "acc-1"}, Category: app.FraudScam, IdempotencyKey: newKey(),
		})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED) // another bank than the grant's
	})

	t.Run("the contract's refusals", func(t *testing.T) {
		bob, carol := e.as(t, "bob"), e.as(t, "carol")
		advertising := e.asFor(t, "alice", "ADVERTISING")
		with := func(mod func(r *supportv1.FraudReport)) *supportv1.FraudReport {
			r := unrecognised()
			mod(r)
			return r
		}
		create := func(ctx context.Context, parent string, r *supportv1.FraudReport, key string) error {
			_, err := e.support.CreateFraudReport(ctx, &supportv1.CreateFraudReportRequest{Parent: parent, FraudReport: r, IdempotencyKey: key})
			return err
		}
		get := func(ctx context.Context, name string) error {
			_, err := e.support.GetFraudReport(ctx, &supportv1.GetFraudReportRequest{Name: name})
			return err
		}
		tests := []struct {
			rpc, name string
			call      func() error
			reason    commonv1.ErrorReason
			field     string
		}{
			{"CreateFraudReport", "an account at a bank not configured", func() error {
				return create(alice, "users/alice", &supportv1.FraudReport{Account: "users/alice/accounts/nobank~acc-1", Category: supportv1.FraudCategory_FRAUD_CATEGORY_SCAM}, newKey())
			}, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, ""},
			{"CreateFraudReport", "no transaction for an unrecognised one", func() error {
				return create(alice, "users/alice", with(func(r *supportv1.FraudReport) { r.Transaction = "" }), newKey())
			}, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "fraud_report"},
			{"CreateFraudReport", "no description for OTHER", func() error {
				return create(alice, "users/alice", &supportv1.FraudReport{Account: checking, Category: supportv1.FraudCategory_FRAUD_CATEGORY_OTHER}, newKey())
			}, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "fraud_report"},
			{"CreateFraudReport", "a transaction of another account", func() error {
				return create(alice, "users/alice", with(func(r *supportv1.FraudReport) {
					r.Transaction = "users/alice/accounts/sandbox~acc-alice-card/transactions/tx-alice-card-001"
				}), newKey())
			}, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "fraud_report"},
			{"CreateFraudReport", "another user's account", func() error {
				return create(alice, "users/alice", with(func(r *supportv1.FraudReport) {
					r.Account, r.Transaction, r.Card = "users/bob/accounts/sandbox~acc-bob-savings", "", ""
				}), newKey())
			}, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, ""},
			{"CreateFraudReport", "a card at another bank", func() error {
				return create(alice, "users/alice", with(func(r *supportv1.FraudReport) { r.Card = "users/alice/cards/nocards~card-1" }), newKey())
			}, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "fraud_report.card"},
			{"CreateFraudReport", "a card without block_card", func() error {
				return create(alice, "users/alice", with(func(r *supportv1.FraudReport) { r.BlockCard = false }), newKey())
			}, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "fraud_report.card"},
			{"CreateFraudReport", "no category", func() error {
				return create(alice, "users/alice", with(func(r *supportv1.FraudReport) { r.Category = 0 }), newKey())
			}, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "fraud_report.category"},
			{"CreateFraudReport", "no report", func() error { return create(alice, "users/alice", nil, newKey()) }, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "fraud_report"},
			{"CreateFraudReport", "no key", func() error { return create(alice, "users/alice", unrecognised(), "") }, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "idempotency_key"},
			{"CreateFraudReport", "another user", func() error { return create(alice, "users/bob", unrecognised(), newKey()) }, commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH, ""},
			{"CreateFraudReport", "advertising", func() error { return create(advertising, "users/alice", unrecognised(), newKey()) }, commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED, ""},
			{"CreateFraudReport", "no consent at the bank", func() error {
				return create(carol, "users/carol", &supportv1.FraudReport{Account: "users/carol/accounts/sandbox~acc-1", Category: supportv1.FraudCategory_FRAUD_CATEGORY_SCAM}, newKey())
			}, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, ""},
			{"GetFraudReport", "no such report", func() error { return get(alice, "users/alice/fraudReports/sandbox~nope") }, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, ""},
			{"GetFraudReport", "another user's report", func() error { return get(bob, first.GetName()) }, commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH, ""},
			{"GetFraudReport", "not a report's name", func() error { return get(alice, "users/alice/fraudReports/nope") }, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "name"},
			{"ListFraudReports", "a malformed page token", func() error {
				_, err := e.support.ListFraudReports(alice, &supportv1.ListFraudReportsRequest{Parent: "users/alice", PageToken: "not-a-token"})
				return err
			}, commonv1.ErrorReason_ERROR_REASON_PAGE_TOKEN_INVALID, "page_token"},
			{"ListFraudReports", "no consent anywhere", func() error {
				_, err := e.support.ListFraudReports(carol, &supportv1.ListFraudReportsRequest{Parent: "users/carol"})
				return err
			}, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, ""},
		}
		for _, tt := range tests {
			t.Run(tt.rpc+"/"+tt.name, func(t *testing.T) {
				err := tt.call()
				testkit.RequireReason(t, err, tt.reason)
				if tt.field != "" {
					testkit.RequireFieldViolation(t, err, tt.field)
				}
			})
		}
	})

	t.Run("revoking the link deletes its reports", func(t *testing.T) {
		if err := e.svc.RevokeLink(t.Context(), "alice", "sandbox", e.link); err != nil {
			t.Fatal(err)
		}
		_, err := e.support.GetFraudReport(alice, &supportv1.GetFraudReportRequest{Name: first.GetName()})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
	})

	e.requireCleanLogs(t, description, "I was at home")
}

// TestFraudCaseUpdates: the bank's news of a case moves its report on,
// never back, only under the report's consent, and news that came before
// the case was stored is not lost.
func TestFraudCaseUpdates(t *testing.T) {
	e := startFraud(t, 0) // the sandbox leaves its cases RECEIVED
	alice := e.as(t, "alice")
	phishing := func() *supportv1.FraudReport {
		return &supportv1.FraudReport{Account: checking, Category: supportv1.FraudCategory_FRAUD_CATEGORY_PHISHING}
	}

	r, err := e.report(alice, phishing(), newKey())
	if err != nil {
		t.Fatal(err)
	}
	caseID := e.waitReport(t, r.GetName(), supportv1.FraudReportStatus_FRAUD_REPORT_STATUS_RECEIVED).GetBankCaseReference()
	status := func(t *testing.T) supportv1.FraudReportStatus {
		t.Helper()
		return e.getReport(t, r.GetName()).GetStatus()
	}
	steps := []struct {
		name    string
		consent string
		caseID  string
		status  adapterv1.FraudCaseStatus
		want    supportv1.FraudReportStatus
	}{
		{"IN_REVIEW moves it on", e.bankConsent, caseID, adapterv1.FraudCaseStatus_FRAUD_CASE_STATUS_IN_REVIEW, supportv1.FraudReportStatus_FRAUD_REPORT_STATUS_IN_REVIEW},
		{"RECEIVED again does not move it back", e.bankConsent, caseID, adapterv1.FraudCaseStatus_FRAUD_CASE_STATUS_RECEIVED, supportv1.FraudReportStatus_FRAUD_REPORT_STATUS_IN_REVIEW},
		{"news under another consent is dropped", "cns-someone-else", caseID, adapterv1.FraudCaseStatus_FRAUD_CASE_STATUS_RESOLVED, supportv1.FraudReportStatus_FRAUD_REPORT_STATUS_IN_REVIEW},
		{"a status the protocol does not name is dropped", e.bankConsent, caseID, adapterv1.FraudCaseStatus(1), supportv1.FraudReportStatus_FRAUD_REPORT_STATUS_IN_REVIEW},
		{"a malformed case id is dropped", e.bankConsent, "case id", adapterv1.FraudCaseStatus_FRAUD_CASE_STATUS_RESOLVED, supportv1.FraudReportStatus_FRAUD_REPORT_STATUS_IN_REVIEW},
		{"RESOLVED ends it", e.bankConsent, caseID, adapterv1.FraudCaseStatus_FRAUD_CASE_STATUS_RESOLVED, supportv1.FraudReportStatus_FRAUD_REPORT_STATUS_RESOLVED},
		{"nothing comes after RESOLVED", e.bankConsent, caseID, adapterv1.FraudCaseStatus_FRAUD_CASE_STATUS_IN_REVIEW, supportv1.FraudReportStatus_FRAUD_REPORT_STATUS_RESOLVED},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			e.applyBankEvent(t, caseUpdate(s.consent, s.caseID, s.status))
			if got := status(t); got != s.want {
				t.Errorf("status %s, want %s", got, s.want)
			}
		})
	}

	t.Run("news that came before the bank answered is kept for the report", func(t *testing.T) {
		// The bank announces the case on its stream before ReportFraud
		// answers; here it says IN_REVIEW already.
		e.bank.onReport(func(caseID string) {
			// In the fraud report worker's goroutine: no t.Fatal here.
			ev := caseUpdate(e.bankConsent, caseID, adapterv1.FraudCaseStatus_FRAUD_CASE_STATUS_IN_REVIEW)
			ev.Cursor = e.bankCursor(t)
			if err := e.svc.ApplyBankEvent(context.Background(), "sandbox", ev); err != nil {
				t.Errorf("ApplyBankEvent: %v", err)
			}
		})
		defer e.bank.onReport(nil)
		r, err := e.report(alice, phishing(), newKey())
		if err != nil {
			t.Fatal(err)
		}
		if got := e.waitReport(t, r.GetName(), supportv1.FraudReportStatus_FRAUD_REPORT_STATUS_IN_REVIEW); got.GetBankCaseReference() == "" {
			t.Errorf("report %v without its case", got)
		}
	})

	if logs := e.logs.String(); !strings.Contains(logs, "fraud case update dropped") || !strings.Contains(logs, `"bankbridge.bank_id":"sandbox"`) {
		t.Errorf("the drops are not logged with their bank:\n%s", logs)
	}
}
