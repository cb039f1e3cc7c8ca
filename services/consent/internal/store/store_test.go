package store_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/consent/internal/store"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"

	"golang.org/x/sync/errgroup"
)

// t0 is the suite's clock: microsecond precision, like the columns.
var t0 = time.Date(2031, 3, 4, 5, 6, 7, 891234000, time.UTC)

// open migrates db, the platform's outbox with it, and starts the store's
// change feed for the test.
func open(t *testing.T, db *storage.DB) *store.Store {
	t.Helper()
	if err := events.Migrate(t.Context(), db); err != nil {
		t.Fatal(err)
	}
	st, err := store.New(t.Context(), db, events.NewOutbox(db), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = st.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return st
}

func newLink(user, id, bank string, state app.State, created time.Time) app.Link {
	return app.Link{
		User: user, ID: id, BankID: bank, BankDisplayName: "Bank " + bank, State: state,
		Scopes:        []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS, commonv1.Scope_SCOPE_BALANCES},
		Purposes:      []commonv1.Purpose{commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION},
		ExpireTime:    created.Add(90 * 24 * time.Hour),
		CreateTime:    created,
		UpdateTime:    created,
		BankConsentID: "cns-" + id,
		SCA: app.SCA{
			Method: app.ScaMethodOTP, Status: app.ScaStatusStarted, AttemptsRemaining: 5,
			ExpireTime: created.Add(5 * time.Minute), Instruction: "Enter the code",
		},
	}
}

