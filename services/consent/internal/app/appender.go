package app

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"
)

// appender appends access log entries by group commit: concurrent
// RecordAccess calls share one transaction. There is no goroutine while
// nothing is pending: the first pending append starts a drainer, which
// takes up to maxBatch pending entries, appends each user's in arrival
// order to that user's chain in one transaction, answers their callers,
// and goes on while entries keep arriving (they queue up while a batch is
// written, so a busy log writes large batches and an idle one writes at
// once).
//
// The batch signs its users' new chain heads, all in one request and in
// its transaction, so a head is committed with its signature; when
// signing fails the entries are committed all the same, their heads
// awaiting SignPendingHeads (see headSigning.signAppended). With a
// postSigner (Config.HeadSignDelay), the batch commits its heads unsigned
// and hands them to it instead.
type appender struct {
	store    Store
	heads    *headSigning
	post     *postSigner // nil: sign in the transaction
	maxBatch int
	// wait is how long the oldest pending entry may wait for others to
	// join its batch; 0 writes whatever is pending at once.
	wait time.Duration
	// timeout bounds one batch's transaction; no caller's context does,
	// since a batch serves many.
	timeout time.Duration
	wg      sync.WaitGroup

	mu       sync.Mutex
	pending  []*appendRequest
	writing  int // entries in the batch being written
	draining bool
	full     chan struct{} // a batch's worth is pending; capacity 1
}

// appendRequest is one caller's entry on its way into the log.
type appendRequest struct {
	ctx     context.Context
	entry   AccessEntry
	arrived time.Time
	taken   bool // in a batch; guarded by appender.mu
	done    chan appendResult
}

type appendResult struct {
	entry AccessEntry
	err   error
}

func newAppender(store Store, heads *headSigning, maxBatch int, wait, timeout time.Duration) *appender {
	return &appender{store: store, heads: heads, maxBatch: maxBatch, wait: wait, timeout: timeout, full: make(chan struct{}, 1)}
}

// append queues e and returns it as committed. When ctx ends first, e is
// withdrawn if no batch took it yet; a batch that took it leaves it out
// unless it has already written it, and the caller then learns which.
func (a *appender) append(ctx context.Context, e AccessEntry) (AccessEntry, error) {
	if err := ctx.Err(); err != nil {
		return AccessEntry{}, err
	}
	r := &appendRequest{ctx: ctx, entry: e, arrived: time.Now(), done: make(chan appendResult, 1)}
	a.mu.Lock()
	a.pending = append(a.pending, r)
	if len(a.pending) >= a.maxBatch {
		select {
		case a.full <- struct{}{}:
		default:
		}
	}
	start := !a.draining
	a.draining = true
	a.mu.Unlock()
	if start {
		a.wg.Go(a.drain)
	}

	select {
	case res := <-r.done:
		return res.entry, res.err
	case <-ctx.Done():
	}
	a.mu.Lock()
	if !r.taken {
		a.pending = slices.DeleteFunc(a.pending, func(p *appendRequest) bool { return p == r })
		a.mu.Unlock()
		return AccessEntry{}, ctx.Err()
	}
	a.mu.Unlock()
	res := <-r.done // bounded by the batch's timeout
	return res.entry, res.err
}

// drain writes batches until nothing is pending.
func (a *appender) drain() {
	for {
		a.linger()
		a.mu.Lock()
		n := min(len(a.pending), a.maxBatch)
		if n == 0 {
			a.draining = false
			a.mu.Unlock()
			return
		}
		batch := slices.Clone(a.pending[:n])
		a.pending = slices.Delete(a.pending, 0, n)
		for _, r := range batch {
			r.taken = true
		}
		a.writing = n
		a.mu.Unlock()
		a.commit(batch)
		a.mu.Lock()
		a.writing = 0
		a.mu.Unlock()
	}
}

// backlog is how many entries wait for their append: pending, and in the
// batch being written.
func (a *appender) backlog() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.pending) + a.writing
}

// linger waits, when fewer than a batch's worth are pending, until the
// oldest pending entry has waited a.wait, so that more can join it.
func (a *appender) linger() {
	if a.wait <= 0 {
		return
	}
	a.mu.Lock()
	var until time.Time
	if len(a.pending) > 0 && len(a.pending) < a.maxBatch {
		until = a.pending[0].arrived.Add(a.wait)
	}
	a.mu.Unlock()
	d := time.Until(until)
	if until.IsZero() || d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-a.full:
	}
}

// commit appends batch in one transaction and answers every caller in it.
// An entry whose caller's context has ended by the time the transaction
// holds its users' chain heads is left out.
func (a *appender) commit(batch []*appendRequest) {
	var users []string
	seen := map[string]bool{}
	for _, r := range batch {
		if !seen[r.entry.User] {
			seen[r.entry.User] = true
			users = append(users, r.entry.User)
		}
	}
	var (
		written       []*appendRequest
		entries       []AccessEntry
		locked, heads map[string]ChainHead
	)
	ctx, cancel := context.WithTimeout(context.Background(), a.timeout)
	defer cancel()
	err := a.store.AppendAccess(ctx, users, func(l map[string]ChainHead) ([]AccessEntry, map[string]HeadSignature, error) {
		locked, heads = l, maps.Clone(l)
		written, entries = written[:0], entries[:0]
		for _, r := range batch {
			if r.ctx.Err() != nil {
				continue // its caller gave up: it must not be recorded
			}
			e := chain(heads[r.entry.User], r.entry)
			heads[r.entry.User] = ChainHead{Sequence: e.Sequence, Hash: e.Hash}
			written = append(written, r)
			entries = append(entries, e)
		}
		if a.heads.signer == nil || a.post != nil {
			return entries, nil, nil
		}
		sign := map[string]ChainHead{}
		for u, h := range heads {
			if h.Sequence != locked[u].Sequence && a.heads.vouched(ctx, u, locked[u]) {
				sign[u] = h
			}
		}
		return entries, a.heads.signAppended(ctx, sign), nil
	})
	if err == nil && a.post != nil {
		a.post.moved(locked, heads)
	}
	in := make(map[*appendRequest]int, len(written))
	for i, r := range written {
		in[r] = i
	}
	for _, r := range batch {
		i, ok := in[r]
		switch {
		case err != nil:
			r.done <- appendResult{err: err}
		case ok:
			r.done <- appendResult{entry: entries[i]}
		default:
			r.done <- appendResult{err: r.ctx.Err()}
		}
	}
}

// close waits for the batch being written, if any.
func (a *appender) close() { a.wg.Wait() }
