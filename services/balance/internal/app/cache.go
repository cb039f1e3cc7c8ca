package app

import (
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// What balance reads from banks lives in this process's memory only, for
// at most a day, and is never written to disk: it is personal data, and a
// copy that is never at rest needs no encryption key and cannot leak from a
// backup. The price is that a restarted replica has nothing to offer while
// a bank is down; that is the trade we choose.
//
// Each cache holds at most a configured number of entries (Config.
// CacheEntries), however many users come by: past it, the entry put
// longest ago goes first. Reads peek without refreshing an entry's place,
// so the oldest entry is also the first to expire, and each put drops the
// expired ones from that end: nothing older than its limit is kept, at a
// cost of the entries it drops.

// DefaultCacheEntries bounds each cache: about 50 MB in all for a
// balance of a few amounts and a list of a few accounts per entry.
const DefaultCacheEntries = 100_000

// lastKnown keeps each account's last balances read, to serve them marked
// stale while the bank is down.
type lastKnown struct {
	mu     sync.Mutex
	maxAge time.Duration
	now    func() time.Time
	items  *simplelru.LRU[string, AccountBalance] // by balance name
}

func newLastKnown(maxAge time.Duration, entries int, now func() time.Time) *lastKnown {
	return &lastKnown{maxAge: maxAge, now: now, items: newLRU[string, AccountBalance](entries)}
}

// newLRU is a bounded cache of at least one entry.
func newLRU[K comparable, V any](entries int) *simplelru.LRU[K, V] {
	c, err := simplelru.NewLRU[K, V](max(entries, 1), nil)
	if err != nil {
		panic(err) // only for a size below one
	}
	return c
}

// sweep drops the expired entries at the old end of c.
func sweep[K comparable, V any](c *simplelru.LRU[K, V], expired func(V) bool) {
	for {
		_, v, ok := c.GetOldest()
		if !ok || !expired(v) {
			return
		}
		c.RemoveOldest()
	}
}

// put keeps b, read at b.AsOf, so a stale answer names the same moment the
// fresh one did.
func (l *lastKnown) put(b AccountBalance) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Removed first, so the new value goes to the young end.
	l.items.Remove(b.Account.Balance())
	l.items.Add(b.Account.Balance(), b.clone())
	// Sweep while here: nothing older than maxAge is kept.
	now := l.now()
	sweep(l.items, func(v AccountBalance) bool { return now.Sub(v.AsOf) > l.maxAge })
}

// len is how many balances are kept.
func (l *lastKnown) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.items.Len()
}

// get returns the last balances of the named balance read within maxAge,
// marked stale.
func (l *lastKnown) get(balanceName string) (AccountBalance, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.items.Peek(balanceName)
	if !ok || l.now().Sub(v.AsOf) > l.maxAge {
		l.items.Remove(balanceName)
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
	items *simplelru.LRU[accountKey, accountList]
}

type accountKey struct{ user, bank string }

type accountList struct {
	accounts []BankAccount
	link     string
	readAt   time.Time
}

func newAccountCache(fresh, keep time.Duration, entries int, now func() time.Time) *accountCache {
	return &accountCache{fresh: fresh, keep: keep, now: now, items: newLRU[accountKey, accountList](entries)}
}

func (c *accountCache) put(user, bank, link string, accounts []BankAccount) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, now := accountKey{user, bank}, c.now()
	c.items.Remove(k)
	c.items.Add(k, accountList{accounts: slices.Clone(accounts), link: link, readAt: now})
	sweep(c.items, func(l accountList) bool { return now.Sub(l.readAt) > c.keep })
}

// len is how many account lists are kept.
func (c *accountCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.items.Len()
}

// get returns the list read under link and whether it is fresh; ok is
// false when there is none younger than keep. A list read under another
// link (the user linked the bank again) is not returned.
func (c *accountCache) get(user, bank, link string) (accounts []BankAccount, fresh, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := accountKey{user, bank}
	l, ok := c.items.Peek(k)
	if !ok || c.now().Sub(l.readAt) > c.keep {
		c.items.Remove(k)
		return nil, false, false
	}
	if l.link != link {
		return nil, false, false
	}
	return slices.Clone(l.accounts), c.now().Sub(l.readAt) <= c.fresh, true
}
