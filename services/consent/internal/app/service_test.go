package app_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/consent/internal/store"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// Codes the fake bank understands.
const (
	codeRight       = "123456"
	codeWrong       = "000000"
	codeLocks       = "999999" // the bank's own limit
	codeDeclined    = "111111"
	codeUnavailable = "222222"
	codeForgotten   = "333333" // the bank no longer knows the consent
)

// fakeBank is the far side of app.Banks: a bank whose answers each test
// steers, standing in for an adapter at the port the service owns. The
// sandbox bank, through the real adapter SDK, is exercised by the
// end-to-end test.
type fakeBank struct {
	mu          sync.Mutex
	method      app.ScaMethod
	attempts    int       // the bank's attempts_allowed; 0: does not say
	validUntil  time.Time // zero: as requested
	startErr    error
	starts      []app.StartScaRequest
	verifies    []app.VerifyScaRequest
	revoked     chan string
	revokeErr   error // the bank's answer to RevokeConsent while set
	bankLeft    map[string]int
	requestedTo map[string]time.Time

	// ExtendConsent: extendSCA asks for a challenge, extendCap (when set)
	// caps what it grants, extendErr fails it; extends counts the calls.
	extendSCA bool
	extendCap time.Time
	extendErr error
	extends   []app.ExtendConsentRequest
	now       func() time.Time // the fixture's clock, for extension challenges

	// unknown are logins the bank knows no customer by (StartSca answers
	// NOT_FOUND); instructions are the challenge texts of logins whose
	// text is their own; startDelay and verifyDelay are how long StartSca
	// and VerifySca take.
	unknown      map[string]bool
	instructions map[string]string
	startDelay   time.Duration
	verifyDelay  time.Duration
}

func newFakeBank() *fakeBank {
	return &fakeBank{
		method: app.ScaMethodOTP, revoked: make(chan string, 16),
		bankLeft: map[string]int{}, requestedTo: map[string]time.Time{},
		unknown: map[string]bool{}, instructions: map[string]string{},
	}
}

func (b *fakeBank) Bank(id string) (app.BankInfo, error) {
	if id != "acme" && id != "other" {
		return app.BankInfo{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_NOT_FOUND, "no such bank")
	}
	return app.BankInfo{ID: id, DisplayName: "Acme Bank"}, nil
}

func (b *fakeBank) StartSca(_ context.Context, _ string, r app.StartScaRequest) (app.Challenge, error) {
	b.mu.Lock()
	delay := b.startDelay
	b.mu.Unlock()
	// Started at once, the calls race for places under the cap.
	time.Sleep(delay)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.startErr != nil {
		return app.Challenge{}, b.startErr
	}
	b.starts = append(b.starts, r)
	if b.unknown[r.LoginHint] {
		return app.Challenge{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "the bank knows no such customer")
	}
	instruction := "Enter the code"
	if text, ok := b.instructions[r.LoginHint]; ok {
		instruction = text
	}
	// Idempotent on the key, as the protocol asks.
	id := "cns-" + r.IdempotencyKey
	b.requestedTo[id] = r.ValidUntil
	if _, ok := b.bankLeft[id]; !ok {
		b.bankLeft[id] = b.attempts
	}
	now := time.Now()
	if b.now != nil {
		now = b.now() // the fixture's clock
	}
	return app.Challenge{
		BankConsentID: id, Method: b.method, Instruction: instruction,
		ExpireTime: now.Add(5 * time.Minute), AttemptsAllowed: b.attempts,
	}, nil
}

func (b *fakeBank) VerifySca(_ context.Context, _ string, r app.VerifyScaRequest) (app.VerifyScaResult, error) {
	b.mu.Lock()
	b.verifies = append(b.verifies, r)
	delay := b.verifyDelay
	b.mu.Unlock()
	// Checked at once, the codes race for the challenge's attempts.
	time.Sleep(delay)
	b.mu.Lock()
	defer b.mu.Unlock()
	switch r.Code {
	case codeRight, "":
		if b.method != app.ScaMethodOTP && r.Code == "" && len(b.verifies) == 1 {
			return app.VerifyScaResult{Status: app.ScaStatusStarted, BankConsentID: r.BankConsentID}, nil
		}
		until := b.requestedTo[r.BankConsentID]
		if !b.validUntil.IsZero() {
			until = b.validUntil
		}
		return app.VerifyScaResult{Status: app.ScaStatusFinalised, BankConsentID: r.BankConsentID + "-final", ValidUntil: until}, nil
	case codeDeclined:
		return app.VerifyScaResult{Status: app.ScaStatusFailed, BankConsentID: r.BankConsentID}, nil
	case codeLocks:
		return app.VerifyScaResult{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED, "locked")
	case codeUnavailable:
		return app.VerifyScaResult{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, "down", apierr.WithRetryAfter(time.Second))
	case codeForgotten:
		return app.VerifyScaResult{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK, "unknown consent")
	default:
		var opts []apierr.Option
		if left := b.bankLeft[r.BankConsentID]; left > 0 {
			b.bankLeft[r.BankConsentID] = left - 1
			opts = append(opts, apierr.WithMetadata("attempts_remaining", strconv.Itoa(left-1)))
		}
		return app.VerifyScaResult{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_SCA_FAILED, "wrong", opts...)
	}
}

