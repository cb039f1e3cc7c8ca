package sandbox_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/adapters/conformance"
	"github.com/bankbridge/bankbridge/adapters/sandbox"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// cards is a sandbox with alice linked, seen through the registry.
type cards struct {
	t       *testing.T
	c       adapterv1.BankAdapterServiceClient
	clock   *clock
	consent string
	keys    int
}

func newCards(t *testing.T) *cards {
	t.Helper()
	clk := &clock{now: time.Now()}
	c := inProcess(t, newBank(t, sandbox.Options{Now: clk.Now}), nil)
	return &cards{t: t, c: c, clock: clk, consent: link(t, c, "alice")}
}

func (cs *cards) key() string {
	cs.keys++
	return fmt.Sprintf("key-%08d", cs.keys)
}

func (cs *cards) list() map[string]*adapterv1.Card {
	cs.t.Helper()
	resp, err := cs.c.ListCards(cs.t.Context(), &adapterv1.ListCardsRequest{BankConsentId: cs.consent})
	if err != nil {
		cs.t.Fatal(err)
	}
	out := map[string]*adapterv1.Card{}
	for _, c := range resp.GetCards() {
		out[c.GetBankCardId()] = c
	}
	return out
}

func (cs *cards) block(account, card string, reason adapterv1.CardBlockReason) (*adapterv1.BlockCardResponse, error) {
	return cs.c.BlockCard(cs.t.Context(), &adapterv1.BlockCardRequest{
		BankConsentId: cs.consent, BankAccountId: account, BankCardId: card, Reason: reason, IdempotencyKey: cs.key(),
	})
}

func (cs *cards) startUnblock(card string) (*adapterv1.StartCardUnblockResponse, error) {
	return cs.c.StartCardUnblock(cs.t.Context(), &adapterv1.StartCardUnblockRequest{
		BankConsentId: cs.consent, BankCardId: card, IdempotencyKey: cs.key(),
	})
}

func (cs *cards) verify(card, challenge, code string) (*adapterv1.VerifyCardUnblockResponse, error) {
	return cs.c.VerifyCardUnblock(cs.t.Context(), &adapterv1.VerifyCardUnblockRequest{
		BankConsentId: cs.consent, BankCardId: card, ChallengeId: challenge, Code: code, IdempotencyKey: cs.key(),
	})
}

const (
	debitCard     = "card-alice-debit"
	debitAccount  = "acc-alice-checking"
	creditCard    = "card-alice-credit"
	creditAccount = "acc-alice-card"
)

func TestListCards(t *testing.T) {
	t.Parallel()
	cs := newCards(t)
	got := cs.list()
	want := map[string]struct{ account, last4 string }{
		debitCard:  {debitAccount, "1043"},
		creditCard: {creditAccount, "7712"},
	}
	if len(got) != len(want) {
		t.Fatalf("cards %v, want %d", got, len(want))
	}
	for id, w := range want {
		c := got[id]
		if c.GetBankAccountId() != w.account || c.GetMaskedNumber().GetLast4() != w.last4 ||
			c.GetState() != adapterv1.CardState_CARD_STATE_ACTIVE || c.GetBlockReason() != adapterv1.CardBlockReason_CARD_BLOCK_REASON_UNSPECIFIED {
			t.Errorf("card %s: %v", id, c)
		}
		if paths := conformance.UnmaskedNumbers(c); len(paths) > 0 {
			t.Errorf("card %s shows a full number at %v", id, paths)
		}
	}

	bob := link(t, cs.c, "bob")
	resp, err := cs.c.ListCards(t.Context(), &adapterv1.ListCardsRequest{BankConsentId: bob})
	if err != nil || len(resp.GetCards()) != 0 {
		t.Errorf("bob's cards: %v, %v; want none", resp.GetCards(), err)
	}
}

