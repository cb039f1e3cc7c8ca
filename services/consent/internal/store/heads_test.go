package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/consent/internal/signer"
	"github.com/bankbridge/bankbridge/services/consent/internal/store"
	"github.com/bankbridge/bankbridge/services/platform/credentials"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/platform/vaulttest"
)

// The signed heads suite runs on SQLite and PostgreSQL against a real
// Vault, whose Transit key signs the heads as in production. The attacker
// it plays can write to the database but cannot use the key.
func TestSignedHeads(t *testing.T) {
	v := vaulttest.Start(t)
	v.CreateTransitKey(t, signer.DefaultKey, "ed25519")
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		st := open(t, db)
		t.Run("a chain signed batch by batch verifies", func(t *testing.T) { testSignedChain(t, v, st, 0) })
		t.Run("a chain rewritten in the database fails verification", func(t *testing.T) { testRewrittenChain(t, v, st, db, 0) })
		// The consent service's way (--access-log-sign-delay): heads signed
		// after their append commits, not in its transaction.
		t.Run("a chain signed after each commit verifies", func(t *testing.T) { testSignedChain(t, v, st, 5*time.Millisecond) })
		t.Run("signing after commit does not launder a rewritten chain", func(t *testing.T) { testRewrittenChain(t, v, st, db, 5*time.Millisecond) })
		t.Run("appends while Vault is down are signed once it is back", func(t *testing.T) { testVaultDown(t, v, st, db) })
		// Last: it rotates the key the others sign with.
		t.Run("heads signed before a key rotation still verify", func(t *testing.T) { testKeyRotation(t, v, st) })
	})
}

