package store_test

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/support/internal/app"
	"github.com/bankbridge/bankbridge/services/support/internal/store"
)

// The fraud files' part of the storage contract (TestStore runs it on
// SQLite and PostgreSQL). Its users are its own: the suite shares one
// database.

func report(user, bank, id string, at time.Time) app.FraudReport {
	return app.FraudReport{
		BankKey: app.BankKey{User: user, BankID: bank, ID: id},
		Client:  "chat-app", Link: "users/" + user + "/links/l-" + bank, BankConsentID: "bc-" + user,
		AccountID: "acc-1", TransactionID: "tx-1", Category: app.FraudUnrecognisedTransaction, Description: "Not me, I was at home",
		BlockCard: true, CardID: "card-1", Status: app.FraudSubmitting, CardBlockStatus: app.CardBlockPending,
		CreateTime: at, UpdateTime: at,
	}
}

func alert(user, bank, id string, at time.Time) app.Alert {
	return app.Alert{
		BankKey: app.BankKey{User: user, BankID: bank, ID: id},
		Client:  "chat-app", Link: "users/" + user + "/links/l-" + bank, BankConsentID: "bc-" + user,
		AccountID: "acc-1", TransactionID: "tx-1", CardID: "card-1",
		Amount:       &app.Money{Currency: "EUR", Units: -899, Nanos: -990_000_000},
		MerchantName: "Gadget Hub", Description: "Card •••• 1111 abroad", ActivityTime: at.Add(-time.Minute),
		Severity: app.SeverityHigh, State: app.AlertNew, CreateTime: at,
	}
}

// fileReport stores r with its key and event, as CreateFraudReport does.
func fileReport(t *testing.T, st *store.Store, r app.FraudReport, key string) {
	t.Helper()
	err := st.Tx(t.Context(), func(tx app.Tx) error {
		if err := tx.InsertFraudReport(t.Context(), r); err != nil {
			return err
		}
		if err := tx.RememberFraudReport(t.Context(), app.FraudReportKey{User: r.User, Client: r.Client, Key: key, RequestHash: "h-" + key, Report: r.BankKey, CreateTime: r.CreateTime}); err != nil {
			return err
		}
		return tx.AddEvent(t.Context(), app.Event{ID: "ev-" + r.User + "-" + r.BankID + "-" + r.ID, Type: app.TypeFraudReportFiled, User: r.User, Resource: r.Name(),
			Time: r.CreateTime, Payload: app.FraudReportFiled{Report: r.BankKey}})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// insertAlert stores a as the alert hook does; inserted says whether it
// was new.
func insertAlert(t *testing.T, st *store.Store, a app.Alert) bool {
	t.Helper()
	var inserted bool
	err := st.Tx(t.Context(), func(tx app.Tx) error {
		var err error
		inserted, err = tx.InsertAlert(t.Context(), a)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return inserted
}

func reportIDs(rs []app.FraudReport) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.BankID+"~"+r.ID)
	}
	return out
}

func alertIDs(as []app.Alert) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.BankID+"~"+a.ID)
	}
	return out
}