// TestCardBlockAndUnblock follows a card from ACTIVE to BLOCKED and back,
// through a challenge with a wrong code first.
func TestCardBlockAndUnblock(t *testing.T) {
	t.Parallel()
	cs := newCards(t)
	blocked, err := cs.block(debitAccount, debitCard, adapterv1.CardBlockReason_CARD_BLOCK_REASON_LOST)
	if err != nil {
		t.Fatal(err)
	}
	if blocked.GetStatus() != adapterv1.CardBlockStatus_CARD_BLOCK_STATUS_BLOCKED || len(blocked.GetMaskedCardNumbers()) != 1 ||
		blocked.GetMaskedCardNumbers()[0].GetLast4() != "1043" {
		t.Errorf("BlockCard: %v", blocked)
	}
	again, err := cs.block(debitAccount, debitCard, adapterv1.CardBlockReason_CARD_BLOCK_REASON_FRAUD_SUSPECTED)
	if err != nil || again.GetStatus() != adapterv1.CardBlockStatus_CARD_BLOCK_STATUS_BLOCKED {
		t.Errorf("blocking a blocked card: %v, %v; want BLOCKED", again.GetStatus(), err)
	}
	list := cs.list()
	if c := list[debitCard]; c.GetState() != adapterv1.CardState_CARD_STATE_BLOCKED || c.GetBlockReason() != adapterv1.CardBlockReason_CARD_BLOCK_REASON_LOST {
		t.Errorf("blocked card: %v, want BLOCKED for the first reason, LOST", c)
	}
	if c := list[creditCard]; c.GetState() != adapterv1.CardState_CARD_STATE_ACTIVE {
		t.Errorf("the other card: %v, want ACTIVE", c)
	}

	challenge, err := cs.startUnblock(debitCard)
	if err != nil {
		t.Fatal(err)
	}
	if challenge.GetMethod() != adapterv1.ScaMethod_SCA_METHOD_OTP || challenge.GetAttemptsAllowed() != 3 ||
		!strings.Contains(challenge.GetChallengeText(), sandbox.Code) || !challenge.GetExpireTime().AsTime().After(time.Now()) {
		t.Errorf("StartCardUnblock: %v", challenge)
	}
	_, err = cs.verify(debitCard, challenge.GetChallengeId(), "654321")
	wantReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED)
	if got := apierr.Info(err).GetMetadata()["attempts_remaining"]; got != "2" {
		t.Errorf("a wrong code: attempts_remaining %q, want 2", got)
	}
	if c := cs.list()[debitCard]; c.GetState() != adapterv1.CardState_CARD_STATE_BLOCKED {
		t.Errorf("after a wrong code: %v, want still BLOCKED", c)
	}
	done, err := cs.verify(debitCard, challenge.GetChallengeId(), sandbox.Code)
	if err != nil || done.GetStatus() != adapterv1.ScaStatus_SCA_STATUS_FINALISED {
		t.Fatalf("the right code: %v, %v; want FINALISED", done.GetStatus(), err)
	}
	if c := cs.list()[debitCard]; c.GetState() != adapterv1.CardState_CARD_STATE_ACTIVE || c.GetBlockReason() != adapterv1.CardBlockReason_CARD_BLOCK_REASON_UNSPECIFIED {
		t.Errorf("after the unblock: %v, want ACTIVE without a block reason", c)
	}
	asked, err := cs.verify(debitCard, challenge.GetChallengeId(), "")
	if err != nil || asked.GetStatus() != adapterv1.ScaStatus_SCA_STATUS_FINALISED {
		t.Errorf("asking again after FINALISED: %v, %v; want FINALISED", asked.GetStatus(), err)
	}
	_, err = cs.startUnblock(debitCard)
	wantReason(t, err, commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION)
}

