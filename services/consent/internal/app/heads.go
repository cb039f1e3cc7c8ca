package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Defaults of Config's head signing.
const (
	// DefaultHeadSignGrace is how long an entry may wait for a signature
	// over it before verification fails: what a Vault outage may last
	// without the chains it touched reading as broken.
	DefaultHeadSignGrace = time.Hour
	// DefaultHeadSignDelay is what the consent service gathers moved heads
	// for before signing them after commit (Config.HeadSignDelay): at
	// a thousand accesses a second, a request signs some ten heads.
	DefaultHeadSignDelay = 10 * time.Millisecond
	// DefaultHeadSignTimeout bounds the signing request of one batch of
	// appends, made while the batch holds its users' chain heads.
	DefaultHeadSignTimeout = time.Second
)

const (
	// headDomain separates head signatures from any other use of the key.
	headDomain = "bankbridge.consent.v1.AccessLogHead"
	// After a failed signing request, appends leave their heads to
	// SignPendingHeads for a while, so an outage does not make every batch
	// wait for Vault to fail; the pause doubles up to the maximum.
	minSignPause = time.Second
	maxSignPause = 30 * time.Second
	// maxVerifiedHeads bounds the memory of heads known to be signed.
	maxVerifiedHeads = 10_000
	// signPendingBatch is how many heads SignPendingHeads signs at once.
	signPendingBatch = 100
)

// HeadMessage returns what a chain head's signature signs: the line
// "bankbridge.consent.v1.AccessLogHead" followed by the user id, the
// sequence (decimal) and the hash of the entry at that sequence, each as
// its length in bytes, a colon, its UTF-8 bytes and a newline, as
// [ChainHash] encodes fields. The hash covers every entry up to it, so the
// signature does too. It names the user so that one user's signed chain
// cannot stand in for another's.
func HeadMessage(user string, sequence int64, hash string) []byte {
	b := []byte(headDomain + "\n")
	for _, f := range []string{user, strconv.FormatInt(sequence, 10), hash} {
		b = fmt.Appendf(b, "%d:%s\n", len(f), f)
	}
	return b
}

// headSigning signs the heads that appends move and checks the heads they
// start from. With no signer, heads are left unsigned.
type headSigning struct {
	signer  HeadSigner
	timeout time.Duration
	log     *slog.Logger

	mu    sync.Mutex
	pause time.Duration // after the last failure; 0 after a success
	until time.Time     // no signing in appends before
	// verified holds, per user, the last head signed or verified here:
	// when the locked head is that one, byte for byte, its signature
	// needs no checking again.
	verified map[string]ChainHead
}

func newHeadSigning(signer HeadSigner, timeout time.Duration, log *slog.Logger) *headSigning {
	return &headSigning{signer: signer, timeout: timeout, log: log, verified: map[string]ChainHead{}}
}

// vouched reports whether h, the user's locked head, is signed and its
// signature verifies, so that a signature of an entry after it vouches for
// the whole chain. An append must not sign a head that extends a chain
// nobody vouched for: someone who rewrote the chain in the database would
// have it signed at the user's next access. A zero head vouches for
// nothing before it, so a chain begins signed.
func (hs *headSigning) vouched(ctx context.Context, user string, h ChainHead) bool {
	if h.Sequence == 0 {
		return true
	}
	if h.Signed.Sequence != h.Sequence {
		return false // its last entries await SignPendingHeads
	}
	hs.mu.Lock()
	known := hs.verified[user] == h
	hs.mu.Unlock()
	if known {
		return true
	}
	if err := hs.signer.Verify(ctx, HeadMessage(user, h.Sequence, h.Hash), h.Signed); err != nil {
		// Left to SignPendingHeads, which says what is wrong.
		return false
	}
	hs.remember(user, h)
	return true
}

func (hs *headSigning) remember(user string, h ChainHead) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if len(hs.verified) >= maxVerifiedHeads {
		clear(hs.verified)
	}
	hs.verified[user] = h
}

// signAppended signs the new heads of an append batch, in one request.
// When signing fails, or failed moments ago, it returns none and the heads
// wait for SignPendingHeads: the entries are durable either way, and the
// access must not fail for want of a signature (see DefaultHeadSignGrace).
func (hs *headSigning) signAppended(ctx context.Context, heads map[string]ChainHead) map[string]HeadSignature {
	if hs.signer == nil || len(heads) == 0 || hs.paused() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, hs.timeout)
	defer cancel()
	sigs, err := hs.sign(ctx, heads)
	if err == nil {
		return sigs
	}
	hs.failed(ctx, err, len(heads))
	return nil
}