func (b *fakeBank) RevokeConsent(_ context.Context, _, id string) error {
	b.mu.Lock()
	err := b.revokeErr
	b.mu.Unlock()
	if err != nil {
		return err
	}
	b.revoked <- id
	return nil
}

func (b *fakeBank) setRevokeErr(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.revokeErr = err
}

func (b *fakeBank) ExtendConsent(_ context.Context, _ string, r app.ExtendConsentRequest) (app.Extension, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.extends = append(b.extends, r)
	if b.extendErr != nil {
		return app.Extension{}, b.extendErr
	}
	until := r.ValidUntil
	if !b.extendCap.IsZero() && b.extendCap.Before(until) {
		until = b.extendCap
	}
	if b.extendSCA {
		// VerifySca grants what was asked, from the same consent.
		b.requestedTo[r.BankConsentID] = until
		b.bankLeft[r.BankConsentID] = b.attempts
		return app.Extension{Challenge: &app.Challenge{
			BankConsentID: r.BankConsentID, Method: app.ScaMethodOTP, Instruction: "Enter the code to keep sharing",
			ExpireTime: b.now().Add(5 * time.Minute), AttemptsAllowed: b.attempts,
		}}, nil
	}
	return app.Extension{ValidUntil: until}, nil
}

func (b *fakeBank) extendCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.extends)
}

func (b *fakeBank) startCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.starts)
}

func (b *fakeBank) verifyCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.verifies)
}

type fixture struct {
	svc   *app.Service
	bank  *fakeBank
	clock *testkit.Clock
	st    *store.Store
	db    *storage.DB
}

// setup is the service on a SQLite store with the platform's outbox, and
// its bank revocation worker reading that outbox through outboxBus.
func setup(t *testing.T) *fixture {
	t.Helper()
	return setupOn(t, storagetest.OpenSQLite(t), nil)
}