// TestCardUnblockLocks: three wrong codes lock the challenge; a new one
// starts afresh.
func TestCardUnblockLocks(t *testing.T) {
	t.Parallel()
	cs := newCards(t)
	if _, err := cs.block(creditAccount, "", adapterv1.CardBlockReason_CARD_BLOCK_REASON_LOST); err != nil {
		t.Fatal(err)
	}
	challenge, err := cs.startUnblock(creditCard)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		code          string
		want          commonv1.ErrorReason
		wantRemaining string
	}{
		{code: "111111", want: commonv1.ErrorReason_ERROR_REASON_SCA_FAILED, wantRemaining: "2"},
		{code: "222222", want: commonv1.ErrorReason_ERROR_REASON_SCA_FAILED, wantRemaining: "1"},
		{code: "333333", want: commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED},
		{code: sandbox.Code, want: commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED},
	}
	for i, tt := range tests {
		_, err := cs.verify(creditCard, challenge.GetChallengeId(), tt.code)
		wantReason(t, err, tt.want)
		if got := apierr.Info(err).GetMetadata()["attempts_remaining"]; got != tt.wantRemaining {
			t.Errorf("code #%d: attempts_remaining %q, want %q", i+1, got, tt.wantRemaining)
		}
	}
	fresh, err := cs.startUnblock(creditCard)
	if err != nil {
		t.Fatal(err)
	}
	if done, err := cs.verify(creditCard, fresh.GetChallengeId(), sandbox.Code); err != nil || done.GetStatus() != adapterv1.ScaStatus_SCA_STATUS_FINALISED {
		t.Errorf("a new challenge after the lock: %v, %v", done.GetStatus(), err)
	}
}

func TestCardUnblockRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// call runs on a sandbox where alice's debit card is blocked as
		// LOST and challenge is the unblock challenge started for it.
		call func(cs *cards, challenge string) error
		want commonv1.ErrorReason
	}{
		{name: "StartCardUnblock of an active card", want: commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION, call: func(cs *cards, _ string) error {
			_, err := cs.startUnblock(creditCard)
			return err
		}},
		{name: "StartCardUnblock of a card reported stolen", want: commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION, call: func(cs *cards, _ string) error {
			if _, err := cs.block(debitAccount, debitCard, adapterv1.CardBlockReason_CARD_BLOCK_REASON_STOLEN); err != nil {
				return err
			}
			_, err := cs.startUnblock(debitCard)
			return err
		}},
		{name: "StartCardUnblock of an unknown card", want: commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, call: func(cs *cards, _ string) error {
			_, err := cs.startUnblock("card-bob-1")
			return err
		}},
		{name: "StartCardUnblock under a consent without support", want: commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, call: func(cs *cards, _ string) error {
			cs.consent = linkFor(cs.t, cs.c, "alice", commonv1.Scope_SCOPE_ACCOUNTS, commonv1.Scope_SCOPE_FRAUD_ALERTS)
			_, err := cs.startUnblock(debitCard)
			return err
		}},
		{name: "VerifyCardUnblock of an unknown challenge", want: commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, call: func(cs *cards, _ string) error {
			_, err := cs.verify(debitCard, "unblock-unknown", sandbox.Code)
			return err
		}},
		{name: "VerifyCardUnblock of another card's challenge", want: commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, call: func(cs *cards, challenge string) error {
			_, err := cs.verify(creditCard, challenge, sandbox.Code)
			return err
		}},
		{name: "VerifyCardUnblock under another consent", want: commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, call: func(cs *cards, challenge string) error {
			cs.consent = link(cs.t, cs.c, "alice")
			_, err := cs.verify(debitCard, challenge, sandbox.Code)
			return err
		}},
		{name: "VerifyCardUnblock without a code", want: commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, call: func(cs *cards, challenge string) error {
			_, err := cs.verify(debitCard, challenge, "")
			return err
		}},
		{name: "VerifyCardUnblock after the challenge expired", want: commonv1.ErrorReason_ERROR_REASON_SCA_EXPIRED, call: func(cs *cards, challenge string) error {
			cs.clock.set(cs.clock.Now().Add(6 * time.Minute))
			_, err := cs.verify(debitCard, challenge, sandbox.Code)
			return err
		}},
		{name: "VerifyCardUnblock of a challenge a newer one replaced", want: commonv1.ErrorReason_ERROR_REASON_SCA_EXPIRED, call: func(cs *cards, challenge string) error {
			if _, err := cs.startUnblock(debitCard); err != nil {
				return err
			}
			_, err := cs.verify(debitCard, challenge, sandbox.Code)
			return err
		}},
		{name: "VerifyCardUnblock after the card was blocked again", want: commonv1.ErrorReason_ERROR_REASON_SCA_EXPIRED, call: func(cs *cards, challenge string) error {
			if _, err := cs.block(debitAccount, debitCard, adapterv1.CardBlockReason_CARD_BLOCK_REASON_FRAUD_SUSPECTED); err != nil {
				return err
			}
			_, err := cs.verify(debitCard, challenge, sandbox.Code)
			return err
		}},
		{name: "BlockCard of another account's card", want: commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, call: func(cs *cards, _ string) error {
			_, err := cs.block(creditAccount, debitCard, adapterv1.CardBlockReason_CARD_BLOCK_REASON_LOST)
			return err
		}},
		{name: "ListCards under a consent without support", want: commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, call: func(cs *cards, _ string) error {
			consent := linkFor(cs.t, cs.c, "alice", commonv1.Scope_SCOPE_ACCOUNTS)
			_, err := cs.c.ListCards(cs.t.Context(), &adapterv1.ListCardsRequest{BankConsentId: consent})
			return err
		}},
		{name: "BlockCard under a consent without support", want: commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, call: func(cs *cards, _ string) error {
			cs.consent = linkFor(cs.t, cs.c, "alice", commonv1.Scope_SCOPE_FRAUD_ALERTS)
			_, err := cs.block(debitAccount, debitCard, adapterv1.CardBlockReason_CARD_BLOCK_REASON_LOST)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cs := newCards(t)
			if _, err := cs.block(debitAccount, debitCard, adapterv1.CardBlockReason_CARD_BLOCK_REASON_LOST); err != nil {
				t.Fatal(err)
			}
			challenge, err := cs.startUnblock(debitCard)
			if err != nil {
				t.Fatal(err)
			}
			wantReason(t, tt.call(cs, challenge.GetChallengeId()), tt.want)
		})
	}
}