// testFraud runs the fraud files' cases.
func testFraud(t *testing.T, st *store.Store, db *storage.DB) {
	ctx := t.Context()

	t.Run("a fraud report reads back as stored, its event written with it", func(t *testing.T) {
		r := report("fr-rt", "sandbox", "r1", t0)
		fileReport(t, st, r, "key-rt-1")
		got, err := st.FraudReport(ctx, r.BankKey)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("FraudReport =\n%+v\nwant\n%+v", got, r)
		}
		if _, err := st.FraudReport(ctx, app.BankKey{User: "fr-other", BankID: "sandbox", ID: "r1"}); !errors.Is(err, app.ErrNotFound) {
			t.Errorf("another user's report = %v, want ErrNotFound", err)
		}
		if got := outboxTypes(t, db, r.Name()); !slices.Equal(got, []string{app.TypeFraudReportFiled}) {
			t.Errorf("outbox = %v", got)
		}
		bare := report("fr-rt", "sandbox", "r2", t0)
		bare.TransactionID, bare.CardID, bare.BlockCard, bare.CardBlockStatus, bare.Description = "", "", false, app.CardBlockNotRequested, ""
		fileReport(t, st, bare, "key-rt-2")
		if got, err := st.FraudReport(ctx, bare.BankKey); err != nil || !reflect.DeepEqual(got, bare) {
			t.Errorf("a report without transaction or card = %+v, %v", got, err)
		}
	})

	t.Run("a report's idempotency key is the user's and client's, taken once", func(t *testing.T) {
		r := report("fr-key", "sandbox", "r1", t0)
		fileReport(t, st, r, "key-1")
		k, err := st.RecallFraudReport(ctx, "fr-key", "chat-app", "key-1")
		if err != nil || k.RequestHash != "h-key-1" || k.Report != r.BankKey || !k.CreateTime.Equal(t0) {
			t.Errorf("RecallFraudReport = %+v, %v", k, err)
		}
		for _, who := range [][2]string{{"fr-key", "other-app"}, {"fr-other", "chat-app"}} {
			if _, err := st.RecallFraudReport(ctx, who[0], who[1], "key-1"); !errors.Is(err, app.ErrNotFound) {
				t.Errorf("%v recalls the key = %v, want ErrNotFound", who, err)
			}
		}
		err = st.Tx(ctx, func(tx app.Tx) error {
			return tx.RememberFraudReport(ctx, app.FraudReportKey{User: "fr-key", Client: "chat-app", Key: "key-1", RequestHash: "h-2", Report: r.BankKey, CreateTime: t0})
		})
		if !errors.Is(err, app.ErrConflict) {
			t.Errorf("the key again = %v, want ErrConflict", err)
		}
		err = st.Tx(ctx, func(tx app.Tx) error { return tx.InsertFraudReport(ctx, r) })
		if !errors.Is(err, app.ErrConflict) {
			t.Errorf("the report id again = %v, want ErrConflict", err)
		}
	})

	t.Run("fraud reports list newest first, at the banks asked for, a page at a time", func(t *testing.T) {
		fileReport(t, st, report("fr-list", "sandbox", "a", t0), "k-a")
		fileReport(t, st, report("fr-list", "sandbox", "b", t0.Add(time.Second)), "k-b")
		fileReport(t, st, report("fr-list", "otherbank", "a", t0.Add(time.Second)), "k-c")
		fileReport(t, st, report("fr-list", "gone", "a", t0.Add(2*time.Second)), "k-d")
		fileReport(t, st, report("fr-list-other", "sandbox", "z", t0.Add(3*time.Second)), "k-e")
		banks := []string{"sandbox", "otherbank"}
		all, err := st.ListFraudReports(ctx, "fr-list", banks, nil, 10)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"sandbox~b", "otherbank~a", "sandbox~a"}; !slices.Equal(reportIDs(all), want) {
			t.Errorf("ListFraudReports = %v, want %v", reportIDs(all), want)
		}
		page, err := st.ListFraudReports(ctx, "fr-list", banks, nil, 1)
		if err != nil || len(page) != 1 {
			t.Fatalf("first page = %v, %v", reportIDs(page), err)
		}
		var got []string
		for len(page) > 0 {
			got = append(got, reportIDs(page)...)
			last := page[len(page)-1]
			page, err = st.ListFraudReports(ctx, "fr-list", banks, &pagetoken.Position{Time: last.CreateTime, ID: last.BankID + "~" + last.ID}, 1)
			if err != nil {
				t.Fatal(err)
			}
		}
		if !slices.Equal(got, reportIDs(all)) {
			t.Errorf("page by page = %v, want %v", got, reportIDs(all))
		}
	})

	t.Run("an update writes the report's progress, and the case finds it", func(t *testing.T) {
		r := report("fr-case", "sandbox", "r1", t0)
		fileReport(t, st, r, "k-1")
		r.CaseID, r.Status, r.CardBlockStatus, r.UpdateTime = "case-1", app.FraudReceived, app.CardBlockBlocked, t0.Add(time.Minute)
		err := st.Tx(ctx, func(tx app.Tx) error {
			locked, err := tx.LockFraudReport(ctx, r.BankKey)
			if err != nil || locked.Status != app.FraudSubmitting {
				t.Errorf("LockFraudReport = %+v, %v", locked, err)
			}
			return tx.UpdateFraudReport(ctx, r)
		})
		if err != nil {
			t.Fatal(err)
		}
		err = st.Tx(ctx, func(tx app.Tx) error {
			got, err := tx.FraudReportByCase(ctx, "sandbox", "case-1")
			if err != nil || !reflect.DeepEqual(got, r) {
				t.Errorf("FraudReportByCase = %+v, %v; want %+v", got, err, r)
			}
			if _, err := tx.FraudReportByCase(ctx, "otherbank", "case-1"); !errors.Is(err, app.ErrNotFound) {
				t.Errorf("another bank's case = %v, want ErrNotFound", err)
			}
			_, err = tx.LockFraudReport(ctx, app.BankKey{User: "fr-case", BankID: "sandbox", ID: "nope"})
			if !errors.Is(err, app.ErrNotFound) {
				t.Errorf("LockFraudReport of nothing = %v, want ErrNotFound", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// A bank's case id names one report.
		r2 := report("fr-case", "sandbox", "r2", t0)
		fileReport(t, st, r2, "k-2")
		r2.CaseID = "case-1"
		if err := st.Tx(ctx, func(tx app.Tx) error { return tx.UpdateFraudReport(ctx, r2) }); !errors.Is(err, app.ErrConflict) {
			t.Errorf("a second report with the case = %v, want ErrConflict", err)
		}
	})

	t.Run("an early case update is kept at its highest status until taken", func(t *testing.T) {
		keep := func(st2 app.FraudStatus) {
			t.Helper()
			err := st.Tx(ctx, func(tx app.Tx) error {
				return tx.KeepCaseUpdate(ctx, app.CaseUpdate{BankID: "sandbox", CaseID: "early-1", BankConsentID: "bc-1", Status: st2, Time: t0})
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		keep(app.FraudInReview)
		keep(app.FraudReceived) // never lower
		var got app.CaseUpdate
		var ok bool
		err := st.Tx(ctx, func(tx app.Tx) error {
			var err error
			got, ok, err = tx.TakeCaseUpdate(ctx, "sandbox", "early-1")
			return err
		})
		if err != nil || !ok || got.Status != app.FraudInReview || got.BankConsentID != "bc-1" || !got.Time.Equal(t0) {
			t.Errorf("TakeCaseUpdate = %+v, %v, %v; want IN_REVIEW", got, ok, err)
		}
		keep(app.FraudReceived)
		keep(app.FraudResolved)
		err = st.Tx(ctx, func(tx app.Tx) error {
			var err error
			got, ok, err = tx.TakeCaseUpdate(ctx, "sandbox", "early-1")
			return err
		})
		if err != nil || !ok || got.Status != app.FraudResolved {
			t.Errorf("raised = %+v, %v, %v; want RESOLVED", got, ok, err)
		}
		err = st.Tx(ctx, func(tx app.Tx) error {
			_, ok, err = tx.TakeCaseUpdate(ctx, "sandbox", "early-1")
			return err
		})
		if err != nil || ok {
			t.Errorf("taken twice = %v, %v", ok, err)
		}
	})

	t.Run("an alert reads back as stored, once per bank alert id", func(t *testing.T) {
		a := alert("fr-alert", "sandbox", "al-1", t0)
		if !insertAlert(t, st, a) {
			t.Fatal("the first insert stored nothing")
		}
		got, err := st.Alert(ctx, a.BankKey)
		if err != nil || !reflect.DeepEqual(got, a) {
			t.Errorf("Alert =\n%+v, %v\nwant\n%+v", got, err, a)
		}
		bare := alert("fr-alert", "sandbox", "al-2", t0)
		bare.TransactionID, bare.CardID, bare.Amount, bare.MerchantName = "", "", nil, ""
		insertAlert(t, st, bare)
		if got, err := st.Alert(ctx, bare.BankKey); err != nil || !reflect.DeepEqual(got, bare) {
			t.Errorf("an alert without transaction, card or amount = %+v, %v", got, err)
		}
		// The same bank alert again, even naming another user, stores
		// nothing and leaves the transaction usable.
		again := alert("fr-alert-other", "sandbox", "al-1", t0.Add(time.Hour))
		err = st.Tx(ctx, func(tx app.Tx) error {
			inserted, err := tx.InsertAlert(ctx, again)
			if err != nil || inserted {
				t.Errorf("InsertAlert again = %v, %v; want false", inserted, err)
			}
			return tx.AddEvent(ctx, app.Event{ID: "ev-after-dup", Type: app.TypeAlertRaised, User: "fr-alert", Resource: "users/fr-alert/alerts/probe",
				Time: t0, Payload: app.AlertChanged{Alert: a}})
		})
		if err != nil {
			t.Fatalf("the transaction after a duplicate: %v", err)
		}
		if _, err := st.Alert(ctx, again.BankKey); !errors.Is(err, app.ErrNotFound) {
			t.Errorf("the duplicate's user got the alert: %v", err)
		}
		if got := outboxTypes(t, db, "users/fr-alert/alerts/probe"); !slices.Equal(got, []string{app.TypeAlertRaised}) {
			t.Errorf("outbox after the duplicate = %v", got)
		}
		// Another bank may use the same id.
		if !insertAlert(t, st, alert("fr-alert", "otherbank", "al-1", t0)) {
			t.Error("another bank's alert with the same id was not stored")
		}
	})

	t.Run("an answer writes the alert's state, response and time", func(t *testing.T) {
		a := alert("fr-ack", "sandbox", "ack-1", t0)
		insertAlert(t, st, a)
		a.State, a.Response, a.AcknowledgeTime = app.AlertAcknowledged, app.ResponseNotRecognised, t0.Add(time.Minute)
		err := st.Tx(ctx, func(tx app.Tx) error {
			locked, err := tx.LockAlert(ctx, a.BankKey)
			if err != nil || locked.State != app.AlertNew {
				t.Errorf("LockAlert = %+v, %v", locked, err)
			}
			if _, err := tx.LockAlert(ctx, app.BankKey{User: "fr-other", BankID: "sandbox", ID: "ack-1"}); !errors.Is(err, app.ErrNotFound) {
				t.Errorf("another user's alert = %v, want ErrNotFound", err)
			}
			return tx.UpdateAlert(ctx, a)
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := st.Alert(ctx, a.BankKey); err != nil || !reflect.DeepEqual(got, a) {
			t.Errorf("Alert = %+v, %v; want %+v", got, err, a)
		}
	})

	t.Run("alerts list newest first, by state and bank, a page at a time", func(t *testing.T) {
		for i, b := range []struct {
			bank, id string
			state    app.AlertState
		}{{"sandbox", "a", app.AlertNew}, {"sandbox", "b", app.AlertAcknowledged}, {"otherbank", "c", app.AlertNew}, {"gone", "d", app.AlertNew}} {
			a := alert("fr-alist", b.bank, b.id, t0.Add(time.Duration(i)*time.Second))
			a.State = b.state
			if b.state == app.AlertAcknowledged {
				a.Response, a.AcknowledgeTime = app.ResponseRecognised, t0
			}
			insertAlert(t, st, a)
		}
		banks := []string{"sandbox", "otherbank"}
		tests := []struct {
			name  string
			state app.AlertState
			want  []string
		}{
			{"all", "", []string{"otherbank~c", "sandbox~b", "sandbox~a"}},
			{"new", app.AlertNew, []string{"otherbank~c", "sandbox~a"}},
			{"acknowledged", app.AlertAcknowledged, []string{"sandbox~b"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var got []string
				var after *pagetoken.Position
				for {
					page, err := st.ListAlerts(ctx, "fr-alist", app.AlertFilter{State: tt.state, Banks: banks}, after, 1)
					if err != nil {
						t.Fatal(err)
					}
					if len(page) == 0 {
						break
					}
					got = append(got, alertIDs(page)...)
					after = &pagetoken.Position{Time: page[0].CreateTime, ID: page[0].BankID + "~" + page[0].ID}
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("ListAlerts = %v, want %v", got, tt.want)
				}
			})
		}
	})

	t.Run("card keys are taken once per user, client and operation", func(t *testing.T) {
		k := app.CardKey{User: "fr-card", Client: "chat-app", Operation: "block_card", Key: "key-1", RequestHash: "h-1", CreateTime: t0}
		if err := st.Tx(ctx, func(tx app.Tx) error { return tx.RememberCardKey(ctx, k) }); err != nil {
			t.Fatal(err)
		}
		if got, err := st.RecallCardKey(ctx, "fr-card", "chat-app", "block_card", "key-1"); err != nil || got != k {
			t.Errorf("RecallCardKey = %+v, %v; want %+v", got, err, k)
		}
		if _, err := st.RecallCardKey(ctx, "fr-card", "chat-app", "start_unblock", "key-1"); !errors.Is(err, app.ErrNotFound) {
			t.Errorf("another operation's key = %v, want ErrNotFound", err)
		}
		k.RequestHash = "h-2"
		if err := st.Tx(ctx, func(tx app.Tx) error { return tx.RememberCardKey(ctx, k) }); !errors.Is(err, app.ErrConflict) {
			t.Errorf("the key again = %v, want ErrConflict", err)
		}
		k.Operation = "start_unblock"
		if err := st.Tx(ctx, func(tx app.Tx) error { return tx.RememberCardKey(ctx, k) }); err != nil {
			t.Errorf("the key for another operation = %v", err)
		}
	})

	t.Run("a card's unblock challenge is saved, replaced and deleted", func(t *testing.T) {
		u := app.CardUnblock{BankKey: app.BankKey{User: "fr-unblock", BankID: "sandbox", ID: "card-1"}, ChallengeID: "ch-1", Method: "OTP",
			Text: "Enter the code", ExpireTime: t0.Add(5 * time.Minute), AttemptsAllowed: 3, CreateTime: t0}
		save := func(u app.CardUnblock) {
			t.Helper()
			if err := st.Tx(ctx, func(tx app.Tx) error { return tx.SaveCardUnblock(ctx, u) }); err != nil {
				t.Fatal(err)
			}
		}
		save(u)
		if got, err := st.CardUnblock(ctx, u.BankKey); err != nil || got != u {
			t.Errorf("CardUnblock = %+v, %v; want %+v", got, err, u)
		}
		u.ChallengeID, u.AttemptsAllowed = "ch-2", 0
		save(u)
		other := u
		other.ID, other.ChallengeID = "card-2", "ch-9"
		save(other)
		elsewhere := u
		elsewhere.BankID = "otherbank"
		save(elsewhere)
		got, err := st.CardUnblocks(ctx, "fr-unblock", "sandbox")
		if err != nil || !slices.Equal(got, []app.CardUnblock{u, other}) {
			t.Errorf("CardUnblocks = %+v, %v; want the replaced one and card-2's", got, err)
		}
		if err := st.Tx(ctx, func(tx app.Tx) error { return tx.DeleteCardUnblock(ctx, u.BankKey) }); err != nil {
			t.Fatal(err)
		}
		if _, err := st.CardUnblock(ctx, u.BankKey); !errors.Is(err, app.ErrNotFound) {
			t.Errorf("a deleted challenge = %v, want ErrNotFound", err)
		}
	})

	t.Run("a revoked link's reports, alerts and challenges go; other links' stay", func(t *testing.T) {
		mine := report("fr-revoke", "sandbox", "r1", t0)
		fileReport(t, st, mine, "k-1")
		kept := report("fr-revoke", "otherbank", "r2", t0)
		fileReport(t, st, kept, "k-2")
		insertAlert(t, st, alert("fr-revoke", "sandbox", "rv-1", t0))
		insertAlert(t, st, alert("fr-revoke", "otherbank", "rv-2", t0))
		u := app.CardUnblock{BankKey: app.BankKey{User: "fr-revoke", BankID: "sandbox", ID: "card-1"}, ChallengeID: "ch", Method: "OTP", ExpireTime: t0, CreateTime: t0}
		if err := st.Tx(ctx, func(tx app.Tx) error { return tx.SaveCardUnblock(ctx, u) }); err != nil {
			t.Fatal(err)
		}
		if err := st.Tx(ctx, func(tx app.Tx) error { return tx.DeleteLinkFraud(ctx, "fr-revoke", "sandbox", mine.Link) }); err != nil {
			t.Fatal(err)
		}
		if _, err := st.FraudReport(ctx, mine.BankKey); !errors.Is(err, app.ErrNotFound) {
			t.Errorf("the link's report = %v, want ErrNotFound", err)
		}
		if _, err := st.RecallFraudReport(ctx, "fr-revoke", "chat-app", "k-1"); !errors.Is(err, app.ErrNotFound) {
			t.Errorf("the link's report's key = %v, want ErrNotFound", err)
		}
		if _, err := st.Alert(ctx, app.BankKey{User: "fr-revoke", BankID: "sandbox", ID: "rv-1"}); !errors.Is(err, app.ErrNotFound) {
			t.Errorf("the link's alert = %v, want ErrNotFound", err)
		}
		if _, err := st.CardUnblock(ctx, u.BankKey); !errors.Is(err, app.ErrNotFound) {
			t.Errorf("the bank's challenge = %v, want ErrNotFound", err)
		}
		if _, err := st.FraudReport(ctx, kept.BankKey); err != nil {
			t.Errorf("another link's report: %v", err)
		}
		if _, err := st.Alert(ctx, app.BankKey{User: "fr-revoke", BankID: "otherbank", ID: "rv-2"}); err != nil {
			t.Errorf("another link's alert: %v", err)
		}
	})

	t.Run("the sweep deletes old keys and old updates of unknown cases", func(t *testing.T) {
		old := report("fr-sweep", "sandbox", "r1", t0.Add(-48*time.Hour))
		fileReport(t, st, old, "k-old")
		fileReport(t, st, report("fr-sweep", "sandbox", "r2", t0), "k-new")
		err := st.Tx(ctx, func(tx app.Tx) error {
			if err := tx.RememberCardKey(ctx, app.CardKey{User: "fr-sweep", Client: "chat-app", Operation: "block_card", Key: "k-old", RequestHash: "h", CreateTime: t0.Add(-48 * time.Hour)}); err != nil {
				return err
			}
			return tx.KeepCaseUpdate(ctx, app.CaseUpdate{BankID: "sandbox", CaseID: "stale", BankConsentID: "bc", Status: app.FraudReceived, Time: t0.Add(-48 * time.Hour)})
		})
		if err != nil {
			t.Fatal(err)
		}
		n, err := st.DeleteExpiredFraud(ctx, t0.Add(-24*time.Hour), t0.Add(-24*time.Hour))
		if err != nil || n < 3 {
			t.Errorf("DeleteExpiredFraud = %d, %v; want at least the 3 old rows", n, err)
		}
		if _, err := st.RecallFraudReport(ctx, "fr-sweep", "chat-app", "k-old"); !errors.Is(err, app.ErrNotFound) {
			t.Errorf("an old key = %v, want ErrNotFound", err)
		}
		if _, err := st.RecallFraudReport(ctx, "fr-sweep", "chat-app", "k-new"); err != nil {
			t.Errorf("a new key: %v", err)
		}
		if _, err := st.FraudReport(ctx, old.BankKey); err != nil {
			t.Errorf("the report outlives its key: %v", err)
		}
		if _, err := st.RecallCardKey(ctx, "fr-sweep", "chat-app", "block_card", "k-old"); !errors.Is(err, app.ErrNotFound) {
			t.Errorf("an old card key = %v, want ErrNotFound", err)
		}
	})
}