// setupOn is setup on db, with the service's Config edited by edit (when
// not nil).
func setupOn(t *testing.T, db *storage.DB, edit func(*app.Config)) *fixture {
	t.Helper()
	if err := events.Migrate(t.Context(), db); err != nil {
		t.Fatal(err)
	}
	st, err := store.New(t.Context(), db, events.NewOutbox(db), nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{bank: newFakeBank(), clock: testkit.NewClock(time.Now().UTC()), st: st, db: db}
	f.bank.now = f.clock.Now
	cfg := app.Config{Now: f.clock.Now}
	if edit != nil {
		edit(&cfg)
	}
	f.svc, err = app.New(st, f.bank, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.svc.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.svc.RunBankRevocations(ctx, &outboxBus{db: db, retry: 20 * time.Millisecond})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return f
}

var keyN struct {
	sync.Mutex
	n int
}

func key() string {
	keyN.Lock()
	defer keyN.Unlock()
	keyN.n++
	return fmt.Sprintf("key-%08d", keyN.n)
}

func createInput(user string) app.CreateLinkInput {
	return app.CreateLinkInput{
		User: user, BankID: "acme",
		Scopes:         []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS, commonv1.Scope_SCOPE_BALANCES},
		Purposes:       []commonv1.Purpose{commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION},
		LoginHint:      user,
		IdempotencyKey: key(),
	}
}

func (f *fixture) create(t *testing.T, user string) app.Link {
	t.Helper()
	l, err := f.svc.CreateLink(t.Context(), createInput(user))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (f *fixture) verify(t *testing.T, l app.Link, code string) (app.Link, error) {
	t.Helper()
	return f.svc.VerifyLink(t.Context(), app.VerifyLinkInput{User: l.User, LinkID: l.ID, Code: code, IdempotencyKey: key()})
}

// expired returns a VALID link of user's that a day has passed since:
// it has expired, but nothing wrote that down yet. The clock stays moved.
func (f *fixture) expired(t *testing.T, user string) app.Link {
	t.Helper()
	in := createInput(user)
	in.TTL = 24 * time.Hour
	l, err := f.svc.CreateLink(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if l, err = f.verify(t, l, codeRight); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(25 * time.Hour)
	return l
}

func (f *fixture) linked(t *testing.T, user string) app.Link {
	t.Helper()
	l, err := f.verify(t, f.create(t, user), codeRight)
	if err != nil || l.State != app.StateValid {
		t.Fatalf("verify: %v, state %s", err, l.State)
	}
	return l
}

func attemptsRemaining(err error) string {
	return apierr.Info(err).GetMetadata()["attempts_remaining"]
}

func TestCreateLink(t *testing.T) {
	t.Parallel()
	f := setup(t)
	now := f.clock.Now()

	t.Run("stores a RECEIVED link with the bank's challenge", func(t *testing.T) {
		l := f.create(t, "alice")
		if l.State != app.StateReceived || l.SCA.Status != app.ScaStatusStarted || l.SCA.Method != app.ScaMethodOTP {
			t.Errorf("link %+v: want RECEIVED with a STARTED OTP challenge", l)
		}
		if l.SCA.AttemptsRemaining != app.MaxScaAttempts {
			t.Errorf("attempts_remaining = %d, want %d", l.SCA.AttemptsRemaining, app.MaxScaAttempts)
		}
		if want := now.Add(app.DefaultConsentTTL).Truncate(time.Microsecond); !l.ExpireTime.Equal(want) {
			t.Errorf("expire_time = %v, want now + 90 days (%v)", l.ExpireTime, want)
		}
		got, err := f.svc.GetLink(t.Context(), "alice", l.ID)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(l) {
			t.Errorf("GetLink = %+v, %v; want %+v", got, err, l)
		}
		start := f.bank.starts[len(f.bank.starts)-1]
		if start.LoginHint != "alice" || start.UserReference == "" || start.UserReference == "alice" {
			t.Errorf("StartSca got login hint %q and user reference %q: want the hint and a pseudonym", start.LoginHint, start.UserReference)
		}
	})

	tests := []struct {
		name string
		edit func(*app.CreateLinkInput)
		want time.Time
	}{
		{"a shorter ttl", func(in *app.CreateLinkInput) { in.TTL = 10 * 24 * time.Hour }, now.Add(10 * 24 * time.Hour)},
		{"a shorter expire_time", func(in *app.CreateLinkInput) { in.ExpireTime = now.Add(48 * time.Hour) }, now.Add(48 * time.Hour)},
		{"never longer than the consent TTL", func(in *app.CreateLinkInput) { in.TTL = 400 * 24 * time.Hour }, now.Add(app.DefaultConsentTTL)},
	}
	for _, tt := range tests {
		t.Run("expire_time: "+tt.name, func(t *testing.T) {
			in := createInput("exp")
			tt.edit(&in)
			l, err := f.svc.CreateLink(t.Context(), in)
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.want.Truncate(time.Microsecond); !l.ExpireTime.Equal(want) {
				t.Errorf("expire_time = %v, want %v", l.ExpireTime, want)
			}
		})
	}

	t.Run("a retry returns the first link and starts no second challenge", func(t *testing.T) {
		in := createInput("retry")
		first, err := f.svc.CreateLink(t.Context(), in)
		if err != nil {
			t.Fatal(err)
		}
		again, err := f.svc.CreateLink(t.Context(), in)
		if err != nil || again.ID != first.ID {
			t.Fatalf("retry = %s, %v; want link %s", again.ID, err, first.ID)
		}
		in.Scopes = []commonv1.Scope{commonv1.Scope_SCOPE_TRANSACTIONS}
		_, err = f.svc.CreateLink(t.Context(), in)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
	})

	t.Run("concurrent retries make one link", func(t *testing.T) {
		in := createInput("race")
		ids := make(chan string, 8)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				l, err := f.svc.CreateLink(context.Background(), in)
				if err != nil {
					t.Error(err)
				}
				ids <- l.ID
			})
		}
		wg.Wait()
		close(ids)
		first := <-ids
		for id := range ids {
			if id != first {
				t.Errorf("links %s and %s from one key", first, id)
			}
		}
	})

	refusals := []struct {
		name   string
		edit   func(*app.CreateLinkInput)
		reason commonv1.ErrorReason
	}{
		{"advertising", func(in *app.CreateLinkInput) {
			in.Purposes = append(in.Purposes, commonv1.Purpose_PURPOSE_ADVERTISING)
		}, commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED},
		{"marketing", func(in *app.CreateLinkInput) {
			in.Purposes = []commonv1.Purpose{commonv1.Purpose_PURPOSE_MARKETING}
		}, commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED},
		{"unknown bank", func(in *app.CreateLinkInput) { in.BankID = "nope" }, commonv1.ErrorReason_ERROR_REASON_BANK_NOT_FOUND},
	}
	for _, tt := range refusals {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			in := createInput("refused")
			tt.edit(&in)
			_, err := f.svc.CreateLink(t.Context(), in)
			testkit.RequireReason(t, err, tt.reason)
		})
	}
}