func insert(t *testing.T, st *store.Store, links ...app.Link) {
	t.Helper()
	err := st.Tx(t.Context(), func(tx app.Tx) error {
		for _, l := range links {
			if err := tx.InsertLink(t.Context(), l); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// service runs app logic on the store, for what the contract is about: the
// chain as the verifier sees it, the sweep as the outbox records it.
func service(t *testing.T, st *store.Store, now time.Time) *app.Service {
	t.Helper()
	svc, err := app.New(st, nil, app.Config{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func TestStore(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		st := open(t, db)
		t.Run("link round-trips every field", func(t *testing.T) { testLinkRoundTrip(t, st) })
		t.Run("at most one VALID link per user and bank", func(t *testing.T) { testOneValid(t, st) })
		t.Run("ListLinks pages and filters as links read now", func(t *testing.T) { testListLinks(t, st) })
		t.Run("idempotency keys are taken once", func(t *testing.T) { testIdempotency(t, st) })
		t.Run("user references are stable and distinct", func(t *testing.T) { testUserReference(t, st) })
		t.Run("SaveLink needs a locked link", func(t *testing.T) { testSaveUnlocked(t, st) })
		t.Run("state changes reach subscribers after commit", func(t *testing.T) { testChanges(t, st) })
		t.Run("sweep ends links and warns once", func(t *testing.T) { testSweep(t, st, db) })
		t.Run("events are written with their transaction, or not at all", func(t *testing.T) { testEvents(t, st, db) })
		t.Run("the old outbox table is gone", func(t *testing.T) { testOldOutboxGone(t, db) })
		t.Run("concurrent appends make one gapless chain", func(t *testing.T) { testConcurrentAppends(t, st) })
		t.Run("one transaction appends to many chains", func(t *testing.T) { testBatchAppend(t, st) })
		t.Run("a batch that would break a chain writes nothing", func(t *testing.T) { testBatchRefused(t, st) })
		t.Run("concurrent batches across users keep every chain", func(t *testing.T) { testConcurrentBatches(t, st) })
		t.Run("access log pages and filters", func(t *testing.T) { testAccessLogList(t, st) })
		t.Run("tampering is detected", func(t *testing.T) { testTamper(t, st, db) })
		t.Run("a bank's consent id resolves to its VALID link", func(t *testing.T) { testResolveBankConsent(t, st) })
		t.Run("partner opt-in round-trips and resolves for its partner only", func(t *testing.T) { testOptInRoundTrip(t, st) })
		t.Run("one ACTIVE opt-in per user and partner, partner user ids unique", func(t *testing.T) { testOptInUnique(t, st) })
		t.Run("ListPartnerOptIns pages newest first", func(t *testing.T) { testListOptIns(t, st) })
		t.Run("partner opt-in changes reach subscribers after commit", func(t *testing.T) { testOptInChanges(t, st) })
		t.Run("partner opt-in events are written with their transaction", func(t *testing.T) { testOptInEvents(t, st, db) })
		t.Run("SavePartnerOptIn needs a locked opt-in", func(t *testing.T) { testSaveOptInUnlocked(t, st) })
		t.Run("concurrent opt-ins to one partner make one", func(t *testing.T) { testConcurrentOptIns(t, st) })
	})
}

func testLinkRoundTrip(t *testing.T, st *store.Store) {
	l := newLink("rt", "l1", "sandbox", app.StateValid, t0)
	l.Scopes = []commonv1.Scope{commonv1.Scope_SCOPE_TRANSACTIONS, commonv1.Scope_SCOPE_RECEIPTS}
	l.Purposes = []commonv1.Purpose{commonv1.Purpose_PURPOSE_PURCHASE_HISTORY, commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION}
	l.VerifyTime = t0.Add(time.Minute)
	l.SCA = app.SCA{Method: app.ScaMethodRedirect, Status: app.ScaStatusFinalised, FailedAttempts: 2,
		ExpireTime: t0.Add(time.Hour), RedirectURI: "https://bank.example/sca", Instruction: "Open the page"}
	l.ExpiryWarnTime = t0.Add(2 * time.Minute)
	l.RevokedByBank = true
	l.Client = "chat-app"
	insert(t, st, l)
	got, err := st.Link(t.Context(), "rt", "l1")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", l) {
		t.Errorf("read back\n%+v\nwant\n%+v", got, l)
	}
	if _, err := st.Link(t.Context(), "rt", "nope"); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("unknown link: %v, want ErrNotFound", err)
	}
	if _, err := st.Link(t.Context(), "someone-else", "l1"); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("another user's link: %v, want ErrNotFound", err)
	}
}

func testOneValid(t *testing.T, st *store.Store) {
	insert(t, st, newLink("ov", "a", "sandbox", app.StateValid, t0), newLink("ov", "b", "other", app.StateValid, t0))
	err := st.Tx(t.Context(), func(tx app.Tx) error {
		return tx.InsertLink(t.Context(), newLink("ov", "c", "sandbox", app.StateValid, t0))
	})
	if err == nil {
		t.Fatal("a second VALID link to the same bank was stored")
	}
	// Revoking the first makes room, in one transaction.
	err = st.Tx(t.Context(), func(tx app.Tx) error {
		valid, err := tx.LockValidLinks(t.Context(), "ov", "sandbox")
		if err != nil {
			return err
		}
		if len(valid) != 1 || valid[0].ID != "a" {
			return fmt.Errorf("LockValidLinks = %v, want link a", valid)
		}
		valid[0].State = app.StateRevoked
		if err := tx.SaveLink(t.Context(), valid[0]); err != nil {
			return err
		}
		return tx.InsertLink(t.Context(), newLink("ov", "c", "sandbox", app.StateValid, t0))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testListLinks(t *testing.T, st *store.Store) {
	const user = "ll"
	now := t0.Add(time.Hour)
	var links []app.Link
	for i := range 7 {
		l := newLink(user, fmt.Sprintf("l%d", i), "sandbox", app.StateRevoked, t0.Add(time.Duration(i)*time.Second))
		links = append(links, l)
	}
	// Two links share a create time: the id breaks the tie.
	links[6].CreateTime = links[5].CreateTime
	links[0].State = app.StateValid                 // valid
	links[1].State = app.StateValid                 // expired by now
	links[1].BankID = "other"                       // ... at another bank
	links[1].ExpireTime = now.Add(-time.Second)     //
	links[2].State = app.StateReceived              // challenge still running
	links[2].SCA.ExpireTime = now.Add(time.Minute)  //
	links[3].State = app.StateReceived              // challenge timed out: rejected
	links[3].SCA.ExpireTime = now.Add(-time.Minute) //
	insert(t, st, links...)

	ids := func(ls []app.Link) []string {
		var out []string
		for _, l := range ls {
			out = append(out, l.ID)
		}
		return out
	}
	tests := []struct {
		name   string
		filter app.LinkFilter
		want   []string
	}{
		{"all, newest first", app.LinkFilter{Now: now}, []string{"l6", "l5", "l4", "l3", "l2", "l1", "l0"}},
		{"valid", app.LinkFilter{State: app.StateValid, Now: now}, []string{"l0"}},
		{"expired includes VALID past its end", app.LinkFilter{State: app.StateExpired, Now: now}, []string{"l1"}},
		{"received", app.LinkFilter{State: app.StateReceived, Now: now}, []string{"l2"}},
		{"rejected includes timed-out challenges", app.LinkFilter{State: app.StateRejected, Now: now}, []string{"l3"}},
		{"revoked", app.LinkFilter{State: app.StateRevoked, Now: now}, []string{"l6", "l5", "l4"}},
		{"by bank", app.LinkFilter{BankID: "other", Now: now}, []string{"l1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := st.ListLinks(t.Context(), user, tt.filter, nil, 100)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), tt.want) {
				t.Errorf("got %v, want %v", ids(got), tt.want)
			}
		})
	}
	t.Run("pages of 3", func(t *testing.T) {
		var all []string
		var after *app.LinkCursor
		for range 5 {
			page, err := st.ListLinks(t.Context(), user, app.LinkFilter{Now: now}, after, 3)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, ids(page)...)
			if len(page) < 3 {
				break
			}
			last := page[len(page)-1]
			after = &app.LinkCursor{CreateTime: last.CreateTime, ID: last.ID}
		}
		if want := []string{"l6", "l5", "l4", "l3", "l2", "l1", "l0"}; !slices.Equal(all, want) {
			t.Errorf("pages gave %v, want %v", all, want)
		}
	})
}

func testIdempotency(t *testing.T, st *store.Store) {
	rec := app.Idempotency{User: "ik", Operation: "VerifyLink", Key: "key-12345", RequestHash: "h1", LinkID: "l1",
		ErrReason: "SCA_FAILED", AttemptsRemaining: 3, CreateTime: t0}
	put := func() error {
		return st.Tx(t.Context(), func(tx app.Tx) error { return tx.InsertIdempotency(t.Context(), rec) })
	}
	if err := put(); err != nil {
		t.Fatal(err)
	}
	if err := put(); !errors.Is(err, app.ErrIdempotencyKeyTaken) {
		t.Fatalf("second insert: %v, want ErrIdempotencyKeyTaken", err)
	}
	got, err := st.Idempotency(t.Context(), "ik", "VerifyLink", "key-12345")
	if err != nil || got != rec {
		t.Fatalf("Idempotency = %+v, %v; want %+v", got, err, rec)
	}
	// Keys are per user and per operation.
	if _, err := st.Idempotency(t.Context(), "ik", "RevokeLink", "key-12345"); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("other operation: %v, want ErrNotFound", err)
	}
	if n, err := st.DeleteIdempotency(t.Context(), t0.Add(time.Second)); err != nil || n != 1 {
		t.Errorf("DeleteIdempotency = %d, %v; want 1", n, err)
	}
}

func testUserReference(t *testing.T, st *store.Store) {
	calls := 0
	mk := func() string { calls++; return fmt.Sprintf("ref-%d", calls) }
	a1, err := st.UserReference(t.Context(), "ur", "sandbox", mk)
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := st.UserReference(t.Context(), "ur", "sandbox", mk)
	b, _ := st.UserReference(t.Context(), "ur", "other", mk)
	if a1 != a2 || a1 == b {
		t.Errorf("references %q, %q, %q: want the first two equal and the third different", a1, a2, b)
	}
}

func testSaveUnlocked(t *testing.T, st *store.Store) {
	l := newLink("su", "l1", "sandbox", app.StateReceived, t0)
	insert(t, st, l)
	err := st.Tx(t.Context(), func(tx app.Tx) error { return tx.SaveLink(t.Context(), l) })
	if err == nil {
		t.Fatal("SaveLink of a link not locked in the transaction succeeded")
	}
}

// subscribe subscribes to st's change feed until ctx ends, once the feed
// is live: on PostgreSQL it goes live once LISTEN is up.
func subscribe(ctx context.Context, t *testing.T, st *store.Store) <-chan app.Change {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		changes := st.Subscribe(ctx)
		select {
		case _, ok := <-changes:
			if !ok && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			if !ok {
				t.Fatal("the change feed never went live")
			}
		default:
		}
		return changes
	}
}

func testChanges(t *testing.T, st *store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	changes := subscribe(ctx, t, st)
	insert(t, st, newLink("ch", "l1", "sandbox", app.StateReceived, t0))
	boom := errors.New("boom")
	for _, commit := range []bool{false, true} {
		err := st.Tx(t.Context(), func(tx app.Tx) error {
			l, err := tx.LockLink(t.Context(), "ch", "l1")
			if err != nil {
				return err
			}
			l.State = app.StateValid
			if err := tx.SaveLink(t.Context(), l); err != nil {
				return err
			}
			if !commit {
				return boom
			}
			return nil
		})
		if commit != (err == nil) {
			t.Fatalf("Tx (commit %v) = %v", commit, err)
		}
	}
	select {
	case c := <-changes:
		if want := (app.Change{User: "ch", LinkID: "l1", State: app.StateValid}); c != want {
			t.Errorf("change = %+v, want %+v", c, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no change arrived")
	}
	select {
	case c := <-changes:
		t.Errorf("unexpected second change %+v (the rolled-back one?)", c)
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	if _, ok := <-changes; ok {
		t.Error("the channel stayed open after its context ended")
	}
}

func testSweep(t *testing.T, st *store.Store, db *storage.DB) {
	now := t0.Add(100 * 24 * time.Hour)
	warnSoon := newLink("sw", "soon", "sandbox", app.StateValid, now.Add(-80*24*time.Hour))
	warnSoon.ExpireTime = now.Add(3 * 24 * time.Hour)
	later := newLink("sw", "later", "b2", app.StateValid, now.Add(-10*24*time.Hour))
	later.ExpireTime = now.Add(30 * 24 * time.Hour)
	over := newLink("sw", "over", "b3", app.StateValid, now.Add(-91*24*time.Hour))
	over.ExpireTime = now.Add(-time.Hour)
	stuck := newLink("sw", "stuck", "b4", app.StateReceived, now.Add(-time.Hour))
	stuck.SCA.ExpireTime = now.Add(-50 * time.Minute)
	insert(t, st, warnSoon, later, over, stuck)

	// The database holds the other tests' links too, all long over by now:
	// the first sweep ends at least these two, the second nothing.
	svc := service(t, st, now)
	first, err := svc.Sweep(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if first.Ended < 2 || first.Warned != 1 {
		t.Errorf("first sweep = %+v, want at least 2 ended and 1 warned", first)
	}
	second, err := svc.Sweep(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if second.Ended != 0 || second.Warned != 0 {
		t.Errorf("second sweep = %+v, want nothing more to do", second)
	}
	for id, want := range map[string]app.State{"soon": app.StateValid, "later": app.StateValid, "over": app.StateExpired, "stuck": app.StateRejected} {
		l, err := st.Link(t.Context(), "sw", id)
		if err != nil {
			t.Fatal(err)
		}
		if l.State != want {
			t.Errorf("link %s is %s, want %s", id, l.State, want)
		}
		if id == "stuck" && l.SCA.Status != app.ScaStatusExpired {
			t.Errorf("stuck link's challenge is %s, want EXPIRED", l.SCA.Status)
		}
		if id == "over" && (l.SCA.Status != app.ScaStatusExpired || l.SCA.AttemptsRemaining != 0) {
			t.Errorf("the expired link's running reconfirmation challenge is %s (%d left), want EXPIRED", l.SCA.Status, l.SCA.AttemptsRemaining)
		}
	}
	var n int
	var resource, payload string
	if err := db.QueryRowContext(t.Context(), `SELECT COUNT(*), MAX(resource), MAX(data) FROM events_outbox
		WHERE event_type = 'consent.link.expiring' AND user_id = 'sw'`).Scan(&n, &resource, &payload); err != nil {
		t.Fatal(err)
	}
	if n != 1 || resource != "users/sw/links/soon" || !strings.Contains(payload, `"link":"users/sw/links/soon"`) {
		t.Errorf("outbox holds %d warnings (%s: %s), want one for users/sw/links/soon", n, resource, payload)
	}
}

// testEvents: an event added in a transaction is in the outbox once the
// transaction commits, with the fields the relay publishes, and not at
// all when the transaction fails.
func testEvents(t *testing.T, st *store.Store, db *storage.DB) {
	l := newLink("ev", "l1", "sandbox", app.StateRevoked, t0)
	l.Client = "chat-app"
	insert(t, st, l)
	count := func(id string) int {
		var n int
		if err := db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM events_outbox WHERE event_id = $1`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	rev := app.Revocation{EventID: "ev-committed", User: "ev", LinkID: "l1", Client: "chat-app", BankID: "sandbox", RevokeTime: t0, EventTime: t0.Add(time.Second)}
	if err := st.Tx(t.Context(), func(tx app.Tx) error { return tx.AddRevocation(t.Context(), rev) }); err != nil {
		t.Fatal(err)
	}
	var typ, source, client, resource, data string
	var eventTime int64
	err := db.QueryRowContext(t.Context(), `SELECT event_type, source, client_id, resource, event_time, data FROM events_outbox WHERE event_id = 'ev-committed'`).
		Scan(&typ, &source, &client, &resource, &eventTime, &data)
	if err != nil {
		t.Fatal(err)
	}
	if typ != app.EventLinkRevoked || source != "consent" || client != "chat-app" || resource != "users/ev/links/l1" ||
		!storage.FromMicros(eventTime).Equal(rev.EventTime) || !strings.Contains(data, `"eventId":"ev-committed"`) {
		t.Errorf("outbox row %s %s %s %s %d %s", typ, source, client, resource, eventTime, data)
	}

	w := app.ExpiryWarning{EventID: "ev-rolled-back", User: "ev", LinkID: "l1", BankID: "sandbox", ExpireTime: t0, EventTime: t0}
	boom := errors.New("boom")
	err = st.Tx(t.Context(), func(tx app.Tx) error {
		if err := tx.AddExpiryWarning(t.Context(), w); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Tx = %v, want boom", err)
	}
	if n := count("ev-rolled-back"); n != 0 {
		t.Errorf("the event of a failed transaction is in the outbox %d times", n)
	}
}

// testOldOutboxGone: migration 00003 dropped the consent service's own
// outbox table, whose rows were never sent.
func testOldOutboxGone(t *testing.T, db *storage.DB) {
	if _, err := db.ExecContext(t.Context(), `SELECT COUNT(*) FROM outbox`); err == nil {
		t.Error("table outbox still exists")
	}
}

func entry(user string, i int) app.AccessEntry {
	outcome, reason := app.OutcomeAllowed, ""
	if i%3 == 0 {
		outcome, reason = app.OutcomeDenied, "CONSENT_REVOKED"
	}
	subject := ""
	if i%2 == 0 {
		subject = fmt.Sprintf("%032x", i) // entries from before subjects were recorded have none
	}
	return app.AccessEntry{
		User: user, AccessTime: t0.Add(time.Duration(i) * time.Second), ClientID: "chat-app", SubjectID: subject,
		Method: "/bankbridge.balance.v1.BalanceService/GetBalance", Resource: "users/" + user + "/accounts/a1/balance",
		Purpose: commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION, Scope: commonv1.Scope_SCOPE_BALANCES,
		Outcome: outcome, Reason: reason, TraceID: fmt.Sprintf("%032x", i),
	}
}

func testConcurrentAppends(t *testing.T, st *store.Store) {
	const user, writers, each = "ca", 6, 10
	svc := service(t, st, t0)
	var g errgroup.Group
	appends := func(user string, from int) func() error {
		return func() error {
			for i := range each {
				if _, err := svc.RecordAccess(t.Context(), entry(user, from+i)); err != nil {
					return err
				}
			}
			return nil
		}
	}
	for w := range writers {
		g.Go(appends(user, w*each))
	}
	// Another user's appends run alongside, on their own chain.
	g.Go(appends("ca-other", 0))
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	chain, err := st.AccessChain(t.Context(), user, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) != writers*each {
		t.Fatalf("%d entries, want %d", len(chain), writers*each)
	}
	for i, e := range chain {
		if e.Sequence != int64(i+1) {
			t.Fatalf("entry %d has sequence %d", i, e.Sequence)
		}
	}
	if chain[0].PreviousHash != app.GenesisHash {
		t.Errorf("first previous_hash = %s, want 64 zeros", chain[0].PreviousHash)
	}
	if err := svc.VerifyChain(t.Context(), user); err != nil {
		t.Error(err)
	}
	if err := svc.VerifyAllChains(t.Context()); err != nil {
		t.Error(err)
	}
}

// chained builds what the service would append: entries after heads.
func chained(heads map[string]app.ChainHead, entries ...app.AccessEntry) []app.AccessEntry {
	var out []app.AccessEntry
	for _, e := range entries {
		h := heads[e.User]
		e.Sequence, e.PreviousHash = h.Sequence+1, h.Hash
		if h.Sequence == 0 {
			e.PreviousHash = app.GenesisHash
		}
		e.Hash = app.ChainHash(e)
		heads[e.User] = app.ChainHead{Sequence: e.Sequence, Hash: e.Hash}
		out = append(out, e)
	}
	return out
}

func testBatchAppend(t *testing.T, st *store.Store) {
	svc := service(t, st, t0)
	if _, err := svc.RecordAccess(t.Context(), entry("ba-old", 0)); err != nil {
		t.Fatal(err)
	}
	users := []string{"ba-new", "ba-old", "ba-quiet"}
	var seen map[string]app.ChainHead
	err := st.AppendAccess(t.Context(), users, func(heads map[string]app.ChainHead) ([]app.AccessEntry, map[string]app.HeadSignature, error) {
		seen = maps.Clone(heads)
		// Interleaved users; ba-quiet is locked but gets nothing.
		return chained(heads, entry("ba-new", 2), entry("ba-old", 1), entry("ba-new", 3), entry("ba-old", 5), entry("ba-new", 4)), nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen["ba-new"].Sequence != 0 || seen["ba-old"].Sequence != 1 || len(seen) != 3 {
		t.Errorf("build saw heads %+v, want ba-new at 0, ba-old at 1, and ba-quiet", seen)
	}
	for user, want := range map[string]int64{"ba-new": 3, "ba-old": 3, "ba-quiet": 0} {
		head, err := st.AccessHead(t.Context(), user)
		if err != nil {
			t.Fatal(err)
		}
		if head.Sequence != want {
			t.Errorf("%s's head at %d, want %d", user, head.Sequence, want)
		}
		if err := svc.VerifyChain(t.Context(), user); err != nil {
			t.Error(err)
		}
	}
	chain, err := st.AccessChain(t.Context(), "ba-new", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var traces []string
	for _, e := range chain {
		traces = append(traces, e.TraceID)
	}
	want := []string{entry("", 2).TraceID, entry("", 3).TraceID, entry("", 4).TraceID}
	if !slices.Equal(traces, want) || chain[0].SubjectID != entry("", 2).SubjectID || chain[1].SubjectID != "" {
		t.Errorf("ba-new's chain is %+v, want entries 2, 3, 4 in order, with their subjects", chain)
	}
}

func testBatchRefused(t *testing.T, st *store.Store) {
	svc := service(t, st, t0)
	tests := []struct {
		name  string
		build func(heads map[string]app.ChainHead) []app.AccessEntry
	}{
		{"a gap", func(heads map[string]app.ChainHead) []app.AccessEntry {
			es := chained(heads, entry("br", 1), entry("br-other", 2))
			es[1].Sequence++
			return es
		}},
		{"a fork", func(heads map[string]app.ChainHead) []app.AccessEntry {
			es := chained(heads, entry("br-other", 1), entry("br", 2))
			es[1].PreviousHash = strings.Repeat("1", 64)
			return es
		}},
		{"a user not locked", func(heads map[string]app.ChainHead) []app.AccessEntry {
			return chained(heads, entry("br", 1), entry("br-stranger", 2))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := st.AppendAccess(t.Context(), []string{"br", "br-other"}, func(heads map[string]app.ChainHead) ([]app.AccessEntry, map[string]app.HeadSignature, error) {
				return tt.build(heads), nil, nil
			})
			if err == nil {
				t.Fatal("the batch was written")
			}
			for _, user := range []string{"br", "br-other", "br-stranger"} {
				if head, err := st.AccessHead(t.Context(), user); err != nil || head.Sequence != 0 {
					t.Errorf("%s's head at %d (%v): the refused batch wrote something", user, head.Sequence, err)
				}
				if err := svc.VerifyChain(t.Context(), user); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// testConcurrentBatches runs services side by side on one store, as
// replicas would share a database, each with its own group commit.
func testConcurrentBatches(t *testing.T, st *store.Store) {
	const replicas, writers, each, users = 3, 4, 15, 7
	var wg sync.WaitGroup
	errs := make(chan error, replicas*writers*each)
	for r := range replicas {
		svc, err := app.New(st, nil, app.Config{Now: func() time.Time { return t0 }, AccessBatchSize: 8, AccessBatchWait: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer svc.Close()
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					n := (r*writers+w)*each + i
					_, err := svc.RecordAccess(t.Context(), entry(fmt.Sprintf("cb%d", n%users), n))
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	svc := service(t, st, t0)
	var total int64
	for u := range users {
		user := fmt.Sprintf("cb%d", u)
		if err := svc.VerifyChain(t.Context(), user); err != nil {
			t.Error(err)
		}
		head, err := st.AccessHead(t.Context(), user)
		if err != nil {
			t.Fatal(err)
		}
		total += head.Sequence
	}
	if total != replicas*writers*each {
		t.Errorf("chains hold %d entries, want %d", total, replicas*writers*each)
	}
}

func testAccessLogList(t *testing.T, st *store.Store) {
	const user = "al"
	svc := service(t, st, t0)
	for i := range 9 {
		if _, err := svc.RecordAccess(t.Context(), entry(user, i)); err != nil {
			t.Fatal(err)
		}
	}
	seqs := func(es []app.AccessEntry) []int64 {
		var out []int64
		for _, e := range es {
			out = append(out, e.Sequence)
		}
		return out
	}
	tests := []struct {
		name   string
		filter app.AccessFilter
		before int64
		want   []int64
	}{
		{"newest first", app.AccessFilter{}, 0, []int64{9, 8, 7, 6, 5, 4, 3, 2, 1}},
		{"before a sequence", app.AccessFilter{}, 4, []int64{3, 2, 1}},
		{"denied only", app.AccessFilter{Outcome: app.OutcomeDenied}, 0, []int64{7, 4, 1}},
		{"time range, end exclusive", app.AccessFilter{Start: t0.Add(2 * time.Second), End: t0.Add(5 * time.Second)}, 0, []int64{5, 4, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := st.AccessLog(t.Context(), user, tt.filter, tt.before, 100)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(seqs(got), tt.want) {
				t.Errorf("got %v, want %v", seqs(got), tt.want)
			}
		})
	}
}

func testTamper(t *testing.T, st *store.Store, db *storage.DB) {
	tests := []struct {
		name    string
		tamper  string // SQL run against the user's chain; $1 is the user
		wantSeq int64
	}{
		{"edit a field", `UPDATE access_log SET client_id = 'someone-else' WHERE user_id = $1 AND sequence = 3`, 3},
		{"turn a denial into an allowed access", `UPDATE access_log SET outcome = 'ACCESS_OUTCOME_ALLOWED', reason = '' WHERE user_id = $1 AND sequence = 4`, 4},
		{"edit the time", `UPDATE access_log SET access_time = access_time + 1 WHERE user_id = $1 AND sequence = 2`, 2},
		{"edit a hash", `UPDATE access_log SET hash = previous_hash WHERE user_id = $1 AND sequence = 4`, 4},
		{"blank the subject", `UPDATE access_log SET subject_id = '' WHERE user_id = $1 AND sequence = 5`, 5},
		{"name another subject", `UPDATE access_log SET subject_id = 'ffffffffffffffffffffffffffffffff' WHERE user_id = $1 AND sequence = 3`, 3},
		{"give a subject to an entry without one", `UPDATE access_log SET subject_id = 'ffffffffffffffffffffffffffffffff' WHERE user_id = $1 AND sequence = 2`, 2},
		{"delete a row", `DELETE FROM access_log WHERE user_id = $1 AND sequence = 2`, 2},
		{"delete the last row", `DELETE FROM access_log WHERE user_id = $1 AND sequence = 6`, 6},
		{"delete the last row and rewind the head", `DELETE FROM access_log WHERE user_id = $1 AND sequence = 6;
			UPDATE access_log_heads SET sequence = 5 WHERE user_id = $1`, 5},
		{"delete the head", `DELETE FROM access_log_heads WHERE user_id = $1`, 1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user := fmt.Sprintf("tamper%d", i)
			svc := service(t, st, t0)
			for j := range 6 {
				if _, err := svc.RecordAccess(t.Context(), entry(user, j)); err != nil {
					t.Fatal(err)
				}
			}
			if err := svc.VerifyChain(t.Context(), user); err != nil {
				t.Fatalf("before tampering: %v", err)
			}
			for stmt := range strings.SplitSeq(tt.tamper, ";") {
				if _, err := db.ExecContext(t.Context(), stmt, user); err != nil {
					t.Fatal(err)
				}
			}
			err := svc.VerifyChain(t.Context(), user)
			ce, ok := errors.AsType[*app.ChainError](err)
			if !ok {
				t.Fatalf("VerifyChain = %v, want a *ChainError", err)
			}
			if ce.Sequence != tt.wantSeq || ce.User != user {
				t.Errorf("ChainError %+v, want sequence %d of %s", ce, tt.wantSeq, user)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("sequence %d", tt.wantSeq)) {
				t.Errorf("error %q does not name sequence %d", err, tt.wantSeq)
			}
			all := svc.VerifyAllChains(t.Context())
			if !errors.Is(all, err) && (all == nil || !strings.Contains(all.Error(), err.Error())) {
				t.Errorf("VerifyAllChains = %v, want it to report %v", all, err)
			}
		})
	}
}

// TestMigrationKeepsOldRows migrates a database that holds rows written
// under the first schema: links read as revoked by their users (if at
// all), and entries recorded without a subject still verify.
func TestMigrationKeepsOldRows(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		first, err := fs.ReadFile(os.DirFS("migrations"), "00001_consent.sql")
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Migrate(t.Context(), fstest.MapFS{"00001_consent.sql": {Data: first}}, "consent_schema_migrations"); err != nil {
			t.Fatal(err)
		}
		l := newLink("old", "l1", "sandbox", app.StateRevoked, t0)
		_, err = db.ExecContext(t.Context(), `INSERT INTO links (user_id, link_id, bank_id, bank_display_name, state, scopes, purposes,
			expire_time, create_time, update_time, revoke_time, bank_consent_id, sca_method, sca_status, sca_attempts_remaining,
			sca_failed_attempts, sca_expire_time, sca_redirect_uri, sca_instruction)
			VALUES ($1, $2, $3, $4, 'REVOKED', 'SCOPE_ACCOUNTS', 'PURPOSE_ACCOUNT_INFORMATION', $5, $6, $6, $6, 'cns-l1', 'OTP', 'FINALISED', 0, 0, 0, '', '')`,
			l.User, l.ID, l.BankID, l.BankDisplayName, storage.Micros(l.ExpireTime), storage.Micros(t0))
		if err != nil {
			t.Fatal(err)
		}
		old := chained(map[string]app.ChainHead{}, entry("old", 1))[0]
		_, err = db.ExecContext(t.Context(), `INSERT INTO access_log (user_id, sequence, access_time, client_id, method, resource,
			purpose, scope, outcome, reason, trace_id, previous_hash, hash) VALUES ($1, 1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			"old", storage.Micros(old.AccessTime), old.ClientID, old.Method, old.Resource, old.Purpose.String(), old.Scope.String(),
			old.Outcome.String(), old.Reason, old.TraceID, old.PreviousHash, old.Hash)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(t.Context(), `INSERT INTO access_log_heads (user_id, sequence, hash) VALUES ('old', 1, $1)`, old.Hash); err != nil {
			t.Fatal(err)
		}

		st := open(t, db)
		got, err := st.Link(t.Context(), "old", "l1")
		if err != nil {
			t.Fatal(err)
		}
		if got.State != app.StateRevoked || got.RevokedByBank {
			t.Errorf("old link reads %s, by bank %v: want REVOKED by its user", got.State, got.RevokedByBank)
		}
		svc := service(t, st, t0)
		if _, err := svc.RecordAccess(t.Context(), entry("old", 2)); err != nil {
			t.Fatal(err)
		}
		if err := svc.VerifyChain(t.Context(), "old"); err != nil {
			t.Errorf("a chain begun before the migration: %v", err)
		}
	})
}

// BenchmarkAppendAccess measures the access log as the data services load
// it: 16 concurrent RecordAccess callers over 50 users, on SQLite (and on
// PostgreSQL when BANKBRIDGE_TEST_POSTGRES_URL is set). "one-per-tx"
// appends each entry in a transaction of its own, as before group commit;
// "group" is the default; "group-wait-1ms" lets each batch wait a
// millisecond for more. It reports appends/s.
func BenchmarkAppendAccess(b *testing.B) {
	const appenders, users = 16, 50
	dbs := []struct {
		name string
		open func(b *testing.B) *storage.DB
	}{{"sqlite", func(b *testing.B) *storage.DB { return storagetest.OpenSQLite(b) }}}
	if url := os.Getenv(storagetest.PostgresURLEnv); url != "" {
		dbs = append(dbs, struct {
			name string
			open func(b *testing.B) *storage.DB
		}{"postgres", func(b *testing.B) *storage.DB { return storagetest.OpenPostgres(b, url) }})
	}
	configs := []struct {
		name string
		cfg  app.Config
	}{
		{"one-per-tx", app.Config{AccessBatchSize: 1}},
		{"group", app.Config{}},
		{"group-wait-1ms", app.Config{AccessBatchWait: time.Millisecond}},
	}
	for _, d := range dbs {
		for _, c := range configs {
			b.Run(d.name+"/"+c.name, func(b *testing.B) {
				st, err := store.New(b.Context(), d.open(b), nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				svc, err := app.New(st, nil, c.cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer svc.Close()
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				start := time.Now()
				for range appenders {
					wg.Go(func() {
						for {
							i := int(next.Add(1))
							if i > b.N {
								return
							}
							if _, err := svc.RecordAccess(b.Context(), entry(fmt.Sprintf("bench%02d", i%users), i)); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "appends/s")
			})
		}
	}
}