// headSigner is the service's signer: the Transit key through a provider
// of its own, so that each one caches the key's versions separately, as
// replicas and the verify-access-log command do.
func headSigner(t *testing.T, v *vaulttest.Server) *signer.Transit {
	t.Helper()
	p, err := credentials.New(context.Background(), credentials.Config{
		Address: v.Addr(),
		Auth:    credentials.AuthConfig{Method: credentials.AuthToken, Token: credentials.Sensitive(v.RootToken())},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	key, err := p.Transit("", signer.DefaultKey)
	if err != nil {
		t.Fatal(err)
	}
	return signer.New(key)
}

// signedService runs the app on st with heads signed by s, its clock at
// *now.
func signedService(t *testing.T, st app.Store, s app.HeadSigner, now *atomic.Pointer[time.Time]) *app.Service {
	t.Helper()
	return signedAfter(t, st, s, now, 0)
}

// signedAfter is signedService signing heads delay after their appends
// commit (app.Config.HeadSignDelay); 0 signs them in the transaction.
func signedAfter(t *testing.T, st app.Store, s app.HeadSigner, now *atomic.Pointer[time.Time], delay time.Duration) *app.Service {
	t.Helper()
	svc, err := app.New(st, nil, app.Config{HeadSigner: s, HeadSignDelay: delay, Now: func() time.Time { return *now.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	return svc
}

func clockAt(at time.Time) *atomic.Pointer[time.Time] {
	var p atomic.Pointer[time.Time]
	p.Store(&at)
	return &p
}

func record(t *testing.T, svc *app.Service, user string, from, n int) {
	t.Helper()
	for i := range n {
		if _, err := svc.RecordAccess(t.Context(), entry(user, from+i)); err != nil {
			t.Fatal(err)
		}
	}
}

func head(t *testing.T, st *store.Store, user string) app.ChainHead {
	t.Helper()
	h, err := st.AccessHead(t.Context(), user)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// requireBroken asserts that VerifyChain finds user's chain broken at seq,
// saying something that contains problem.
func requireBroken(t *testing.T, svc *app.Service, user string, seq int64, problem string) {
	t.Helper()
	err := svc.VerifyChain(t.Context(), user)
	ce, ok := errors.AsType[*app.ChainError](err)
	if !ok {
		t.Fatalf("VerifyChain(%s) = %v, want a *ChainError", user, err)
	}
	if ce.User != user || ce.Sequence != seq || !strings.Contains(ce.Problem, problem) {
		t.Errorf("VerifyChain(%s) = %v (sequence %d), want sequence %d and %q", user, err, ce.Sequence, seq, problem)
	}
}

func testSignedChain(t *testing.T, v *vaulttest.Server, st *store.Store, delay time.Duration) {
	user := fmt.Sprintf("sh-signed-%s", delay)
	svc := signedAfter(t, st, headSigner(t, v), clockAt(t0), delay)
	record(t, svc, user, 0, 3)
	// And a batch of concurrent appends, one signature for the batch.
	var g errgroup.Group
	for i := range 12 {
		g.Go(func() error {
			_, err := svc.RecordAccess(t.Context(), entry(user, 3+i))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	svc.Close() // the heads awaiting their signature after commit are signed
	h := head(t, st, user)
	version := v.TransitKeyVersion(t, signer.DefaultKey)
	if h.Sequence != 15 || h.Signed.Sequence != 15 || h.Signed.KeyVersion != version ||
		!strings.HasPrefix(h.Signed.Value, fmt.Sprintf("vault:v%d:", version)) {
		t.Fatalf("head %+v, want sequence 15 signed by key version %d", h, version)
	}
	if err := svc.VerifyChain(t.Context(), user); err != nil {
		t.Errorf("VerifyChain: %v", err)
	}
	// So it does for a verifier that signed nothing and reads the key
	// afresh: another replica, or the verify-access-log command.
	if err := signedService(t, st, headSigner(t, v), clockAt(t0)).VerifyChain(t.Context(), user); err != nil {
		t.Errorf("VerifyChain from another process: %v", err)
	}
	if users, err := st.UnsignedHeads(t.Context(), "", 100); err != nil || slices.Contains(users, user) {
		t.Errorf("UnsignedHeads = %v, %v; want %s's head signed", users, err, user)
	}
}

// rewrite changes the user's entry at seq as an attacker with write access
// to the database would: the entry, every hash after it, recomputed, and
// the chain head's hash, so that the chain holds together.
func rewrite(t *testing.T, st *store.Store, db *storage.DB, user string, seq int64, change func(*app.AccessEntry)) {
	t.Helper()
	chain, err := st.AccessChain(t.Context(), user, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	prev := app.GenesisHash
	for _, e := range chain {
		if e.Sequence == seq {
			change(&e)
		}
		if e.Sequence >= seq {
			e.PreviousHash = prev
			e.Hash = app.ChainHash(e)
			_, err := db.ExecContext(t.Context(), `UPDATE access_log SET client_id = $1, outcome = $2, reason = $3,
				previous_hash = $4, hash = $5 WHERE user_id = $6 AND sequence = $7`,
				e.ClientID, e.Outcome.String(), e.Reason, e.PreviousHash, e.Hash, user, e.Sequence)
			if err != nil {
				t.Fatal(err)
			}
		}
		prev = e.Hash
	}
	if _, err := db.ExecContext(t.Context(), `UPDATE access_log_heads SET hash = $1 WHERE user_id = $2`, prev, user); err != nil {
		t.Fatal(err)
	}
}

func testRewrittenChain(t *testing.T, v *vaulttest.Server, st *store.Store, db *storage.DB, delay time.Duration) {
	key := headSigner(t, v)
	// Past the grace, as an audit run later would be; the entries were
	// recorded at t0.
	later := t0.Add(app.DefaultHeadSignGrace + time.Hour)
	svc := signedAfter(t, st, key, clockAt(t0), delay)
	prefix := fmt.Sprintf("sh-%s-", delay)
	otherUser := prefix + "other"
	record(t, svc, otherUser, 0, 6)
	svc.Close()
	other := head(t, st, otherUser)

	hideDenial := func(e *app.AccessEntry) { e.Outcome, e.Reason = app.OutcomeAllowed, "" }
	tests := []struct {
		name    string
		attack  string // SQL run after the rewrite; $1 is the user
		wantSeq int64
		problem string
	}{
		{"turn a denial into an allowed access and recompute every hash and the head", ``, 6, "signature"},
		{"and drop the head's signature", `UPDATE access_log_heads SET signed_sequence = 0, key_version = 0, signature = '' WHERE user_id = $1`,
			1, "not signed"},
		{"and point the signature at an entry before the rewritten one", `UPDATE access_log_heads SET signed_sequence = 3 WHERE user_id = $1`,
			3, "signature"},
		{"and sign the head with another user's signature of the same sequence",
			fmt.Sprintf(`UPDATE access_log_heads SET signed_sequence = %d, key_version = %d, signature = '%s' WHERE user_id = $1`,
				other.Signed.Sequence, other.Signed.KeyVersion, other.Signed.Value),
			6, "signature"},
		{"replace it with another user's signed log, entries and head",
			`DELETE FROM access_log WHERE user_id = $1;
			INSERT INTO access_log (` + copyColumns + `) SELECT $1, ` + strings.TrimPrefix(copyColumns, "user_id, ") + ` FROM access_log WHERE user_id = '` + otherUser + `';
			UPDATE access_log_heads SET sequence = (SELECT sequence FROM access_log_heads WHERE user_id = '` + otherUser + `'),
				hash = (SELECT hash FROM access_log_heads WHERE user_id = '` + otherUser + `'),
				signed_sequence = (SELECT signed_sequence FROM access_log_heads WHERE user_id = '` + otherUser + `'),
				key_version = (SELECT key_version FROM access_log_heads WHERE user_id = '` + otherUser + `'),
				signature = (SELECT signature FROM access_log_heads WHERE user_id = '` + otherUser + `') WHERE user_id = $1`,
			6, "signature"},
		{"and forge a signature by a key version that does not exist",
			`UPDATE access_log_heads SET key_version = 99, signature = 'vault:v99:' || substr(signature, 10) WHERE user_id = $1`,
			6, "no version 99"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user := fmt.Sprintf("%srewritten%d", prefix, i)
			record(t, svc, user, 0, 6)
			svc.Close()
			if err := svc.VerifyChain(t.Context(), user); err != nil {
				t.Fatalf("before the rewrite: %v", err)
			}
			rewrite(t, st, db, user, 4, hideDenial) // entry(user, 3) is the denial at sequence 4
			for stmt := range strings.SplitSeq(tt.attack, ";") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				if _, err := db.ExecContext(t.Context(), stmt, user); err != nil {
					t.Fatal(err)
				}
			}
			// The attacker strikes, and the audit runs, after the grace.
			audit := signedAfter(t, st, key, clockAt(later), delay)
			requireBroken(t, audit, user, tt.wantSeq, tt.problem)
			if !reports(audit.VerifyAllChains(t.Context()), user, tt.wantSeq) {
				t.Errorf("VerifyAllChains does not report %s at sequence %d", user, tt.wantSeq)
			}

			// The user's next access does not launder the rewrite: its
			// head is not signed on top of a head that does not verify,
			// and the background signer refuses the chain.
			if _, err := audit.RecordAccess(t.Context(), entry(user, 6)); err != nil {
				t.Fatal(err)
			}
			audit.Close() // done signing after commit, if it would
			if h := head(t, st, user); h.Signed.Sequence == h.Sequence {
				t.Errorf("the next append signed the rewritten chain: head %+v", h)
			}
			if n, err := audit.SignPendingHeads(t.Context()); err != nil || n != 0 {
				t.Errorf("SignPendingHeads = %d, %v; want nothing signed", n, err)
			}
			if h := head(t, st, user); h.Signed.Sequence == h.Sequence {
				t.Errorf("SignPendingHeads signed the rewritten chain: head %+v", h)
			}
			if err := audit.VerifyChain(t.Context(), user); err == nil {
				t.Error("the rewritten chain verifies after the next access")
			}
		})
	}
	if err := svc.VerifyChain(t.Context(), otherUser); err != nil {
		t.Errorf("a chain nobody touched: %v", err)
	}
}

// copyColumns are access_log's columns, for an attacker copying rows.
const copyColumns = `user_id, sequence, access_time, client_id, subject_id, method, resource, purpose, scope,
	outcome, reason, trace_id, previous_hash, hash`

// reports says whether err, from VerifyAllChains, names user's chain as
// broken at seq.
func reports(err error, user string, seq int64) bool {
	errs := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	}
	for _, e := range errs {
		if ce, ok := errors.AsType[*app.ChainError](e); ok && ce.User == user && ce.Sequence == seq {
			return true
		}
	}
	return false
}

// outage is the Transit signer while Vault is down for signing: Sign
// fails as it would; verification, which needs only the cached key, works.
type outage struct {
	app.HeadSigner
	down     atomic.Bool
	attempts atomic.Int64 // Sign calls while down
}

func (o *outage) Sign(ctx context.Context, messages [][]byte) ([]app.HeadSignature, error) {
	if o.down.Load() {
		o.attempts.Add(1)
		return nil, fmt.Errorf("sign with transit/sign/%s: vault unreachable: %w", signer.DefaultKey, credentials.ErrUnavailable)
	}
	return o.HeadSigner.Sign(ctx, messages)
}

func testVaultDown(t *testing.T, v *vaulttest.Server, st *store.Store, db *storage.DB) {
	key := &outage{HeadSigner: headSigner(t, v)}
	now := clockAt(t0)
	svc := signedService(t, st, key, now)
	record(t, svc, "sh-down", 0, 2)
	before := head(t, st, "sh-down")

	key.down.Store(true)
	// Audit before data: the accesses are recorded, whatever Vault does.
	record(t, svc, "sh-down", 2, 3)
	record(t, svc, "sh-down-new", 0, 2) // a chain begun during the outage
	record(t, svc, "sh-down-tampered", 0, 2)
	if h := head(t, st, "sh-down"); h.Sequence != 5 || h.Signed != before.Signed {
		t.Fatalf("head during the outage %+v, want sequence 5 still signed at %d", h, before.Signed.Sequence)
	}
	// After a failure appends leave Vault alone for a while rather than
	// each wait for it to fail.
	if n := key.attempts.Load(); n == 0 || n >= 7 {
		t.Errorf("7 appends during the outage tried to sign %d times, want fewer", n)
	}
	users, err := st.UnsignedHeads(t.Context(), "", 1000)
	if err != nil || !slices.Contains(users, "sh-down") || !slices.Contains(users, "sh-down-new") || slices.Contains(users, "sh-other") {
		t.Errorf("UnsignedHeads = %v, %v; want sh-down and sh-down-new, not sh-other", users, err)
	}
	// Awaiting their signature, within the grace, the chains verify ...
	for _, u := range []string{"sh-down", "sh-down-new"} {
		if err := svc.VerifyChain(t.Context(), u); err != nil {
			t.Errorf("VerifyChain(%s) during the outage: %v", u, err)
		}
	}
	// ... and past it they do not, and are not signed.
	key.down.Store(false)
	now.Store(new(t0.Add(app.DefaultHeadSignGrace + time.Minute)))
	requireBroken(t, svc, "sh-down", 3, "not signed")
	requireBroken(t, svc, "sh-down-new", 1, "not signed")
	if n, err := svc.SignPendingHeads(t.Context()); err != nil || n != 0 {
		t.Errorf("SignPendingHeads past the grace = %d, %v; want nothing signed", n, err)
	}

	// Within the grace, once Vault is back, the background signer checks
	// each chain from its last signature and signs it, but for one changed
	// while it waited.
	now.Store(new(t0))
	if _, err := db.ExecContext(t.Context(), `UPDATE access_log SET client_id = 'someone-else' WHERE user_id = 'sh-down-tampered' AND sequence = 2`); err != nil {
		t.Fatal(err)
	}
	n, err := svc.SignPendingHeads(t.Context())
	if err != nil || n < 2 {
		t.Fatalf("SignPendingHeads = %d, %v; want sh-down and sh-down-new signed", n, err)
	}
	for _, u := range []string{"sh-down", "sh-down-new"} {
		if h := head(t, st, u); h.Signed.Sequence != h.Sequence {
			t.Errorf("%s's head %+v is not signed", u, h)
		}
		if err := svc.VerifyChain(t.Context(), u); err != nil {
			t.Errorf("VerifyChain(%s) after signing: %v", u, err)
		}
	}
	if h := head(t, st, "sh-down-tampered"); h.Signed.Sequence != 0 {
		t.Errorf("SignPendingHeads signed a chain changed while it waited: %+v", h)
	}
	requireBroken(t, svc, "sh-down-tampered", 2, "hash does not match")

	// And appends sign again.
	record(t, svc, "sh-down", 5, 1)
	if h := head(t, st, "sh-down"); h.Sequence != 6 || h.Signed.Sequence != 6 {
		t.Errorf("head after the outage %+v, want sequence 6 signed", h)
	}
}

func testKeyRotation(t *testing.T, v *vaulttest.Server, st *store.Store) {
	svc := signedService(t, st, headSigner(t, v), clockAt(t0))
	record(t, svc, "sh-rot-old", 0, 3)
	old := head(t, st, "sh-rot-old")
	// A verifier that read the key before the rotation, as a replica would.
	cached := signedService(t, st, headSigner(t, v), clockAt(t0))
	if err := cached.VerifyChain(t.Context(), "sh-rot-old"); err != nil {
		t.Fatal(err)
	}
	version := v.RotateTransitKey(t, signer.DefaultKey)
	if old.Signed.KeyVersion != version-1 {
		t.Fatalf("head before the rotation signed by version %d, want %d", old.Signed.KeyVersion, version-1)
	}

	record(t, svc, "sh-rot-new", 0, 2)
	if h := head(t, st, "sh-rot-new"); h.Signed.KeyVersion != version || !strings.HasPrefix(h.Signed.Value, fmt.Sprintf("vault:v%d:", version)) {
		t.Errorf("head after the rotation %+v, want key version %d", h, version)
	}
	// The signer learns the new version from Vault's answer; the verifier
	// that cached the key before the rotation reads it again on seeing a
	// newer version; a fresh one reads both.
	fresh := signedService(t, st, headSigner(t, v), clockAt(t0))
	for _, verifier := range []*app.Service{svc, cached, fresh} {
		for _, u := range []string{"sh-rot-old", "sh-rot-new"} {
			if err := verifier.VerifyChain(t.Context(), u); err != nil {
				t.Errorf("VerifyChain(%s): %v", u, err)
			}
		}
	}
	// The old head is kept as signed until the chain moves on, then signed
	// by the new version.
	if h := head(t, st, "sh-rot-old"); h.Signed != old.Signed {
		t.Errorf("the old head's signature changed without an append: %+v", h)
	}
	record(t, svc, "sh-rot-old", 3, 1)
	if h := head(t, st, "sh-rot-old"); h.Signed.Sequence != 4 || h.Signed.KeyVersion != version {
		t.Errorf("head after an append %+v, want sequence 4 signed by version %d", h, version)
	}
	if err := fresh.VerifyChain(t.Context(), "sh-rot-old"); err != nil {
		t.Error(err)
	}
}

// TestStoreHeadSignatures: a signature made after its append committed is
// stored only on the head it was made of, and never replaces one that
// covers the head already.
func TestStoreHeadSignatures(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		st := open(t, db)
		const user = "shs"
		svc := service(t, st, t0)
		record(t, svc, user, 0, 1)
		stale := head(t, st, user)
		record(t, svc, user, 1, 1)
		current := head(t, st, user)
		sign := func(h app.ChainHead, value string) map[string]app.ChainHead {
			h.Signed = app.HeadSignature{Sequence: h.Sequence, KeyVersion: 1, Value: value}
			return map[string]app.ChainHead{user: h}
		}

		if got, err := st.StoreHeadSignatures(t.Context(), sign(stale, "sig-of-1")); err != nil || len(got) != 0 {
			t.Errorf("signature of a head that moved on: stored for %v, %v; want none", got, err)
		}
		if h := head(t, st, user); h.Signed.Sequence != 0 {
			t.Errorf("head after a stale signature: %+v, want it unsigned", h)
		}
		if got, err := st.StoreHeadSignatures(t.Context(), sign(current, "sig-of-2")); err != nil || !slices.Equal(got, []string{user}) {
			t.Errorf("signature of the head: stored for %v, %v; want %s", got, err, user)
		}
		if got, err := st.StoreHeadSignatures(t.Context(), sign(current, "another-sig-of-2")); err != nil || len(got) != 0 {
			t.Errorf("second signature of a signed head: stored for %v, %v; want none", got, err)
		}
		if h := head(t, st, user); h.Signed.Sequence != 2 || h.Signed.Value != "sig-of-2" {
			t.Errorf("head = %+v, want signed at 2 by sig-of-2", h)
		}
	})
}