// paused reports whether a signing request failed moments ago, so that
// appends leave their heads to SignPendingHeads rather than wait for Vault
// to fail again.
func (hs *headSigning) paused() bool {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return time.Now().Before(hs.until)
}

// failed pauses signing in appends after err, doubling the pause.
func (hs *headSigning) failed(ctx context.Context, err error, n int) {
	hs.mu.Lock()
	hs.pause = min(max(2*hs.pause, minSignPause), maxSignPause)
	hs.until = time.Now().Add(hs.pause)
	pause := hs.pause
	hs.mu.Unlock()
	hs.log.WarnContext(ctx, "access log heads left unsigned, to be signed later", slog.String("error", err.Error()),
		slog.Int("bankbridge.count", n), slog.Duration("bankbridge.retry_in", pause))
}

// signedHere reports whether h is, by sequence and hash, the user's head
// last signed or verified here: a signature of the chain up to h exists,
// whether or not the database holds it yet.
func (hs *headSigning) signedHere(user string, h ChainHead) bool {
	if h.Sequence == 0 {
		return true
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	v, ok := hs.verified[user]
	return ok && v.Sequence == h.Sequence && v.Hash == h.Hash && v.Signed.Sequence == h.Sequence
}

// knows reports whether sig, of the user's chain at the entry whose hash
// is hash, was made or verified here, so it needs no checking again.
func (hs *headSigning) knows(user string, sig HeadSignature, hash string) bool {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return hs.verified[user] == ChainHead{Sequence: sig.Sequence, Hash: hash, Signed: sig}
}

// sign signs heads in one request.
func (hs *headSigning) sign(ctx context.Context, heads map[string]ChainHead) (map[string]HeadSignature, error) {
	if len(heads) == 0 {
		return nil, nil
	}
	users := slices.Sorted(maps.Keys(heads))
	msgs := make([][]byte, len(users))
	for i, u := range users {
		msgs[i] = HeadMessage(u, heads[u].Sequence, heads[u].Hash)
	}
	sigs, err := hs.signer.Sign(ctx, msgs)
	if err != nil {
		return nil, fmt.Errorf("sign chain heads: %w", err)
	}
	if len(sigs) != len(users) {
		return nil, fmt.Errorf("sign chain heads: %d signatures for %d heads", len(sigs), len(users))
	}
	hs.mu.Lock()
	hs.pause, hs.until = 0, time.Time{} // Vault is back
	hs.mu.Unlock()
	out := make(map[string]HeadSignature, len(users))
	for i, u := range users {
		sig := sigs[i]
		sig.Sequence = heads[u].Sequence
		out[u] = sig
		h := heads[u]
		h.Signed = sig
		hs.remember(u, h)
	}
	return out, nil
}

// checkSignature checks the signature of the user's chain at sig.Sequence,
// whose entry has hash. It returns nil, a *ChainError, or the error that
// kept it from checking.
func (s *Service) checkSignature(ctx context.Context, user string, sig HeadSignature, hash string) error {
	if s.heads.signer == nil {
		return errors.New("check the chain head's signature: the service has no signer")
	}
	err := s.heads.signer.Verify(ctx, HeadMessage(user, sig.Sequence, hash), sig)
	if errors.Is(err, ErrSignatureInvalid) {
		return &ChainError{User: user, Sequence: sig.Sequence, Problem: "the head's signature of the chain up to here: " + err.Error()}
	}
	if err != nil {
		return fmt.Errorf("check the chain head's signature: %w", err)
	}
	return nil
}

// unsignedTooLong is the *ChainError of entries after the signed one
// (none signed: from the first) of which the oldest was recorded at
// oldest, when that is longer ago than the grace allows; nil otherwise.
func (s *Service) unsignedTooLong(user string, h ChainHead, oldest time.Time) error {
	if h.Signed.Sequence >= h.Sequence {
		return nil
	}
	age := s.now().Sub(oldest)
	if age <= s.cfg.HeadSignGrace {
		return nil // pending: signed once Vault answers (SignPendingHeads)
	}
	return &ChainError{User: user, Sequence: h.Signed.Sequence + 1, Problem: fmt.Sprintf(
		"the entries from here to %d are not signed, and were recorded up to %s ago, longer than the %s they may await a signature",
		h.Sequence, age.Round(time.Second), s.cfg.HeadSignGrace)}
}

// SignPendingHeads signs the chain heads that appends left unsigned (Vault
// was down, or the process stopped before signing), after checking each
// chain from its last signature: that signature, every entry since, and
// that none of those has waited longer than Config.HeadSignGrace. A chain
// that fails the check is left unsigned, so it keeps failing
// verification, and is counted in a warning. It returns how many heads it
// signed.
func (s *Service) SignPendingHeads(ctx context.Context) (int, error) {
	if s.heads.signer == nil {
		return 0, nil
	}
	var signed, refused int
	for after := ""; ; {
		users, err := s.store.UnsignedHeads(ctx, after, signPendingBatch)
		if err != nil {
			return signed, fmt.Errorf("list unsigned chain heads: %w", err)
		}
		if len(users) == 0 {
			break
		}
		n, bad, err := s.signHeadsChecked(ctx, users)
		if err != nil {
			return signed, fmt.Errorf("sign pending chain heads: %w", err)
		}
		signed, refused = signed+n, refused+bad
		if len(users) < signPendingBatch {
			break
		}
		after = users[len(users)-1]
	}
	if refused > 0 {
		s.log.WarnContext(ctx, "access log chains left unsigned: they do not verify from their last signature; run verify-access-log",
			slog.Int("bankbridge.count", refused))
	}
	return signed, nil
}

// signHeadsChecked signs the unsigned heads of users, each after checking
// its chain from its last signature (checkTail). It returns how many it
// signed and how many it refused.
func (s *Service) signHeadsChecked(ctx context.Context, users []string) (n, bad int, err error) {
	err = s.store.SignHeads(ctx, users, func(heads map[string]ChainHead, tails map[string][]AccessEntry) (map[string]HeadSignature, error) {
		n, bad = 0, 0
		todo := map[string]ChainHead{}
		for _, u := range users {
			h := heads[u]
			if h.Signed.Sequence >= h.Sequence {
				continue // signed meanwhile
			}
			if err := s.checkTail(ctx, u, h, tails[u]); err != nil {
				if _, ok := errors.AsType[*ChainError](err); !ok {
					return nil, err
				}
				bad++
				continue
			}
			todo[u] = h
		}
		sigs, err := s.heads.sign(ctx, todo)
		n = len(sigs)
		return sigs, err
	})
	return n, bad, err
}

// checkTail checks the user's chain from its last signature to its head h:
// tail holds the entries from the signed one (from the first when none
// is), oldest first. It returns nil, a *ChainError, or the error that kept
// it from checking.
func (s *Service) checkTail(ctx context.Context, user string, h ChainHead, tail []AccessEntry) error {
	w := walk{user: user, want: max(1, h.Signed.Sequence), prev: GenesisHash}
	if h.Signed.Sequence > 0 {
		w.prev = "" // the signature vouches for what precedes the signed entry
	}
	var oldest time.Time
	for _, e := range tail {
		if err := w.next(e); err != nil {
			return err
		}
		if e.Sequence == h.Signed.Sequence {
			if s.heads.knows(user, h.Signed, e.Hash) {
				continue // signed or verified here: its signature holds
			}
			if err := s.checkSignature(ctx, user, h.Signed, e.Hash); err != nil {
				return err
			}
		} else if oldest.IsZero() || e.AccessTime.Before(oldest) {
			oldest = e.AccessTime
		}
	}
	if err := w.end(h); err != nil {
		return err
	}
	return s.unsignedTooLong(user, h, oldest)
}

// walk checks a run of a user's chain entry by entry.
type walk struct {
	user string
	want int64 // the next entry's sequence
	// prev is the hash the next entry's previous_hash must equal; "" for
	// none to check.
	prev string
}

// next checks e, the next entry.
func (w *walk) next(e AccessEntry) error {
	switch {
	case e.Sequence != w.want:
		return &ChainError{User: w.user, Sequence: w.want, Problem: "the entry is missing"}
	case ChainHash(e) != e.Hash:
		return &ChainError{User: w.user, Sequence: w.want, Problem: "the hash does not match the entry's fields"}
	case w.prev != "" && e.PreviousHash != w.prev:
		return &ChainError{User: w.user, Sequence: w.want, Problem: "previous_hash does not match the entry before it"}
	}
	w.prev, w.want = e.Hash, w.want+1
	return nil
}

// end checks that the entries walked end at the head h.
func (w *walk) end(h ChainHead) error {
	last := w.want - 1
	switch {
	case h.Sequence > last:
		return &ChainError{User: w.user, Sequence: last + 1, Problem: fmt.Sprintf("the entries from here to %d are missing", h.Sequence)}
	case h.Sequence < last:
		return &ChainError{User: w.user, Sequence: h.Sequence + 1, Problem: "the entry is not in the chain head; the head was changed"}
	case last > 0 && h.Hash != w.prev:
		return &ChainError{User: w.user, Sequence: last, Problem: "the chain head's hash does not match the entry"}
	}
	return nil
}
