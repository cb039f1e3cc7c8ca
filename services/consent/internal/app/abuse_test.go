package app_test

// Issue 13, linking abuse, at the service's logic over a real store (SQLite
// and PostgreSQL) with a fake bank: decoy links for logins the bank does
// not know, the cap on links waiting for verification, wrong codes counted
// across links with a cooldown, attempts claimed before the bank is asked,
// and request fingerprints keyed. The same attacks through the gRPC server,
// the sandbox bank and Vault are in ../../linking_abuse_test.go.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// createAs is createInput for user with another bank login.
func createAs(user, login string) app.CreateLinkInput {
	in := createInput(user)
	in.LoginHint = login
	return in
}

// comparable is what the user sees of a link, without what differs from
// one link to the next anyway (ids, times).
func comparable(l app.Link) string {
	l.User, l.ID, l.BankConsentID, l.LoginHash, l.Decoy = "", "", "", "", false
	l.CreateTime, l.UpdateTime, l.ExpireTime, l.SCA.ExpireTime = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return fmt.Sprintf("%+v", l)
}

func TestUnknownLoginGetsADecoyLink(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.bank.unknown["nobody"] = true
	f.bank.instructions["carol"] = "Enter the code we sent to your phone ending 12"

	t.Run("before the bank's challenge is known to be everyone's, a decoy's is generic", func(t *testing.T) {
		// carol's text names her phone: a decoy must not show it to anyone.
		f.create(t, "carol")
		l, err := f.svc.CreateLink(t.Context(), createAs("mallory", "nobody"))
		if err != nil {
			t.Fatalf("CreateLink with an unknown login: %v, want a link", err)
		}
		if strings.Contains(l.SCA.Instruction, "12") || l.State != app.StateReceived || l.SCA.Status != app.ScaStatusStarted {
			t.Errorf("decoy %+v: want RECEIVED, STARTED, without carol's instruction", l)
		}
	})

	// Two users are shown the same challenge: it is the bank's own.
	f.create(t, "alice")
	f.create(t, "bob")
	real, err := f.svc.CreateLink(t.Context(), createAs("probe", "dave"))
	if err != nil {
		t.Fatal(err)
	}
	starts := f.bank.startCount()
	decoy, err := f.svc.CreateLink(t.Context(), createAs("probe", "nobody"))
	if err != nil {
		t.Fatalf("CreateLink with an unknown login: %v, want a link", err)
	}
	t.Run("the answer is the same as for a known login", func(t *testing.T) {
		if got, want := comparable(decoy), comparable(real); got != want {
			t.Errorf("unknown login:\n%s\nknown login:\n%s", got, want)
		}
		if d := decoy.SCA.ExpireTime.Sub(real.SCA.ExpireTime); d < 0 || d > time.Second {
			t.Errorf("decoy's challenge expires %s after the real one's, want about the same", d)
		}
		if n := f.bank.startCount(); n != starts+1 {
			t.Errorf("the bank was asked %d times for the unknown login, want once, as for any", n-starts)
		}
	})

	t.Run("no code passes the decoy: each costs an attempt, the fifth locks it", func(t *testing.T) {
		verifies := f.bank.verifyCount()
		for want := 4; want >= 1; want-- {
			_, err := f.verify(t, decoy, codeRight)
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED)
			if got := attemptsRemaining(err); got != fmt.Sprint(want) {
				t.Fatalf("attempts_remaining = %s, want %d", got, want)
			}
		}
		_, err := f.verify(t, decoy, codeRight)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED)
		got, _ := f.svc.GetLink(t.Context(), "probe", decoy.ID)
		if got.State != app.StateRejected || got.SCA.Status != app.ScaStatusLocked {
			t.Errorf("decoy after five codes: %s / %s, want REJECTED / LOCKED", got.State, got.SCA.Status)
		}
		// The bank is asked as for a real link, so the time does not tell.
		if n := f.bank.verifyCount() - verifies; n != 5 {
			t.Errorf("the bank was asked %d times, want 5", n)
		}
	})

	t.Run("a decoy never covers data", func(t *testing.T) {
		d, err := f.svc.CheckConsent(t.Context(), app.ConsentQuery{
			User: "probe", BankID: "acme", Scope: commonv1.Scope_SCOPE_BALANCES, Purpose: commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION,
		})
		if err != nil || d.Allowed {
			t.Errorf("CheckConsent = %+v, %v; want denied", d, err)
		}
	})
}