// TestCardWritesAreIdempotent: a retry with the same key gets the first
// answer and spends nothing: no second challenge, no second attempt.
func TestCardWritesAreIdempotent(t *testing.T) {
	t.Parallel()
	cs := newCards(t)
	if _, err := cs.block(debitAccount, debitCard, adapterv1.CardBlockReason_CARD_BLOCK_REASON_LOST); err != nil {
		t.Fatal(err)
	}
	start := &adapterv1.StartCardUnblockRequest{BankConsentId: cs.consent, BankCardId: debitCard, IdempotencyKey: "unblock-0001"}
	first, err := cs.c.StartCardUnblock(t.Context(), start)
	if err != nil {
		t.Fatal(err)
	}
	retry, err := cs.c.StartCardUnblock(t.Context(), start)
	if err != nil || retry.GetChallengeId() != first.GetChallengeId() {
		t.Errorf("StartCardUnblock retried: %v, %v; want the first challenge", retry.GetChallengeId(), err)
	}
	wrong := &adapterv1.VerifyCardUnblockRequest{
		BankConsentId: cs.consent, BankCardId: debitCard, ChallengeId: first.GetChallengeId(), Code: "654321", IdempotencyKey: "verify-0001",
	}
	for range 3 {
		_, err := cs.c.VerifyCardUnblock(t.Context(), wrong)
		wantReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED)
		if got := apierr.Info(err).GetMetadata()["attempts_remaining"]; got != "2" {
			t.Errorf("a wrong code retried: attempts_remaining %q, want 2 each time", got)
		}
	}
	wrong.Code = sandbox.Code
	_, err = cs.c.VerifyCardUnblock(t.Context(), wrong)
	wantReason(t, err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
	start.BankCardId = creditCard
	_, err = cs.c.StartCardUnblock(t.Context(), start)
	wantReason(t, err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
	if c := cs.list()[debitCard]; c.GetState() != adapterv1.CardState_CARD_STATE_BLOCKED {
		t.Errorf("after the retries: %v, want still BLOCKED", c)
	}
}
