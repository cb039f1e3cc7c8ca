package transport_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	supportv1 "github.com/bankbridge/bankbridge/gen/bankbridge/support/v1"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/support/internal/app"
)

// watchAlerts opens alice's alert stream (from cursor, or from now) and
// returns once it is open: the server sent its headers.
func (e *fraudEnv) watchAlerts(t *testing.T, ctx context.Context, cursor string) grpc.ServerStreamingClient[supportv1.WatchAlertsResponse] {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	t.Cleanup(cancel)
	w, err := e.support.WatchAlerts(ctx, &supportv1.WatchAlertsRequest{Parent: "users/alice", ResumeCursor: cursor})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Header(); err != nil {
		t.Fatal(err)
	}
	return w
}

// recv reads the next alert event, failing the test after a while.
func recv(t *testing.T, w grpc.ServerStreamingClient[supportv1.WatchAlertsResponse]) *supportv1.WatchAlertsResponse {
	t.Helper()
	type result struct {
		resp *supportv1.WatchAlertsResponse
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		resp, err := w.Recv()
		ch <- result{resp, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("Recv: %v", r.err)
		}
		return r.resp
	case <-time.After(10 * time.Second):
		t.Fatal("no alert event within 10s")
	}
	return nil
}

// bankAlert is an alert as the sandbox's stream would carry it, under
// consent.
func bankAlert(id, consent string) *adapterv1.FraudAlert {
	return &adapterv1.FraudAlert{
		AlertId: id, BankConsentId: consent, BankAccountId: "acc-alice-checking", TransactionId: "tx-alice-chk-003",
		BankCardId: "card-alice-debit", Amount: &commonv1.Money{CurrencyCode: "EUR", Units: -86, Nanos: -400_000_000},
		MerchantName: "Corner Grocery", ActivityTime: timestamppb.New(time.Now().Add(-time.Hour)),
		Severity: adapterv1.FraudSeverity_FRAUD_SEVERITY_MEDIUM, Description: "A payment we did not expect",
	}
}

func alertEvent(a *adapterv1.FraudAlert) *adapterv1.StreamEventsResponse {
	return &adapterv1.StreamEventsResponse{Event: &adapterv1.StreamEventsResponse_FraudAlert{FraudAlert: a}}
}

