package transport_test

import (
	"context"
	"slices"
	"strconv"
	"sync"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/balance/internal/app"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/names"
)

// fakeConsent is the consent service as the kit and the app reach it,
// standing in for the real one, which needs its own process and storage:
// each (user, bank) pair it holds is a link covering every scope and
// purpose, VALID until the test lets it lapse. It decides as the real
// CheckConsent does (services/consent/internal/app/check.go): a VALID link
// allows; else the newest lapsed link's reason; else CONSENT_REQUIRED.
type fakeConsent struct {
	mu       sync.Mutex
	links    map[[2]string]*fakeLink
	made     int
	entries  []access.Entry
	reported []string
}

// fakeLink is one link; lapsed is the reason it no longer allows ("" while
// VALID), made its creation order.
type fakeLink struct {
	app.Consent
	made   int
	lapsed commonv1.ErrorReason
}

func newFakeConsent() *fakeConsent { return &fakeConsent{links: map[[2]string]*fakeLink{}} }

// link gives user a VALID link to bank, newer than any before.
func (f *fakeConsent) link(user, bank string) app.Consent {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.made++
	c := app.Consent{Link: names.Link{User: user, ID: "l-" + bank}.String(), BankConsentID: "bc-" + user + "-" + bank}
	f.links[[2]string{user, bank}] = &fakeLink{Consent: c, made: f.made}
	return c
}

// lapse ends user's link to bank with reason: CONSENT_REVOKED,
// CONSENT_EXPIRED or CONSENT_REVOKED_BY_BANK.
func (f *fakeConsent) lapse(user, bank string, reason commonv1.ErrorReason) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.links[[2]string{user, bank}].lapsed = reason
}

func (f *fakeConsent) revoke(user, bank string) {
	f.lapse(user, bank, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED)
}

// decide answers for one bank, or for any of the user's banks when bank is
// "".
func (f *fakeConsent) decide(user, bank string) (app.Consent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var valid, lapsed *fakeLink
	for k, l := range f.links {
		if k[0] != user || (bank != "" && k[1] != bank) {
			continue
		}
		switch {
		case l.lapsed == commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED:
			if valid == nil || l.made > valid.made {
				valid = l
			}
		case lapsed == nil || l.made > lapsed.made:
			lapsed = l
		}
	}
	switch {
	case valid != nil:
		return valid.Consent, nil
	case lapsed != nil:
		return app.Consent{}, apierr.New(lapsed.lapsed, "the consent lapsed")
	}
	return app.Consent{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, "no consent")
}

// Decide is the kit's consent check (access.ConsentChecker).
func (f *fakeConsent) Decide(_ context.Context, user string, need access.Need, _ commonv1.Purpose) (access.Decision, error) {
	c, err := f.decide(user, need.BankID)
	return access.Decision{Link: c.Link, BankConsentID: c.BankConsentID}, err
}

// ReportBankRevocation is part of access.ConsentChecker.
func (f *fakeConsent) ReportBankRevocation(_ context.Context, link string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reported = append(f.reported, link)
	return nil
}

func (f *fakeConsent) reportedLinks() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reported)
}

// Record is the access log (access.Recorder).
func (f *fakeConsent) Record(_ context.Context, e access.Entry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries = append(f.entries, e)
	return nil
}

// appConsents is fakeConsent as the app's port, as main adapts the
// platform's checker.
type appConsents struct{ f *fakeConsent }

func (a appConsents) ReportBankRevocation(ctx context.Context, link string) {
	_ = a.f.ReportBankRevocation(ctx, link)
}

func (a appConsents) Decide(_ context.Context, user, bankID string, _ commonv1.Scope, _ commonv1.Purpose) (app.Consent, error) {
	return a.f.decide(user, bankID)
}

// fakeBanks is app.Banks: banks whose data each test sets, that remember
// every call and can be taken down.
type fakeBanks struct {
	mu       sync.Mutex
	ids      []string
	accounts map[string][]app.BankAccount // by bank
	balances map[string][]app.Balance     // by bank account id
	txs      map[string][]app.Transaction // by bank account id
	removed  map[string][]string          // by bank account id, reported on the first sync page
	down     map[string]bool
	forgot   map[string]bool // banks that no longer know any consent
	failing  map[string]error
	calls    []bankCall
}

type bankCall struct {
	method string
	at     app.BankAccess
}

func newFakeBanks(ids ...string) *fakeBanks {
	return &fakeBanks{
		ids: ids, accounts: map[string][]app.BankAccount{}, balances: map[string][]app.Balance{},
		txs: map[string][]app.Transaction{}, removed: map[string][]string{}, down: map[string]bool{}, forgot: map[string]bool{}, failing: map[string]error{},
	}
}

func (b *fakeBanks) set(f func(b *fakeBanks)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(b)
}

func (b *fakeBanks) called() []bankCall {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.calls)
}

func (b *fakeBanks) IDs() []string { return slices.Clone(b.ids) }

func (b *fakeBanks) Has(id string) bool { return slices.Contains(b.ids, id) }

// HasBank is the kit's view (access.Banks).
func (b *fakeBanks) HasBank(id string) bool { return b.Has(id) }

// call records the call and fails it when the bank is down.
func (b *fakeBanks) call(method string, at app.BankAccess) error {
	b.calls = append(b.calls, bankCall{method: method, at: at})
	if b.down[at.BankID] {
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, "the bank is down")
	}
	if b.forgot[at.BankID] {
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK, "the bank no longer knows this consent")
	}
	return b.failing[at.BankID]
}

func (b *fakeBanks) ListAccounts(_ context.Context, at app.BankAccess) ([]app.BankAccount, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.call("ListAccounts", at); err != nil {
		return nil, err
	}
	return slices.Clone(b.accounts[at.BankID]), nil
}

func (b *fakeBanks) GetBalances(_ context.Context, at app.BankAccess, bankAccountID string) ([]app.Balance, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.call("GetBalances", at); err != nil {
		return nil, err
	}
	return slices.Clone(b.balances[bankAccountID]), nil
}

// SyncTransactions serves the account's transactions in order, count at a
// time; its cursor is the offset.
func (b *fakeBanks) SyncTransactions(_ context.Context, at app.BankAccess, bankAccountID, cursor string, count int) (app.TransactionChanges, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.call("SyncTransactions", at); err != nil {
		return app.TransactionChanges{}, err
	}
	all := b.txs[bankAccountID]
	from := 0
	if cursor != "" {
		from, _ = strconv.Atoi(cursor)
	}
	to := min(from+count, len(all))
	ch := app.TransactionChanges{Added: slices.Clone(all[from:to]), NextCursor: strconv.Itoa(to), HasMore: to < len(all)}
	if from == 0 {
		ch.Removed = slices.Clone(b.removed[bankAccountID])
	}
	return ch, nil
}