// retryAfter is the delay err's RetryInfo asks for; the test fails
// without one.
func retryAfter(t *testing.T, err error) time.Duration {
	t.Helper()
	ri := testkit.RetryInfo(err)
	if ri == nil {
		t.Fatalf("%v carries no RetryInfo", err)
	}
	return ri.GetRetryDelay().AsDuration()
}

// each runs suite on a fresh service over SQLite and over PostgreSQL.
func each(t *testing.T, edit func(*app.Config), suite func(t *testing.T, f *fixture)) {
	storagetest.Each(t, func(t *testing.T, db *storage.DB) { suite(t, setupOn(t, db, edit)) })
}

func TestPendingLinksAreCapped(t *testing.T) {
	t.Parallel()
	each(t, nil, func(t *testing.T, f *fixture) {
		var pending []app.Link
		for range app.DefaultPendingLinkLimit {
			pending = append(pending, f.create(t, "alice"))
		}
		starts := f.bank.startCount()
		_, err := f.svc.CreateLink(t.Context(), createInput("alice"))
		md := testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_PENDING_LINKS_LIMIT)
		if md["limit"] != fmt.Sprint(app.DefaultPendingLinkLimit) {
			t.Errorf("metadata limit = %q, want %d", md["limit"], app.DefaultPendingLinkLimit)
		}
		// Retry once the first challenge expires.
		if retry := retryAfter(t, err); retry <= 0 || retry > 5*time.Minute+time.Second {
			t.Errorf("RetryInfo %s, want until the first challenge expires (at most 5m)", retry)
		}
		if n := f.bank.startCount(); n != starts {
			t.Errorf("the bank started %d more challenges over the cap", n-starts)
		}

		t.Run("other banks and users are not held back", func(t *testing.T) {
			in := createInput("alice")
			in.BankID = "other"
			if _, err := f.svc.CreateLink(t.Context(), in); err != nil {
				t.Errorf("alice at another bank: %v", err)
			}
			f.create(t, "bob")
		})

		t.Run("a revoked link no longer counts", func(t *testing.T) {
			if _, err := f.svc.RevokeLink(t.Context(), app.RevokeLinkInput{User: "alice", LinkID: pending[0].ID, IdempotencyKey: key()}); err != nil {
				t.Fatal(err)
			}
			f.create(t, "alice")
			_, err := f.svc.CreateLink(t.Context(), createInput("alice"))
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_PENDING_LINKS_LIMIT)
		})

		t.Run("a verified link no longer counts", func(t *testing.T) {
			if _, err := f.verify(t, pending[1], codeRight); err != nil {
				t.Fatal(err)
			}
			f.create(t, "alice")
		})

		t.Run("links whose challenge expired no longer count", func(t *testing.T) {
			f.clock.Add(6 * time.Minute)
			for range app.DefaultPendingLinkLimit {
				f.create(t, "alice")
			}
		})

		t.Run("calls made at once cannot pass the cap together", func(t *testing.T) {
			f.bank.mu.Lock()
			f.bank.startDelay = 30 * time.Millisecond
			f.bank.mu.Unlock()
			starts := f.bank.startCount()
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				made    int
				refused int
			)
			for range 10 {
				wg.Go(func() {
					_, err := f.svc.CreateLink(context.Background(), createInput("carol"))
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						made++
					case apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_PENDING_LINKS_LIMIT):
						refused++
					default:
						t.Errorf("CreateLink: %v", err)
					}
				})
			}
			wg.Wait()
			if made != app.DefaultPendingLinkLimit || refused != 10-made {
				t.Errorf("%d links made, %d refused; want %d made", made, refused, app.DefaultPendingLinkLimit)
			}
			if n := f.bank.startCount() - starts; n != app.DefaultPendingLinkLimit {
				t.Errorf("the bank started %d challenges, want %d", n, app.DefaultPendingLinkLimit)
			}
		})
	})
}

