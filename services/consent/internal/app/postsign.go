package app

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// postSigner signs the chain heads that appends moved after their
// transaction commits (Config.HeadSignDelay), so that neither the
// append's callers nor the database's write lock wait for Vault: the
// signing request of the inline path held the lock of the append's
// transaction for its whole round trip (issue 15: about a fifth of
// GetBalance's throughput).
//
// It signs a head only where an inline append would have: when the chain
// it extends from is vouched for, by a signature verified or made here.
// The entries in between were chained onto that head by this process's
// appends, under the head's lock. Any other head is checked from its last
// signature as SignPendingHeads checks it (signHeadsChecked). A head left
// unsigned, because Vault is down or the process stops first, is signed by
// SignPendingHeads, and fails verification once older than
// Config.HeadSignGrace, as before.
//
// There is no goroutine while nothing is pending: the first moved head
// starts one, which waits delay for others to join, signs them in one
// request, and goes on while heads keep arriving.
type postSigner struct {
	svc   *Service
	delay time.Duration
	wg    sync.WaitGroup

	mu      sync.Mutex
	pending map[string]pendingHead
	running bool
}

// pendingHead is a user's head awaiting its signature, and the head the
// first of its unsigned appends here started from.
type pendingHead struct {
	base, head ChainHead
}

func newPostSigner(svc *Service, delay time.Duration) *postSigner {
	return &postSigner{svc: svc, delay: delay, pending: map[string]pendingHead{}}
}

// moved takes the heads a committed append batch moved: from locked (as
// the batch found them) to heads.
func (p *postSigner) moved(locked, heads map[string]ChainHead) {
	p.mu.Lock()
	for u, h := range heads {
		from := locked[u]
		if h.Sequence == from.Sequence {
			continue
		}
		if prev, ok := p.pending[u]; ok && prev.head.Sequence == from.Sequence && prev.head.Hash == from.Hash {
			// Appended onto a head still awaiting its signature here:
			// one signature covers both.
			from = prev.base
		}
		p.pending[u] = pendingHead{base: from, head: ChainHead{Sequence: h.Sequence, Hash: h.Hash}}
	}
	start := !p.running && len(p.pending) > 0
	if start {
		p.running = true
	}
	p.mu.Unlock()
	if start {
		p.wg.Go(p.run)
	}
}

// run signs what is pending, batch after batch, until nothing is.
func (p *postSigner) run() {
	for {
		time.Sleep(p.delay)
		p.mu.Lock()
		batch := p.pending
		if len(batch) == 0 {
			p.running = false
			p.mu.Unlock()
			return
		}
		p.pending = map[string]pendingHead{}
		p.mu.Unlock()
		p.sign(batch)
	}
}

// sign signs one batch; what it cannot sign is left to SignPendingHeads.
func (p *postSigner) sign(batch map[string]pendingHead) {
	s, hs := p.svc, p.svc.heads
	ctx, cancel := context.WithTimeout(context.Background(), hs.timeout)
	defer cancel()
	if hs.paused() {
		return
	}
	direct := map[string]ChainHead{}
	var checked []string
	for u, ph := range batch {
		if hs.signedHere(u, ph.base) || hs.vouched(ctx, u, ph.base) {
			direct[u] = ph.head
		} else {
			checked = append(checked, u)
		}
	}
	if len(direct) > 0 {
		sigs, err := hs.sign(ctx, direct)
		if err != nil {
			hs.failed(ctx, err, len(direct))
			return
		}
		signed := make(map[string]ChainHead, len(sigs))
		for u, sig := range sigs {
			h := direct[u]
			h.Signed = sig
			signed[u] = h
		}
		if _, err := s.store.StoreHeadSignatures(ctx, signed); err != nil {
			s.log.WarnContext(ctx, "access log head signatures not stored, to be signed later", slog.String("error", err.Error()),
				slog.Int("bankbridge.count", len(signed)))
		}
	}
	if len(checked) > 0 {
		slices.Sort(checked)
		if _, _, err := s.signHeadsChecked(ctx, checked); err != nil {
			s.log.WarnContext(ctx, "access log heads left unsigned, to be signed later", slog.String("error", err.Error()),
				slog.Int("bankbridge.count", len(checked)))
		}
	}
}

// close waits for the batch being signed, and those pending.
func (p *postSigner) close() { p.wg.Wait() }
