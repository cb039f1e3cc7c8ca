package app

import (
	"slices"
	"sync"
	"time"
)

// What balance reads from banks lives in this process's memory only, for
// at most a day, and is never written to disk: it is personal data, and a
// copy that is never at rest needs no encryption key and cannot leak from a
// backup. The price is that a restarted replica has nothing to offer while
// a bank is down; that is the trade we choose.

// lastKnown keeps each account's last balances read, to serve them marked
// stale while the bank is down.
type lastKnown struct {
	mu     sync.Mutex
	maxAge time.Duration
	now    func() time.Time
	items  map[string]AccountBalance // by balance name
}

func newLastKnown(maxAge time.Duration, now func() time.Time) *lastKnown {
	return &lastKnown{maxAge: maxAge, now: now, items: map[string]AccountBalance{}}
}

// put keeps b, read at b.AsOf, so a stale answer names the same moment the
// fresh one did.
func (l *lastKnown) put(b AccountBalance) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.items[b.Account.Balance()] = b.clone()
	// Sweep while here: nothing older than maxAge is kept.
	for k, v := range l.items {
		if l.now().Sub(v.AsOf) > l.maxAge {
			delete(l.items, k)
		}
	}
}

// get returns the last balances of the named balance read within maxAge,
// marked stale.
func (l *lastKnown) get(balanceName string) (AccountBalance, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.items[balanceName]
	if !ok || l.now().Sub(v.AsOf) > l.maxAge {
		delete(l.items, balanceName)
		return AccountBalance{}, false
	}
	b := v.clone()
	b.Stale = true
	return b, true
}

// accountCache keeps each (user, bank) account list for a short time, so
// GetAccount and paging do not go to the bank for every call, and serves
// it while the bank is down.
type accountCache struct {
	mu    sync.Mutex
	fresh time.Duration
	keep  time.Duration
	now   func() time.Time
	items map[accountKey]accountList
}

type accountKey struct{ user, bank string }

type accountList struct {
	accounts []BankAccount
	link     string
	readAt   time.Time
}

func newAccountCache(fresh, keep time.Duration, now func() time.Time) *accountCache {
	return &accountCache{fresh: fresh, keep: keep, now: now, items: map[accountKey]accountList{}}
}

func (c *accountCache) put(user, bank, link string, accounts []BankAccount) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.items[accountKey{user, bank}] = accountList{accounts: slices.Clone(accounts), link: link, readAt: c.now()}
}

// get returns the list read under link and whether it is fresh; ok is
// false when there is none younger than keep. A list read under another
// link (the user linked the bank again) is not returned.
func (c *accountCache) get(user, bank, link string) (accounts []BankAccount, fresh, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := accountKey{user, bank}
	l, ok := c.items[k]
	if !ok || c.now().Sub(l.readAt) > c.keep {
		delete(c.items, k)
		return nil, false, false
	}
	if l.link != link {
		return nil, false, false
	}
	return slices.Clone(l.accounts), c.now().Sub(l.readAt) <= c.fresh, true
}