func TestWrongCodesCoolDownAcrossLinks(t *testing.T) {
	t.Parallel()
	each(t, nil, func(t *testing.T, f *fixture) {
		wrong := func(l app.Link, n int) {
			t.Helper()
			for range n {
				_, err := f.verify(t, l, codeWrong)
				testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED)
			}
		}
		first := f.create(t, "alice")
		wrong(first, 3)
		second := f.create(t, "alice")
		wrong(second, 2) // the fifth wrong code of alice's login at acme

		verifies := f.bank.verifyCount()
		_, err := f.verify(t, second, codeWrong)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_COOLDOWN)
		if retry := retryAfter(t, err); retry < 59*time.Minute || retry > time.Hour {
			t.Errorf("RetryInfo %s, want about the cooldown, 1h", retry)
		}
		_, err = f.verify(t, first, codeRight)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_COOLDOWN)
		_, err = f.svc.CreateLink(t.Context(), createInput("alice"))
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_COOLDOWN)
		if n := f.bank.verifyCount(); n != verifies {
			t.Errorf("the bank checked %d codes during the cooldown", n-verifies)
		}

		t.Run("another login, user or bank is not held back", func(t *testing.T) {
			if _, err := f.svc.CreateLink(t.Context(), createAs("alice", "alice-at-work")); err != nil {
				t.Errorf("alice with another login: %v", err)
			}
			f.create(t, "bob")
			in := createInput("alice")
			in.BankID = "other"
			if _, err := f.svc.CreateLink(t.Context(), in); err != nil {
				t.Errorf("alice at another bank: %v", err)
			}
		})

		t.Run("after the cooldown codes are taken again, counted afresh", func(t *testing.T) {
			f.clock.Add(time.Hour)
			l := f.create(t, "alice")
			for want := 4; want >= 1; want-- {
				_, err := f.verify(t, l, codeWrong)
				if got := attemptsRemaining(err); got != fmt.Sprint(want) {
					t.Fatalf("after the cooldown: %v, want SCA_FAILED with %d left", err, want)
				}
			}
		})
	})

	t.Run("a window that is over starts the count again", func(t *testing.T) {
		f := setup(t)
		wrongs := func(n int) {
			l := f.create(t, "alice")
			for range n {
				_, err := f.verify(t, l, codeWrong)
				testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED)
			}
		}
		wrongs(4)
		f.clock.Add(app.DefaultScaFailureWindow + time.Minute)
		wrongs(4)
	})

	t.Run("the right code starts the count again", func(t *testing.T) {
		f := setup(t)
		l := f.create(t, "alice")
		for range 4 {
			_, err := f.verify(t, l, codeWrong)
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED)
		}
		if _, err := f.verify(t, l, codeRight); err != nil {
			t.Fatal(err)
		}
		l = f.create(t, "alice")
		for range 4 {
			_, err := f.verify(t, l, codeWrong)
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED)
		}
	})

	t.Run("a code the bank could not check does not count", func(t *testing.T) {
		f := setup(t)
		l := f.create(t, "alice")
		for range 10 {
			_, err := f.verify(t, l, codeUnavailable)
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE)
		}
		got, _ := f.svc.GetLink(t.Context(), "alice", l.ID)
		if got.SCA.AttemptsRemaining != app.MaxScaAttempts {
			t.Errorf("after ten codes the bank could not check: %d attempts left, want %d", got.SCA.AttemptsRemaining, app.MaxScaAttempts)
		}
		_, err := f.verify(t, l, codeWrong)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED)
	})
}

func TestCodesAtOnceCannotMultiplyAttempts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(*app.Config)
	}{
		// Only the link's own attempts hold: the login's limit is far off.
		{"the link's attempts", func(c *app.Config) { c.ScaFailureLimit = 100 }},
		{"the login's limit", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			each(t, tt.edit, func(t *testing.T, f *fixture) {
				f.bank.verifyDelay = 50 * time.Millisecond
				l := f.create(t, "alice")
				reasons := make(chan commonv1.ErrorReason, 10)
				var wg sync.WaitGroup
				for i := range 10 {
					wg.Go(func() {
						_, err := f.svc.VerifyLink(context.Background(), app.VerifyLinkInput{
							User: "alice", LinkID: l.ID, Code: fmt.Sprintf("%06d", i), IdempotencyKey: key(),
						})
						reasons <- apierr.Reason(err)
					})
				}
				wg.Wait()
				close(reasons)
				counts := map[commonv1.ErrorReason]int{}
				for r := range reasons {
					counts[r]++
				}
				if n := f.bank.verifyCount(); n > app.MaxScaAttempts {
					t.Errorf("%d codes reached the bank, want at most %d (answers %v)", n, app.MaxScaAttempts, counts)
				}
				// The codes past the attempts are refused without the bank:
				// SCA_COOLDOWN while others are being checked, LINK_NOT_PENDING
				// once the link is locked.
				if refused := counts[commonv1.ErrorReason_ERROR_REASON_SCA_COOLDOWN] + counts[commonv1.ErrorReason_ERROR_REASON_LINK_NOT_PENDING]; refused < 10-app.MaxScaAttempts {
					t.Errorf("answers %v: want at least %d codes refused", counts, 10-app.MaxScaAttempts)
				}
				got, _ := f.svc.GetLink(t.Context(), "alice", l.ID)
				if got.State != app.StateRejected || got.SCA.Status != app.ScaStatusLocked {
					t.Errorf("link after the codes: %s / %s; want REJECTED / LOCKED (answers %v)", got.State, got.SCA.Status, counts)
				}
			})
		})
	}
}