func TestVerifyLink(t *testing.T) {
	t.Parallel()

	t.Run("right code: VALID, expiry capped by the bank", func(t *testing.T) {
		f := setup(t)
		bankLimit := f.clock.Now().Add(30 * 24 * time.Hour).Truncate(time.Microsecond)
		f.bank.validUntil = bankLimit
		l := f.linked(t, "alice")
		if l.SCA.Status != app.ScaStatusFinalised || l.VerifyTime.IsZero() || !l.ExpireTime.Equal(bankLimit) {
			t.Errorf("link %+v: want FINALISED, verify_time set, expire_time %v", l, bankLimit)
		}
		if l.BankConsentID != "cns-"+f.bank.starts[0].IdempotencyKey+"-final" {
			t.Errorf("bank consent id %q: want the one the bank issued on completion", l.BankConsentID)
		}
	})

	t.Run("wrong codes count down and the fifth locks", func(t *testing.T) {
		f := setup(t)
		l := f.create(t, "alice")
		for want := 4; want >= 1; want-- {
			_, err := f.verify(t, l, codeWrong)
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED)
			if got := attemptsRemaining(err); got != strconv.Itoa(want) {
				t.Fatalf("attempts_remaining = %s, want %d", got, want)
			}
		}
		got, _ := f.svc.GetLink(t.Context(), "alice", l.ID)
		if got.State != app.StateReceived || got.SCA.AttemptsRemaining != 1 {
			t.Fatalf("after 4 wrong codes: %s with %d attempts left, want RECEIVED with 1", got.State, got.SCA.AttemptsRemaining)
		}
		_, err := f.verify(t, l, codeWrong)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED)
		got, _ = f.svc.GetLink(t.Context(), "alice", l.ID)
		if got.State != app.StateRejected || got.SCA.Status != app.ScaStatusLocked {
			t.Fatalf("after the fifth: %s / %s, want REJECTED / LOCKED", got.State, got.SCA.Status)
		}
		_, err = f.verify(t, l, codeRight)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_LINK_NOT_PENDING)
	})

	t.Run("the bank's lower limit wins", func(t *testing.T) {
		f := setup(t)
		f.bank.attempts = 2
		l := f.create(t, "alice")
		if l.SCA.AttemptsRemaining != 2 {
			t.Fatalf("attempts_remaining = %d, want the bank's 2", l.SCA.AttemptsRemaining)
		}
		_, err := f.verify(t, l, codeWrong)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED)
		if got := attemptsRemaining(err); got != "1" {
			t.Errorf("attempts_remaining = %s, want 1", got)
		}
		_, err = f.verify(t, l, codeLocks)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED)
	})

	t.Run("declined: REJECTED, no error", func(t *testing.T) {
		f := setup(t)
		got, err := f.verify(t, f.create(t, "alice"), codeDeclined)
		if err != nil || got.State != app.StateRejected || got.SCA.Status != app.ScaStatusFailed {
			t.Fatalf("got %s / %s, %v; want REJECTED / FAILED", got.State, got.SCA.Status, err)
		}
	})

	t.Run("bank unavailable: no attempt spent, nothing recorded", func(t *testing.T) {
		f := setup(t)
		l := f.create(t, "alice")
		in := app.VerifyLinkInput{User: "alice", LinkID: l.ID, Code: codeUnavailable, IdempotencyKey: key()}
		_, err := f.svc.VerifyLink(t.Context(), in)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE)
		got, _ := f.svc.GetLink(t.Context(), "alice", l.ID)
		if got.SCA.AttemptsRemaining != app.MaxScaAttempts {
			t.Errorf("attempts_remaining = %d, want all %d", got.SCA.AttemptsRemaining, app.MaxScaAttempts)
		}
		// The same key asks the bank again.
		_, _ = f.svc.VerifyLink(t.Context(), in)
		if n := f.bank.verifyCount(); n != 2 {
			t.Errorf("bank asked %d times, want 2", n)
		}
	})

	t.Run("a retry replays the answer and spends no attempt", func(t *testing.T) {
		f := setup(t)
		l := f.create(t, "alice")
		in := app.VerifyLinkInput{User: "alice", LinkID: l.ID, Code: codeWrong, IdempotencyKey: key()}
		for range 3 {
			_, err := f.svc.VerifyLink(t.Context(), in)
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED)
			if got := attemptsRemaining(err); got != "4" {
				t.Fatalf("attempts_remaining = %s, want 4 every time", got)
			}
		}
		if n := f.bank.verifyCount(); n != 1 {
			t.Errorf("bank asked %d times, want once", n)
		}
		in.Code = codeRight
		_, err := f.svc.VerifyLink(t.Context(), in)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
	})

	t.Run("code rules follow the method", func(t *testing.T) {
		f := setup(t)
		l := f.create(t, "alice")
		_, err := f.verify(t, l, "")
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT)
		f.bank.method = app.ScaMethodDecoupled
		d := f.create(t, "alice")
		if d.SCA.AttemptsRemaining != 0 {
			t.Errorf("decoupled attempts_remaining = %d, want 0", d.SCA.AttemptsRemaining)
		}
		_, err = f.verify(t, d, codeRight)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT)
		polled, err := f.verify(t, d, "")
		if err != nil || polled.State != app.StateReceived {
			t.Fatalf("first poll: %s, %v; want still RECEIVED", polled.State, err)
		}
		done, err := f.verify(t, d, "")
		if err != nil || done.State != app.StateValid {
			t.Fatalf("second poll: %s, %v; want VALID", done.State, err)
		}
	})

	t.Run("an expired challenge rejects the link", func(t *testing.T) {
		f := setup(t)
		l := f.create(t, "alice")
		f.clock.Add(6 * time.Minute)
		got, _ := f.svc.GetLink(t.Context(), "alice", l.ID)
		if got.State != app.StateRejected || got.SCA.Status != app.ScaStatusExpired {
			t.Fatalf("reads as %s / %s, want REJECTED / EXPIRED", got.State, got.SCA.Status)
		}
		_, err := f.verify(t, l, codeRight)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_EXPIRED)
		if n := f.bank.verifyCount(); n != 0 {
			t.Errorf("bank asked %d times about an expired challenge", n)
		}
	})

	t.Run("a bank that forgot the challenge rejects the link", func(t *testing.T) {
		f := setup(t)
		l := f.create(t, "alice")
		_, err := f.verify(t, l, codeForgotten)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_EXPIRED)
		got, _ := f.svc.GetLink(t.Context(), "alice", l.ID)
		if got.State != app.StateRejected || got.SCA.Status != app.ScaStatusExpired {
			t.Fatalf("link is %s / %s, want REJECTED / EXPIRED", got.State, got.SCA.Status)
		}
	})

	t.Run("a new VALID link revokes the older one at the same bank", func(t *testing.T) {
		f := setup(t)
		old := f.linked(t, "alice")
		renewed := f.linked(t, "alice")
		got, _ := f.svc.GetLink(t.Context(), "alice", old.ID)
		if got.State != app.StateRevoked || got.RevokeTime.IsZero() {
			t.Errorf("older link is %s, want REVOKED with revoke_time", got.State)
		}
		select {
		case id := <-f.bank.revoked:
			if id != old.BankConsentID {
				t.Errorf("bank revoked %s, want %s", id, old.BankConsentID)
			}
		case <-time.After(5 * time.Second):
			t.Error("the bank was not told about the replaced consent")
		}
		if renewed.State != app.StateValid {
			t.Errorf("renewed link is %s", renewed.State)
		}
	})
}

