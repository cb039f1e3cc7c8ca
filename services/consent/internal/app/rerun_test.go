package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/consent/internal/store"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// committedTwice is the store with every IdempotentTx run twice, both
// runs committed: what the run again after a connection lost at COMMIT
// does (storage.Idempotent), the worst case app.Store allows.
type committedTwice struct{ *store.Store }

func (s committedTwice) IdempotentTx(ctx context.Context, fn func(app.Tx) error) error {
	if err := s.Store.IdempotentTx(ctx, fn); err != nil {
		return err
	}
	return s.Store.IdempotentTx(ctx, fn)
}

// A code's claim run again after it committed must find the call's own
// claim and go to the bank, not refuse the call its own attempt.
func TestAClaimRunAgainAfterItCommittedTakesOneAttempt(t *testing.T) {
	t.Parallel()
	db := storagetest.OpenSQLite(t)
	if err := events.Migrate(t.Context(), db); err != nil {
		t.Fatal(err)
	}
	st, err := store.New(t.Context(), db, events.NewOutbox(db), nil)
	if err != nil {
		t.Fatal(err)
	}
	bank := newFakeBank()
	clock := testkit.NewClock(time.Now().UTC())
	bank.now = clock.Now
	svc, err := app.New(committedTwice{st}, bank, app.Config{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)

	l, err := svc.CreateLink(t.Context(), createInput("rerun"))
	if err != nil {
		t.Fatalf("CreateLink: %v", err)
	}
	_, err = svc.VerifyLink(t.Context(), app.VerifyLinkInput{User: l.User, LinkID: l.ID, Code: codeWrong, IdempotencyKey: key()})
	if !apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED) || attemptsRemaining(err) != "4" {
		t.Errorf("VerifyLink with a wrong code: %v, want SCA_FAILED with 4 attempts left", err)
	}
	if n := bank.verifyCount(); n != 1 {
		t.Errorf("the bank checked %d codes, want 1", n)
	}
	got, err := svc.GetLink(t.Context(), l.User, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.SCA.AttemptsRemaining != 4 {
		t.Errorf("%d attempts left, want 4", got.SCA.AttemptsRemaining)
	}
	l, err = svc.VerifyLink(t.Context(), app.VerifyLinkInput{User: l.User, LinkID: l.ID, Code: codeRight, IdempotencyKey: key()})
	if err != nil || l.State != app.StateValid {
		t.Errorf("VerifyLink with the code: %v, %v; want VALID", l.State, err)
	}
}