func TestCodeFingerprintIsKeyed(t *testing.T) {
	t.Parallel()
	key1, key2 := []byte(strings.Repeat("k", 32)), []byte(strings.Repeat("K", 32))
	login := []byte(strings.Repeat("l", 32))
	f := setupOn(t, storagetest.OpenSQLite(t), func(c *app.Config) {
		c.Keys = func() app.Keys { return app.Keys{Code: [][]byte{key1}, Login: login} }
	})
	l := f.create(t, "alice")
	in := app.VerifyLinkInput{User: "alice", LinkID: l.ID, Code: codeWrong, IdempotencyKey: key()}
	_, err := f.svc.VerifyLink(t.Context(), in)
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED)

	rec, err := f.st.Idempotency(t.Context(), "alice", "VerifyLink", in.IdempotencyKey)
	if err != nil {
		t.Fatal(err)
	}
	// What an unkeyed hash would be: anyone who reads the table could try
	// the million six-digit codes against it.
	plain := sha256.New()
	fmt.Fprintf(plain, "%d:%s\n%d:%s\n", len(l.ID), l.ID, len(codeWrong), codeWrong)
	code := sha256.Sum256([]byte(codeWrong))
	for _, h := range []string{hex.EncodeToString(plain.Sum(nil)), hex.EncodeToString(code[:])} {
		if rec.RequestHash == h {
			t.Fatalf("stored fingerprint %s is a plain SHA-256 of the code", rec.RequestHash)
		}
	}
	if strings.Contains(rec.RequestHash, codeWrong) {
		t.Fatalf("stored fingerprint %s holds the code", rec.RequestHash)
	}

	// The same request under another key: another fingerprint, so the
	// retry is refused as another request...
	other, err := app.New(f.st, f.bank, app.Config{Now: f.clock.Now,
		Keys: func() app.Keys { return app.Keys{Code: [][]byte{key2}, Login: login} }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	_, err = other.VerifyLink(t.Context(), in)
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
	// ...unless the first key is still there, as the previous one.
	rotated, err := app.New(f.st, f.bank, app.Config{Now: f.clock.Now,
		Keys: func() app.Keys { return app.Keys{Code: [][]byte{key2, key1}, Login: login} }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rotated.Close)
	verifies := f.bank.verifyCount()
	_, err = rotated.VerifyLink(t.Context(), in)
	if got := attemptsRemaining(err); !apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED) || got != "4" {
		t.Errorf("retry while the key rotates: %v, want the first answer (SCA_FAILED, 4 left)", err)
	}
	if n := f.bank.verifyCount(); n != verifies {
		t.Errorf("the retry asked the bank again")
	}
}

func TestRetriesAtOnceSpendOneAttempt(t *testing.T) {
	t.Parallel()
	each(t, nil, func(t *testing.T, f *fixture) {
		f.bank.verifyDelay = 30 * time.Millisecond
		l := f.create(t, "alice")
		in := app.VerifyLinkInput{User: "alice", LinkID: l.ID, Code: codeWrong, IdempotencyKey: key()}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				_, err := f.svc.VerifyLink(context.Background(), in)
				// The first answer, or, while the first is being checked,
				// come back in a moment.
				if got := attemptsRemaining(err); got != "4" && !apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_SCA_COOLDOWN) {
					t.Errorf("a retry: %v, want SCA_FAILED with 4 left, or SCA_COOLDOWN", err)
				}
			})
		}
		wg.Wait()
		if n := f.bank.verifyCount(); n != 1 {
			t.Errorf("the bank checked the code %d times, want once", n)
		}
		got, _ := f.svc.GetLink(t.Context(), "alice", l.ID)
		if got.SCA.AttemptsRemaining != 4 {
			t.Errorf("after four retries of one code: %d attempts left, want 4", got.SCA.AttemptsRemaining)
		}
		_, err := f.svc.VerifyLink(t.Context(), in)
		if got := attemptsRemaining(err); got != "4" {
			t.Errorf("a retry afterwards: %v, want the first answer", err)
		}
	})
}