func TestRevokeLink(t *testing.T) {
	t.Parallel()
	f := setup(t)
	revoke := func(t *testing.T, l app.Link) app.Link {
		t.Helper()
		got, err := f.svc.RevokeLink(t.Context(), app.RevokeLinkInput{User: l.User, LinkID: l.ID, IdempotencyKey: key()})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	t.Run("VALID becomes REVOKED at once and the bank is told", func(t *testing.T) {
		l := f.linked(t, "alice")
		got := revoke(t, l)
		if got.State != app.StateRevoked || !got.RevokeTime.Equal(f.clock.Now().Truncate(time.Microsecond)) {
			t.Errorf("got %s at %v, want REVOKED now", got.State, got.RevokeTime)
		}
		select {
		case id := <-f.bank.revoked:
			if id != l.BankConsentID {
				t.Errorf("bank revoked %s, want %s", id, l.BankConsentID)
			}
		case <-time.After(5 * time.Second):
			t.Error("the bank was not told")
		}
		again := revoke(t, got)
		if again.State != app.StateRevoked || !again.RevokeTime.Equal(got.RevokeTime) {
			t.Errorf("revoking again changed the link: %+v", again)
		}
	})

	t.Run("RECEIVED: challenge cancelled", func(t *testing.T) {
		got := revoke(t, f.create(t, "bob"))
		if got.State != app.StateRevoked || got.SCA.Status != app.ScaStatusFailed {
			t.Errorf("got %s / %s, want REVOKED / FAILED", got.State, got.SCA.Status)
		}
	})

	t.Run("an expired link stays EXPIRED", func(t *testing.T) {
		l := f.expired(t, "carol")
		if got := revoke(t, l); got.State != app.StateExpired {
			t.Errorf("got %s, want EXPIRED", got.State)
		}
	})

	t.Run("unknown link", func(t *testing.T) {
		_, err := f.svc.RevokeLink(t.Context(), app.RevokeLinkInput{User: "alice", LinkID: "nope", IdempotencyKey: key()})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
	})
}

func TestReportBankRevocation(t *testing.T) {
	t.Parallel()
	f := setup(t)
	report := func(t *testing.T, l app.Link) app.Link {
		t.Helper()
		got, err := f.svc.ReportBankRevocation(t.Context(), l.User, l.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	t.Run("VALID becomes REVOKED by the bank, watchers hear of it, the bank is not asked", func(t *testing.T) {
		l := f.linked(t, "alice")
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		changes := f.svc.WatchChanges(ctx)
		got := report(t, l)
		if got.State != app.StateRevoked || !got.RevokedByBank || !got.RevokeTime.Equal(f.clock.Now().Truncate(time.Microsecond)) {
			t.Fatalf("got %s (by bank %v) at %v, want REVOKED by the bank now", got.State, got.RevokedByBank, got.RevokeTime)
		}
		stored, _ := f.svc.GetLink(t.Context(), "alice", l.ID)
		if stored.State != app.StateRevoked || !stored.RevokedByBank {
			t.Errorf("stored link is %s (by bank %v)", stored.State, stored.RevokedByBank)
		}
		select {
		case c := <-changes:
			if want := (app.Change{User: "alice", LinkID: l.ID, State: app.StateRevoked}); c != want {
				t.Errorf("change %+v, want %+v", c, want)
			}
		case <-time.After(5 * time.Second):
			t.Error("no change published")
		}
		d, err := f.svc.CheckConsent(t.Context(), app.ConsentQuery{User: "alice", BankID: "acme",
			Scope: commonv1.Scope_SCOPE_BALANCES, Purpose: commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION})
		if err != nil || d.Allowed || d.DenialReason != commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK || d.Link != l.Name() {
			t.Errorf("CheckConsent = %+v, %v; want denied CONSENT_REVOKED_BY_BANK naming %s", d, err, l.Name())
		}
		select {
		case id := <-f.bank.revoked:
			t.Errorf("the bank was asked to revoke %s, a consent it no longer has", id)
		case <-time.After(50 * time.Millisecond):
		}

		f.clock.Add(time.Minute)
		again := report(t, got)
		if again.State != app.StateRevoked || !again.RevokeTime.Equal(got.RevokeTime) {
			t.Errorf("a second report changed the link: %+v", again)
		}
	})

	t.Run("a link the user revoked stays as it is", func(t *testing.T) {
		l := f.linked(t, "bob")
		revoked, err := f.svc.RevokeLink(t.Context(), app.RevokeLinkInput{User: "bob", LinkID: l.ID, IdempotencyKey: key()})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-f.bank.revoked:
		case <-time.After(5 * time.Second):
			t.Fatal("the bank was not told of the user's revocation")
		}
		got := report(t, l)
		if got.State != app.StateRevoked || got.RevokedByBank || !got.RevokeTime.Equal(revoked.RevokeTime) {
			t.Errorf("got %+v, want the user's revocation unchanged", got)
		}
	})

	t.Run("RECEIVED: challenge cancelled", func(t *testing.T) {
		got := report(t, f.create(t, "carol"))
		if got.State != app.StateRevoked || !got.RevokedByBank || got.SCA.Status != app.ScaStatusFailed {
			t.Errorf("got %s / %s (by bank %v), want REVOKED by the bank / FAILED", got.State, got.SCA.Status, got.RevokedByBank)
		}
	})

	t.Run("an expired link stays EXPIRED", func(t *testing.T) {
		l := f.expired(t, "dave")
		defer f.clock.Add(-25 * time.Hour)
		if got := report(t, l); got.State != app.StateExpired || got.RevokedByBank {
			t.Errorf("got %s (by bank %v), want EXPIRED", got.State, got.RevokedByBank)
		}
	})

	t.Run("unknown link", func(t *testing.T) {
		_, err := f.svc.ReportBankRevocation(t.Context(), "alice", "nope")
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
	})
}

func TestCheckConsent(t *testing.T) {
	t.Parallel()
	f := setup(t)
	valid := f.linked(t, "alice")
	revokedUser := f.linked(t, "bob")
	if _, err := f.svc.RevokeLink(t.Context(), app.RevokeLinkInput{User: "bob", LinkID: revokedUser.ID, IdempotencyKey: key()}); err != nil {
		t.Fatal(err)
	}
	in := createInput("carol")
	in.TTL = 24 * time.Hour
	short, err := f.svc.CreateLink(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.verify(t, short, codeRight); err != nil {
		t.Fatal(err)
	}
	_ = f.create(t, "dave") // RECEIVED only: covers nothing

	balances, info := commonv1.Scope_SCOPE_BALANCES, commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION
	tests := []struct {
		name   string
		q      app.ConsentQuery
		later  time.Duration
		allow  bool
		reason commonv1.ErrorReason
		link   string
	}{
		{"valid link covers it", app.ConsentQuery{User: "alice", BankID: "acme", Scope: balances, Purpose: info}, 0, true, 0, valid.Name()},
		{"any bank", app.ConsentQuery{User: "alice", Scope: balances, Purpose: info}, 0, true, 0, valid.Name()},
		{"another bank", app.ConsentQuery{User: "alice", BankID: "other", Scope: balances, Purpose: info}, 0, false, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, ""},
		{"scope not granted", app.ConsentQuery{User: "alice", Scope: commonv1.Scope_SCOPE_TRANSACTIONS, Purpose: info}, 0, false, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, ""},
		{"purpose not granted", app.ConsentQuery{User: "alice", Scope: balances, Purpose: commonv1.Purpose_PURPOSE_CUSTOMER_SUPPORT}, 0, false, commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED, valid.Name()},
		{"advertising, whatever the consent", app.ConsentQuery{User: "alice", Scope: balances, Purpose: commonv1.Purpose_PURPOSE_ADVERTISING}, 0, false, commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED, ""},
		{"revoked", app.ConsentQuery{User: "bob", Scope: balances, Purpose: info}, 0, false, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, revokedUser.Name()},
		{"pending link", app.ConsentQuery{User: "dave", Scope: balances, Purpose: info}, 0, false, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, ""},
		{"no link at all", app.ConsentQuery{User: "erin", Scope: balances, Purpose: info}, 0, false, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, ""},
		{"expired, before any sweep", app.ConsentQuery{User: "carol", Scope: balances, Purpose: info}, 25 * time.Hour, false, commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED, short.Name()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.clock.Add(tt.later)
			defer f.clock.Add(-tt.later)
			d, err := f.svc.CheckConsent(t.Context(), tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed != tt.allow || d.DenialReason != tt.reason || d.Link != tt.link {
				t.Errorf("decision %+v; want allowed %v, reason %s, link %q", d, tt.allow, tt.reason, tt.link)
			}
			if d.Allowed && (d.BankConsentID == "" || d.ExpireTime.IsZero()) {
				t.Errorf("allowed without bank consent id or expire time: %+v", d)
			}
		})
	}
}

func TestListLinksPaging(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var want []string
	for range 5 {
		l := f.create(t, "alice")
		// Revoked, so that no more wait for verification than the cap allows.
		if _, err := f.svc.RevokeLink(t.Context(), app.RevokeLinkInput{User: "alice", LinkID: l.ID, IdempotencyKey: key()}); err != nil {
			t.Fatal(err)
		}
		want = append([]string{l.ID}, want...)
		f.clock.Add(time.Second)
	}
	var got []string
	token := ""
	for {
		page, next, err := f.svc.ListLinks(t.Context(), app.ListLinksInput{User: "alice", PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range page {
			got = append(got, l.ID)
		}
		if next == "" {
			break
		}
		token = next
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("pages gave %v, want %v", got, want)
	}

	_, next, err := f.svc.ListLinks(t.Context(), app.ListLinksInput{User: "alice", PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	bad := []struct{ name, token string }{
		{"from a list with other filters", next},
		{"malformed", "not-a-token"},
	}
	for _, tt := range bad {
		t.Run("refuses a token "+tt.name, func(t *testing.T) {
			_, _, err := f.svc.ListLinks(t.Context(), app.ListLinksInput{User: "alice", State: app.StateValid, PageToken: tt.token})
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_PAGE_TOKEN_INVALID)
		})
	}
}

func TestLinkAt(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	base := app.Link{ExpireTime: now.Add(time.Hour), SCA: app.SCA{ExpireTime: now.Add(time.Minute), Status: app.ScaStatusStarted, AttemptsRemaining: 3}}
	tests := []struct {
		name      string
		state     app.State
		at        time.Time
		want      app.State
		wantScaSt app.ScaStatus
	}{
		{"valid before its end", app.StateValid, now, app.StateValid, app.ScaStatusStarted},
		{"valid at its end is expired, a running reconfirmation with it", app.StateValid, now.Add(time.Hour), app.StateExpired, app.ScaStatusExpired},
		{"valid after its reconfirmation's challenge ends stays valid", app.StateValid, now.Add(time.Minute), app.StateValid, app.ScaStatusExpired},
		{"received before the challenge ends", app.StateReceived, now, app.StateReceived, app.ScaStatusStarted},
		{"received after the challenge ends is rejected", app.StateReceived, now.Add(time.Minute), app.StateRejected, app.ScaStatusExpired},
		{"revoked stays revoked", app.StateRevoked, now.Add(2 * time.Hour), app.StateRevoked, app.ScaStatusStarted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := base
			l.State = tt.state
			got := l.At(tt.at)
			if got.State != tt.want || got.SCA.Status != tt.wantScaSt {
				t.Errorf("At = %s / %s, want %s / %s", got.State, got.SCA.Status, tt.want, tt.wantScaSt)
			}
		})
	}
}

// TestChainHashVector pins the canonical encoding: a user's own checker,
// written from the documentation, must get this hash.
func TestChainHashVector(t *testing.T) {
	t.Parallel()
	e := app.AccessEntry{
		Sequence:     1,
		AccessTime:   time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC),
		ClientID:     "chat-app",
		Method:       "/bankbridge.balance.v1.BalanceService/GetBalance",
		Resource:     "users/alice/accounts/a1/balance",
		Purpose:      commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION,
		Scope:        commonv1.Scope_SCOPE_BALANCES,
		Outcome:      app.OutcomeDenied,
		Reason:       "CONSENT_REVOKED",
		TraceID:      "4bf92f3577b34da6a3ce929d0e0e4736",
		PreviousHash: app.GenesisHash,
	}
	const want = "9ef8b471c8f05e9dd08e15aedfc3924473aadf4aa01ef0abdaed51eade5a9491"
	if got := app.ChainHash(e); got != want {
		t.Errorf("ChainHash = %s, want %s", got, want)
	}

	// With a subject: subject_id goes between trace_id and previous_hash.
	next := app.AccessEntry{
		Sequence:     2,
		AccessTime:   time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC),
		ClientID:     "chat-app",
		SubjectID:    "5f0c3a9e1b7d4c2a8e6f0b1d3c5a7e9f",
		Method:       "/bankbridge.balance.v1.BalanceService/GetBalance",
		Resource:     "users/alice/accounts/a1/balance",
		Purpose:      commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION,
		Scope:        commonv1.Scope_SCOPE_BALANCES,
		Outcome:      app.OutcomeAllowed,
		TraceID:      "4bf92f3577b34da6a3ce929d0e0e4736",
		PreviousHash: want,
	}
	const wantNext = "0d500479cdc9b07fa51d9367988e0b4d18803f8052ee338cab2026bec00ee5b5"
	if got := app.ChainHash(next); got != wantNext {
		t.Errorf("ChainHash with a subject = %s, want %s", got, wantNext)
	}
	blanked := next
	blanked.SubjectID = ""
	if app.ChainHash(blanked) == wantNext {
		t.Error("blanking subject_id leaves the hash unchanged")
	}
}