// outboxClient is the client (webhook target) of the event of type
// written for resource.
func (e *fraudEnv) outboxClient(t *testing.T, typ, resource string) string {
	t.Helper()
	var c string
	if err := e.db.QueryRowContext(t.Context(), `SELECT client_id FROM events_outbox WHERE event_type = $1 AND resource = $2`, typ, resource).Scan(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAlerts: a bank's fraud alert reaches the user's stream within a
// second and the linking product's webhook, and the user's answer reaches
// the stream and the bank.
func TestAlerts(t *testing.T) {
	e := startFraud(t, 0)
	alice := e.as(t, "alice")
	// alice linked the sandbox through another product than the one she
	// calls through now: the alert's webhooks go to the linking one.
	e.consent.SetLinkClient(e.link, "messenger-app")
	get := func(t *testing.T, name string) (*supportv1.Alert, error) {
		resp, err := e.support.GetAlert(alice, &supportv1.GetAlertRequest{Name: name})
		return resp.GetAlert(), err
	}
	ack := func(name string, r supportv1.AlertResponse) (*supportv1.AcknowledgeAlertResponse, error) {
		return e.support.AcknowledgeAlert(alice, &supportv1.AcknowledgeAlertRequest{Name: name, Response: r})
	}
	notMe, me := supportv1.AlertResponse_ALERT_RESPONSE_NOT_RECOGNISED, supportv1.AlertResponse_ALERT_RESPONSE_RECOGNISED

	w := e.watchAlerts(t, alice, "")
	var raised *supportv1.WatchAlertsResponse
	var alertID string
	t.Run("the bank's alert reaches the stream within a second", func(t *testing.T) {
		began := time.Now()
		ids, err := e.bank.TriggerFraudAlert("alice")
		if err != nil || len(ids) != 1 {
			t.Fatalf("TriggerFraudAlert = %v, %v", ids, err)
		}
		alertID = ids[0]
		raised = recv(t, w)
		if took := time.Since(began); took > time.Second {
			t.Errorf("the alert took %s to reach the stream, want at most 1s", took)
		}
		a := raised.GetAlert()
		want := &supportv1.Alert{
			Name: "users/alice/alerts/sandbox~" + alertID, Account: "users/alice/accounts/sandbox~acc-alice-card",
			Card: "users/alice/cards/sandbox~card-alice-credit", MerchantName: "Gadget Hub Online",
			Description: "Card payment in a country you have not used this card in before. Was it you?",
			Severity:    supportv1.AlertSeverity_ALERT_SEVERITY_HIGH, State: supportv1.AlertState_ALERT_STATE_NEW,
		}
		if a.GetName() != want.GetName() || a.GetAccount() != want.GetAccount() || a.GetCard() != want.GetCard() || a.GetTransaction() != "" ||
			a.GetMerchantName() != want.GetMerchantName() || a.GetDescription() != want.GetDescription() ||
			a.GetSeverity() != want.GetSeverity() || a.GetState() != want.GetState() || a.GetResponse() != 0 || a.GetAcknowledgeTime() != nil {
			t.Errorf("alert %v, want %v", a, want)
		}
		if m := a.GetAmount(); m.GetCurrencyCode() != "EUR" || m.GetUnits() != -899 || m.GetNanos() != 0 {
			t.Errorf("amount %v, want -899.00 EUR", m)
		}
		if a.GetActivityTime() == nil || a.GetCreateTime() == nil || raised.GetCursor() == "" || raised.GetEventTime() == nil {
			t.Errorf("event %v: want its times and cursor", raised)
		}
		if c := e.outboxClient(t, app.TypeAlertRaised, a.GetName()); c != "messenger-app" {
			t.Errorf("the alert's webhook goes to %q, want the linking product messenger-app", c)
		}
	})

	t.Run("read back and listed by state", func(t *testing.T) {
		a, err := get(t, raised.GetAlert().GetName())
		if err != nil || a.GetName() != raised.GetAlert().GetName() || a.GetState() != supportv1.AlertState_ALERT_STATE_NEW {
			t.Fatalf("GetAlert = %v, %v", a, err)
		}
		for state, want := range map[supportv1.AlertState]int{0: 1, supportv1.AlertState_ALERT_STATE_NEW: 1, supportv1.AlertState_ALERT_STATE_ACKNOWLEDGED: 0} {
			resp, err := e.support.ListAlerts(alice, &supportv1.ListAlertsRequest{Parent: "users/alice", State: state})
			if err != nil || len(resp.GetAlerts()) != want {
				t.Errorf("ListAlerts(%s) = %v, %v; want %d", state, resp, err, want)
			}
		}
	})

	t.Run("not me: recorded, streamed, offered a card block, passed to the bank", func(t *testing.T) {
		resp, err := ack(raised.GetAlert().GetName(), notMe)
		if err != nil {
			t.Fatal(err)
		}
		a := resp.GetAlert()
		if a.GetState() != supportv1.AlertState_ALERT_STATE_ACKNOWLEDGED || a.GetResponse() != notMe || a.GetAcknowledgeTime() == nil {
			t.Errorf("acknowledged %v, want ACKNOWLEDGED, NOT_RECOGNISED", a)
		}
		if resp.GetCardBlockOffer() != "users/alice/cards/sandbox~card-alice-credit" {
			t.Errorf("card_block_offer %q, want the alert's card", resp.GetCardBlockOffer())
		}
		got := recv(t, w)
		if got.GetAlert().GetName() != a.GetName() || got.GetAlert().GetState() != supportv1.AlertState_ALERT_STATE_ACKNOWLEDGED || got.GetAlert().GetResponse() != notMe {
			t.Errorf("streamed %v, want the acknowledged alert", got)
		}
		testkit.Eventually(t, func() bool {
			answer, ok := e.bank.AlertAnswer(alertID)
			return ok && answer == adapterv1.FraudAlertAnswer_FRAUD_ALERT_ANSWER_NOT_RECOGNISED
		}, 10*time.Second)
		if c := e.outboxClient(t, app.TypeAlertAcknowledged, a.GetName()); c != "messenger-app" {
			t.Errorf("the answer's webhook goes to %q, want messenger-app", c)
		}
	})

	t.Run("the same answer again changes nothing; another is refused", func(t *testing.T) {
		resp, err := ack(raised.GetAlert().GetName(), notMe)
		if err != nil || resp.GetAlert().GetState() != supportv1.AlertState_ALERT_STATE_ACKNOWLEDGED || resp.GetCardBlockOffer() == "" {
			t.Errorf("the same answer again = %v, %v", resp, err)
		}
		if n := e.outboxCount(t, app.TypeAlertAcknowledged, raised.GetAlert().GetName()); n != 1 {
			t.Errorf("%d acknowledged events, want 1", n)
		}
		_, err = ack(raised.GetAlert().GetName(), me)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION)
		if a, _ := get(t, raised.GetAlert().GetName()); a.GetResponse() != notMe {
			t.Errorf("the refused answer changed the alert: %v", a)
		}
	})

	t.Run("a watch resumed from a cursor misses nothing", func(t *testing.T) {
		resumed := e.watchAlerts(t, alice, raised.GetCursor())
		got := recv(t, resumed)
		if got.GetAlert().GetName() != raised.GetAlert().GetName() || got.GetAlert().GetState() != supportv1.AlertState_ALERT_STATE_ACKNOWLEDGED {
			t.Errorf("resumed with %v, want the acknowledgement", got)
		}
	})

	t.Run("the bank's description is shown with its numbers masked", func(t *testing.T) {
		a := bankAlert("alert-masked", e.bankConsent)
		a.Description = "Card 4111 1111 1111 1111 was used; account DE89-3704-0044-0532 debited 86.40 EUR"
		e.applyBankEvent(t, alertEvent(a))
		got, err := get(t, "users/alice/alerts/sandbox~alert-masked")
		if err != nil {
			t.Fatal(err)
		}
		if want := "Card •••• 1111 was used; account DE•••• 0532 debited 86.40 EUR"; got.GetDescription() != want {
			t.Errorf("description %q, want %q", got.GetDescription(), want)
		}
		if got.GetTransaction() != "users/alice/accounts/sandbox~acc-alice-checking/transactions/tx-alice-chk-003" {
			t.Errorf("transaction %q", got.GetTransaction())
		}
		if s := recv(t, w); s.GetAlert().GetName() != got.GetName() {
			t.Errorf("streamed %v", s)
		}
	})

	t.Run("this was me: no card block offered", func(t *testing.T) {
		resp, err := ack("users/alice/alerts/sandbox~alert-masked", me)
		if err != nil || resp.GetCardBlockOffer() != "" || resp.GetAlert().GetResponse() != me {
			t.Errorf("RECOGNISED = %v, %v; want no offer", resp, err)
		}
		cardless := bankAlert("alert-cardless", e.bankConsent)
		cardless.BankCardId, cardless.Amount = "", nil
		e.applyBankEvent(t, alertEvent(cardless))
		resp, err = ack("users/alice/alerts/sandbox~alert-cardless", notMe)
		if err != nil || resp.GetCardBlockOffer() != "" || resp.GetAlert().GetAmount() != nil {
			t.Errorf("NOT_RECOGNISED without a card = %v, %v; want no offer, no amount", resp, err)
		}
	})

	t.Run("an alert sent twice is stored and streamed once", func(t *testing.T) {
		a := bankAlert("alert-twice", e.bankConsent)
		e.applyBankEvent(t, alertEvent(a))
		e.applyBankEvent(t, alertEvent(a))
		if n := e.outboxCount(t, app.TypeAlertRaised, "users/alice/alerts/sandbox~alert-twice"); n != 1 {
			t.Errorf("%d raised events, want 1", n)
		}
	})

	t.Run("an answer the bank could not take is passed on when it is back", func(t *testing.T) {
		ids, err := e.bank.TriggerFraudAlert("alice")
		if err != nil {
			t.Fatal(err)
		}
		name := "users/alice/alerts/sandbox~" + ids[0]
		testkit.Eventually(t, func() bool { _, err := get(t, name); return err == nil }, 10*time.Second)
		e.bank.down.Store(true)
		if _, err := ack(name, me); err != nil {
			t.Fatal(err) // the outbox takes it, whatever the bank
		}
		testkit.Eventually(t, func() bool {
			return strings.Contains(e.logs.String(), "alert answer not delivered; trying again later")
		}, 10*time.Second)
		if answer, _ := e.bank.AlertAnswer(ids[0]); answer != adapterv1.FraudAlertAnswer_FRAUD_ALERT_ANSWER_UNSPECIFIED {
			t.Errorf("the bank has %s while down", answer)
		}
		e.bank.down.Store(false)
		testkit.Eventually(t, func() bool {
			answer, _ := e.bank.AlertAnswer(ids[0])
			return answer == adapterv1.FraudAlertAnswer_FRAUD_ALERT_ANSWER_RECOGNISED
		}, 10*time.Second)
	})

	t.Run("alerts no consent covers, or that break the protocol, are dropped", func(t *testing.T) {
		erin := e.consent.AddBankLink("erin", "sandbox", "cns-erin")
		e.consent.SetLinkState(erin, consentv1.ConsentState_CONSENT_STATE_REVOKED)
		e.consent.AddBankLink("frank", "sandbox", "cns-frank", commonv1.Scope_SCOPE_SUPPORT)
		tests := []struct {
			name   string
			alert  *adapterv1.FraudAlert
			logged string
		}{
			{"a consent no link has", bankAlert("alert-nobody", "cns-nobody"), "CONSENT_REQUIRED"},
			{"a revoked link's consent", bankAlert("alert-revoked", "cns-erin"), "CONSENT_REVOKED"},
			{"a consent without fraud alerts", bankAlert("alert-support-only", "cns-frank"), "CONSENT_REQUIRED"},
			{"an amount of two signs", func() *adapterv1.FraudAlert {
				a := bankAlert("alert-bad-amount", e.bankConsent)
				a.Amount.Nanos = 400_000_000
				return a
			}(), "at amount"},
			{"a card id the names cannot carry", func() *adapterv1.FraudAlert {
				a := bankAlert("alert-bad-card", e.bankConsent)
				a.BankCardId = "card~1"
				return a
			}(), "at bank_card_id"},
			{"no severity", func() *adapterv1.FraudAlert {
				a := bankAlert("alert-no-severity", e.bankConsent)
				a.Severity = 0
				return a
			}(), "at severity"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e.logs.Reset()
				e.applyBankEvent(t, alertEvent(tt.alert))
				for _, user := range []string{"alice", "erin", "frank"} {
					var n int
					if err := e.db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM fraud_alerts WHERE user_id = $1 AND alert_id = $2`, user, tt.alert.GetAlertId()).Scan(&n); err != nil || n != 0 {
						t.Errorf("%s has the alert stored (%d, %v)", user, n, err)
					}
				}
				logs := e.logs.String()
				if !strings.Contains(logs, "fraud alert dropped") || !strings.Contains(logs, tt.logged) || !strings.Contains(logs, `"bankbridge.bank_id":"sandbox"`) {
					t.Errorf("the drop is not logged with the bank and %q:\n%s", tt.logged, logs)
				}
				e.requireCleanLogs(t, "A payment we did not expect", "Corner Grocery", "86.4", "acc-alice-checking")
			})
		}
	})

	t.Run("the contract's refusals", func(t *testing.T) {
		bob := e.as(t, "bob")
		advertising := e.asFor(t, "alice", "ADVERTISING")
		support := e.asFor(t, "alice", "CUSTOMER_SUPPORT")
		name := raised.GetAlert().GetName()
		badCursor := base64.RawURLEncoding.EncodeToString([]byte("1:" + e.stream + ":1:1"))
		getAs := func(ctx context.Context, n string) error {
			_, err := e.support.GetAlert(ctx, &supportv1.GetAlertRequest{Name: n})
			return err
		}
		listAs := func(ctx context.Context, req *supportv1.ListAlertsRequest) error {
			if req.Parent == "" {
				req.Parent = "users/alice"
			}
			_, err := e.support.ListAlerts(ctx, req)
			return err
		}
		ackAs := func(ctx context.Context, n string, r supportv1.AlertResponse) error {
			_, err := e.support.AcknowledgeAlert(ctx, &supportv1.AcknowledgeAlertRequest{Name: n, Response: r})
			return err
		}
		watch := func(ctx context.Context, parent, cursor string) error {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			s, err := e.support.WatchAlerts(ctx, &supportv1.WatchAlertsRequest{Parent: parent, ResumeCursor: cursor})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			if err == io.EOF {
				t.Error("the stream ended without an error")
			}
			return err
		}
		expired, err := e.issuer.Mint("alice", servertest.Client, -time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		expiredToken := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+expired, "bankbridge-purpose", "FRAUD_PREVENTION")
		noToken := metadata.AppendToOutgoingContext(t.Context(), "bankbridge-purpose", "FRAUD_PREVENTION")
		notTheClients := e.asFor(t, "alice", "PURCHASE_HISTORY")
		tests := []struct {
			rpc, name string
			call      func() error
			reason    commonv1.ErrorReason
			field     string
		}{
			{"ListAlerts", "no token", func() error { return listAs(noToken, &supportv1.ListAlertsRequest{}) }, commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID, ""},
			{"ListAlerts", "an expired token", func() error { return listAs(expiredToken, &supportv1.ListAlertsRequest{}) }, commonv1.ErrorReason_ERROR_REASON_TOKEN_EXPIRED, ""},
			{"ListAlerts", "a purpose the client may not declare", func() error { return listAs(notTheClients, &supportv1.ListAlertsRequest{}) },
				commonv1.ErrorReason_ERROR_REASON_CLIENT_PURPOSE_NOT_ALLOWED, ""},
			{"GetAlert", "no such alert", func() error { return getAs(alice, "users/alice/alerts/sandbox~alert-nope") }, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, ""},
			{"GetAlert", "an alert at a bank not configured", func() error { return getAs(alice, "users/alice/alerts/nobank~alert-1") }, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, ""},
			{"GetAlert", "not an alert's name", func() error { return getAs(alice, "users/alice/alerts/alert-1") }, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "name"},
			{"GetAlert", "another user's alert", func() error { return getAs(bob, name) }, commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH, ""},
			{"GetAlert", "a purpose alerts are not for", func() error { return getAs(support, name) }, commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED, ""},
			{"ListAlerts", "advertising", func() error { return listAs(advertising, &supportv1.ListAlertsRequest{}) }, commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED, ""},
			{"ListAlerts", "a consent without fraud alerts", func() error { return listAs(bob, &supportv1.ListAlertsRequest{Parent: "users/bob"}) },
				commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, ""},
			{"ListAlerts", "a malformed page token", func() error { return listAs(alice, &supportv1.ListAlertsRequest{PageToken: "not-a-token"}) },
				commonv1.ErrorReason_ERROR_REASON_PAGE_TOKEN_INVALID, "page_token"},
			{"ListAlerts", "a token of a list with other filters", func() error {
				first, err := e.support.ListAlerts(alice, &supportv1.ListAlertsRequest{Parent: "users/alice", PageSize: 1})
				if err != nil || first.GetNextPageToken() == "" {
					t.Fatalf("first page = %v, %v", first, err)
				}
				return listAs(alice, &supportv1.ListAlertsRequest{PageSize: 1, State: supportv1.AlertState_ALERT_STATE_NEW, PageToken: first.GetNextPageToken()})
			}, commonv1.ErrorReason_ERROR_REASON_PAGE_TOKEN_INVALID, "page_token"},
			{"ListAlerts", "a state not defined", func() error { return listAs(alice, &supportv1.ListAlertsRequest{State: 9}) }, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "state"},
			{"AcknowledgeAlert", "no such alert", func() error { return ackAs(alice, "users/alice/alerts/sandbox~alert-nope", notMe) }, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, ""},
			{"AcknowledgeAlert", "no response", func() error { return ackAs(alice, name, 0) }, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "response"},
			{"AcknowledgeAlert", "another user's alert", func() error { return ackAs(bob, name, notMe) }, commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH, ""},
			{"WatchAlerts", "a malformed cursor", func() error { return watch(alice, "users/alice", "not-a-cursor") }, commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID, "resume_cursor"},
			{"WatchAlerts", "a cursor of a stream since made anew", func() error { return watch(alice, "users/alice", badCursor) }, commonv1.ErrorReason_ERROR_REASON_CURSOR_EXPIRED, ""},
			{"WatchAlerts", "another user", func() error { return watch(alice, "users/bob", "") }, commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH, ""},
			{"WatchAlerts", "a consent without fraud alerts", func() error { return watch(bob, "users/bob", "") }, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, ""},
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

	t.Run("an access log that cannot be written: nothing is read", func(t *testing.T) {
		e.consent.FailRecord(errors.New("the access log is down"))
		defer e.consent.FailRecord(nil)
		_, err := e.support.GetAlert(alice, &supportv1.GetAlertRequest{Name: raised.GetAlert().GetName()})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_AUDIT_UNAVAILABLE)
	})

	t.Run("the links revoked: the open watch ends, the alerts go", func(t *testing.T) {
		// Both of alice's links cover fraud alerts; the stream ends when
		// neither does.
		e.consent.SetLinkState(e.nocardsLink, consentv1.ConsentState_CONSENT_STATE_REVOKED)
		e.consent.SetLinkState(e.link, consentv1.ConsentState_CONSENT_STATE_REVOKED)
		// What was streamed before comes first; then the refusal.
		var err error
		for i := 0; err == nil && i < 20; i++ {
			_, err = w.Recv()
		}
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED)
		if err := e.svc.RevokeLink(t.Context(), "alice", "sandbox", e.link); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := e.db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM fraud_alerts WHERE user_id = 'alice'`).Scan(&n); err != nil || n != 0 {
			t.Errorf("%d of alice's alerts left (%v), want none", n, err)
		}
	})
}

// TestWatchAlertsEndsWhenTheServerStops: an open watch ends with
// UNAVAILABLE (SERVER_STOPPING), for the client to reopen at once.
func TestWatchAlertsEndsWhenTheServerStops(t *testing.T) {
	e := startFraud(t, 0)
	w := e.watchAlerts(t, e.as(t, "alice"), "")
	e.srv.Stop()
	_, err := w.Recv()
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SERVER_STOPPING)
	if err := <-e.srv.Done; err != nil {
		t.Errorf("Serve returned %v", err)
	}
	e.srv.Done <- nil // for the cleanup
}

// TestFraudFailuresOfTheStore: an unexpected failure is INTERNAL with an
// incident id, and its cause stays in the log.
func TestFraudFailuresOfTheStore(t *testing.T) {
	e := startFraud(t, 0)
	if err := e.db.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := e.support.GetFraudReport(e.as(t, "alice"), &supportv1.GetFraudReportRequest{Name: "users/alice/fraudReports/sandbox~r1"})
	if md := testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_INTERNAL); md["incident_id"] == "" {
		t.Errorf("metadata = %v, want an incident_id", md)
	}
}
