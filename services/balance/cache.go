package main

import (
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
)

// Last known balances live in this process's memory only, for at most
// maxAge (24 h by default), and are never written to disk: a balance is
// personal data, and a copy that is never at rest needs no encryption key
// and cannot leak from a backup. The price is that a restarted replica has
// none to offer while the bank is down; that is the trade we choose.
type lastKnown struct {
	mu     sync.Mutex
	maxAge time.Duration
	now    func() time.Time
	items  map[string]lastBalance
}

type lastBalance struct {
	balance *balancev1.AccountBalance
	readAt  time.Time
}

func newLastKnown(maxAge time.Duration, now func() time.Time) *lastKnown {
	return &lastKnown{maxAge: maxAge, now: now, items: map[string]lastBalance{}}
}

func (l *lastKnown) put(b *balancev1.AccountBalance) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// The read time is the balance's own as_of, so a stale answer names the
	// same moment the fresh one did.
	readAt := l.now()
	if b.GetAsOf() != nil {
		readAt = b.GetAsOf().AsTime()
	}
	l.items[b.GetName()] = lastBalance{balance: proto.Clone(b).(*balancev1.AccountBalance), readAt: readAt}
	// Sweep while here: nothing older than maxAge is kept.
	for k, v := range l.items {
		if l.now().Sub(v.readAt) > l.maxAge {
			delete(l.items, k)
		}
	}
}

// get returns the last balance read within maxAge, marked stale, with as_of
// saying when it was read.
func (l *lastKnown) get(name string) (*balancev1.AccountBalance, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.items[name]
	if !ok || l.now().Sub(v.readAt) > l.maxAge {
		delete(l.items, name)
		return nil, false
	}
	b := proto.Clone(v.balance).(*balancev1.AccountBalance)
	b.Stale = true
	b.AsOf = timestamppb.New(v.readAt)
	return b, true
}

// accountCache keeps each (user, bank) account list for a short time, so
// GetAccount and paging do not go to the bank for every call, and serves
// it while the bank is down. Memory only, for the same reason as above.
type accountCache struct {
	mu    sync.Mutex
	fresh time.Duration
	keep  time.Duration
	now   func() time.Time
	items map[[2]string]accountList
}

type accountList struct {
	accounts []*adapterv1.Account
	link     string
	readAt   time.Time
}

func newAccountCache(fresh, keep time.Duration, now func() time.Time) *accountCache {
	return &accountCache{fresh: fresh, keep: keep, now: now, items: map[[2]string]accountList{}}
}

func (c *accountCache) put(user, bank, link string, accounts []*adapterv1.Account) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.items[[2]string{user, bank}] = accountList{accounts: accounts, link: link, readAt: c.now()}
}

// get returns the list and whether it is fresh; ok is false when there is
// none younger than keep.
func (c *accountCache) get(user, bank string) (l accountList, fresh, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok = c.items[[2]string{user, bank}]
	if !ok || c.now().Sub(l.readAt) > c.keep {
		delete(c.items, [2]string{user, bank})
		return accountList{}, false, false
	}
	return l, c.now().Sub(l.readAt) <= c.fresh, true
}
