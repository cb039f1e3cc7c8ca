package transport_test

import (
	"context"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	supportv1 "github.com/bankbridge/bankbridge/gen/bankbridge/support/v1"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/support/internal/app"
)

const (
	debitCard  = "users/alice/cards/sandbox~card-alice-debit"
	creditCard = "users/alice/cards/sandbox~card-alice-credit"
)

// TestCards: alice's cards at the sandbox, listed, blocked and unblocked
// with the bank's two-factor step, one step after the other on one bank.
func TestCards(t *testing.T) {
	e := startFraud(t, 0)
	alice := e.as(t, "alice")
	list := func(t *testing.T, bank string) []*supportv1.Card {
		t.Helper()
		resp, err := e.support.ListCards(alice, &supportv1.ListCardsRequest{Parent: "users/alice", BankId: bank})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetCards()
	}
	card := func(t *testing.T, name string) *supportv1.Card {
		t.Helper()
		for _, c := range list(t, "sandbox") {
			if c.GetName() == name {
				return c
			}
		}
		t.Fatalf("no card %s", name)
		return nil
	}
	block := func(name string, reason supportv1.CardBlockReason, key string) (*supportv1.Card, error) {
		resp, err := e.support.BlockCard(alice, &supportv1.BlockCardRequest{Name: name, Reason: reason, IdempotencyKey: key})
		return resp.GetCard(), err
	}
	start := func(name, key string) (*supportv1.Card, error) {
		resp, err := e.support.StartCardUnblock(alice, &supportv1.StartCardUnblockRequest{Name: name, IdempotencyKey: key})
		return resp.GetCard(), err
	}
	verify := func(name, code, key string) (*supportv1.Card, error) {
		resp, err := e.support.VerifyCardUnblock(alice, &supportv1.VerifyCardUnblockRequest{Name: name, Code: code, IdempotencyKey: key})
		return resp.GetCard(), err
	}
	lost, stolen := supportv1.CardBlockReason_CARD_BLOCK_REASON_LOST, supportv1.CardBlockReason_CARD_BLOCK_REASON_STOLEN

	t.Run("the bank's cards, masked, with their accounts", func(t *testing.T) {
		cards := list(t, "sandbox")
		if len(cards) != 2 {
			t.Fatalf("cards = %v, want alice's two", cards)
		}
		want := []struct{ name, account, last4 string }{
			{debitCard, "users/alice/accounts/sandbox~acc-alice-checking", "1043"},
			{creditCard, "users/alice/accounts/sandbox~acc-alice-card", "7712"},
		}
		for i, w := range want {
			c := cards[i]
			if c.GetName() != w.name || c.GetAccount() != w.account || c.GetState() != supportv1.CardState_CARD_STATE_ACTIVE ||
				c.GetBlockReason() != supportv1.CardBlockReason_CARD_BLOCK_REASON_UNSPECIFIED || c.GetUnblockChallenge() != nil {
				t.Errorf("card %d = %v, want %s of %s, ACTIVE", i, c, w.name, w.account)
			}
			// The last four only: the bank's display form is not passed on.
			if m := c.GetMaskedNumber(); m.GetLast4() != w.last4 || m.GetDisplay() != "•••• "+w.last4 {
				t.Errorf("card %d masked %v, want •••• %s", i, m, w.last4)
			}
		}
	})

	t.Run("a page at a time", func(t *testing.T) {
		first, err := e.support.ListCards(alice, &supportv1.ListCardsRequest{Parent: "users/alice", BankId: "sandbox", PageSize: 1})
		if err != nil || len(first.GetCards()) != 1 || first.GetNextPageToken() == "" {
			t.Fatalf("first page = %v, %v", first, err)
		}
		second, err := e.support.ListCards(alice, &supportv1.ListCardsRequest{Parent: "users/alice", BankId: "sandbox", PageSize: 1, PageToken: first.GetNextPageToken()})
		if err != nil || len(second.GetCards()) != 1 || second.GetNextPageToken() != "" || second.GetCards()[0].GetName() != creditCard {
			t.Fatalf("second page = %v, %v", second, err)
		}
		// A token of the sandbox's list is not one of another bank's.
		_, err = e.support.ListCards(alice, &supportv1.ListCardsRequest{Parent: "users/alice", BankId: "nocards", PageToken: first.GetNextPageToken()})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_PAGE_TOKEN_INVALID)
		testkit.RequireFieldViolation(t, err, "page_token")
	})

	t.Run("block: at once, once per key, and a blocked card stays as it was", func(t *testing.T) {
		key := newKey()
		c, err := block(debitCard, lost, key)
		if err != nil {
			t.Fatal(err)
		}
		if c.GetName() != debitCard || c.GetState() != supportv1.CardState_CARD_STATE_BLOCKED || c.GetBlockReason() != lost {
			t.Errorf("BlockCard = %v, want BLOCKED, LOST", c)
		}
		if got := card(t, debitCard); got.GetState() != supportv1.CardState_CARD_STATE_BLOCKED || got.GetBlockReason() != lost {
			t.Errorf("the bank lists %v, want BLOCKED, LOST", got)
		}
		if again, err := block(debitCard, lost, key); err != nil || again.GetState() != supportv1.CardState_CARD_STATE_BLOCKED {
			t.Errorf("a retry = %v, %v; want the card BLOCKED", again, err)
		}
		_, err = block(debitCard, stolen, key)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
		_, err = block(creditCard, lost, key)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
		// Blocking it again, for another reason, changes nothing.
		if again, err := block(debitCard, stolen, newKey()); err != nil || again.GetBlockReason() != lost {
			t.Errorf("blocking a blocked card = %v, %v; want it unchanged, LOST", again, err)
		}
		if got := card(t, debitCard); got.GetBlockReason() != lost {
			t.Errorf("the bank lists %v after a second block, want LOST still", got)
		}
	})

	var challenge *supportv1.UnblockChallenge
	t.Run("start unblock: the card still BLOCKED, with the bank's challenge", func(t *testing.T) {
		_, err := start(creditCard, newKey())
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION) // not blocked
		key := newKey()
		c, err := start(debitCard, key)
		if err != nil {
			t.Fatal(err)
		}
		challenge = c.GetUnblockChallenge()
		if c.GetState() != supportv1.CardState_CARD_STATE_BLOCKED || challenge.GetChallengeText() == "" ||
			challenge.GetAttemptsAllowed() != 3 || !challenge.GetExpireTime().AsTime().After(time.Now()) {
			t.Fatalf("StartCardUnblock = %v, want BLOCKED with a challenge of 3 attempts", c)
		}
		// The sandbox spells its code out in its instruction: a bank's text
		// passes with its digit runs masked.
		if strings.Contains(challenge.GetChallengeText(), "123456") || !strings.Contains(challenge.GetChallengeText(), "•••• 3456") {
			t.Errorf("challenge text %q: want the code masked", challenge.GetChallengeText())
		}
		again, err := start(debitCard, key)
		if err != nil || !again.GetUnblockChallenge().GetExpireTime().AsTime().Equal(challenge.GetExpireTime().AsTime()) {
			t.Errorf("a retry = %v, %v; want the same challenge", again, err)
		}
		_, err = start(creditCard, key)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
		if got := card(t, debitCard); got.GetUnblockChallenge().GetAttemptsAllowed() != 3 {
			t.Errorf("the list shows %v, want the running challenge", got)
		}
	})

	t.Run("verify: a wrong code counts once per key, the right one unblocks", func(t *testing.T) {
		key := newKey()
		_, err := verify(debitCard, "000000", key)
		if md := testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED); md["attempts_remaining"] != "2" {
			t.Errorf("metadata %v, want attempts_remaining 2", md)
		}
		_, err = verify(debitCard, "000000", key)
		if md := testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED); md["attempts_remaining"] != "2" {
			t.Errorf("a retry spent an attempt: %v", md)
		}
		_, err = verify(debitCard, "111111", key)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
		c, err := verify(debitCard, "123456", newKey())
		if err != nil {
			t.Fatal(err)
		}
		if c.GetState() != supportv1.CardState_CARD_STATE_ACTIVE || c.GetUnblockChallenge() != nil || c.GetBlockReason() != supportv1.CardBlockReason_CARD_BLOCK_REASON_UNSPECIFIED {
			t.Errorf("VerifyCardUnblock = %v, want ACTIVE without challenge", c)
		}
		if got := card(t, debitCard); got.GetState() != supportv1.CardState_CARD_STATE_ACTIVE || got.GetUnblockChallenge() != nil {
			t.Errorf("the bank lists %v, want ACTIVE", got)
		}
		_, err = verify(debitCard, "123456", newKey())
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND) // no challenge runs
	})

	t.Run("verify: the third wrong code locks the challenge", func(t *testing.T) {
		if _, err := block(debitCard, lost, newKey()); err != nil {
			t.Fatal(err)
		}
		if _, err := start(debitCard, newKey()); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"2", "1"} {
			_, err := verify(debitCard, "000000", newKey())
			if md := testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED); md["attempts_remaining"] != want {
				t.Errorf("attempts_remaining %q, want %s", md["attempts_remaining"], want)
			}
		}
		_, err := verify(debitCard, "000000", newKey())
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED)
		_, err = verify(debitCard, "123456", newKey())
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED)
	})

	t.Run("verify: a challenge past its expiry", func(t *testing.T) {
		if _, err := start(debitCard, newKey()); err != nil {
			t.Fatal(err)
		}
		e.clock.Add(6 * time.Minute)
		_, err := verify(debitCard, "123456", newKey())
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SCA_EXPIRED)
		if got := card(t, debitCard); got.GetState() != supportv1.CardState_CARD_STATE_BLOCKED {
			t.Errorf("the bank lists %v, want it BLOCKED still", got)
		}
	})

	t.Run("a block the bank will not lift", func(t *testing.T) {
		if _, err := block(creditCard, stolen, newKey()); err != nil {
			t.Fatal(err)
		}
		_, err := start(creditCard, newKey())
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION)
	})

	t.Run("a bank that is down", func(t *testing.T) {
		e.bank.down.Store(true)
		defer e.bank.down.Store(false)
		calls := map[string]func() error{
			"ListCards": func() error {
				_, err := e.support.ListCards(alice, &supportv1.ListCardsRequest{Parent: "users/alice", BankId: "sandbox"})
				return err
			},
			"BlockCard":        func() error { _, err := block(debitCard, lost, newKey()); return err },
			"StartCardUnblock": func() error { _, err := start(debitCard, newKey()); return err },
			// The expired challenge is still the card's: the bank is asked.
			"VerifyCardUnblock": func() error { _, err := verify(debitCard, "123456", newKey()); return err },
		}
		for name, call := range calls {
			t.Run(name, func(t *testing.T) {
				testkit.RequireReason(t, call(), commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE)
			})
		}
	})

	t.Run("the assistant lists and blocks through the app", func(t *testing.T) {
		g := app.Grant{User: "alice", Client: "chat-app", BankID: "sandbox", Link: e.link, BankConsentID: e.bankConsent}
		if _, err := verify(debitCard, "123456", newKey()); err == nil {
			t.Fatal("the expired challenge unblocked the card")
		}
		// Unblock the debit card anew, then block it as lost, as the
		// assistant's flow does.
		if _, err := start(debitCard, newKey()); err != nil {
			t.Fatal(err)
		}
		if _, err := verify(debitCard, "123456", newKey()); err != nil {
			t.Fatal(err)
		}
		cards, err := e.svc.Cards(t.Context(), g)
		if err != nil || len(cards) != 2 || cards[0].ID != "card-alice-debit" || cards[0].State != app.CardActive || cards[0].Last4 != "1043" {
			t.Fatalf("Cards = %+v, %v", cards, err)
		}
		c, err := e.svc.BlockCard(t.Context(), g, app.BlockCardInput{CardID: "card-alice-debit", Reason: app.BlockLost, IdempotencyKey: newKey()})
		if err != nil || c.State != app.CardBlocked || c.BlockReason != app.BlockLost {
			t.Fatalf("BlockCard = %+v, %v", c, err)
		}
		if got := card(t, debitCard); got.GetState() != supportv1.CardState_CARD_STATE_BLOCKED || got.GetBlockReason() != lost {
			t.Errorf("the bank lists %v, want BLOCKED, LOST", got)
		}
	})

	t.Run("the contract's refusals", func(t *testing.T) {
		bob, carol := e.as(t, "bob"), e.as(t, "carol")
		advertising := e.asFor(t, "alice", "ADVERTISING")
		listAt := func(ctx context.Context, parent, bank string, size int32) error {
			_, err := e.support.ListCards(ctx, &supportv1.ListCardsRequest{Parent: parent, BankId: bank, PageSize: size})
			return err
		}
		blockAs := func(ctx context.Context, name string, reason supportv1.CardBlockReason, key string) error {
			_, err := e.support.BlockCard(ctx, &supportv1.BlockCardRequest{Name: name, Reason: reason, IdempotencyKey: key})
			return err
		}
		tests := []struct {
			rpc, name string
			call      func() error
			reason    commonv1.ErrorReason
			field     string
		}{
			{"ListCards", "a bank not configured", func() error { return listAt(alice, "users/alice", "nobank", 0) }, commonv1.ErrorReason_ERROR_REASON_BANK_NOT_FOUND, ""},
			{"ListCards", "a bank whose adapter has no cards", func() error { return listAt(alice, "users/alice", "nocards", 0) },
				commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED, ""},
			{"ListCards", "a malformed page token", func() error {
				_, err := e.support.ListCards(alice, &supportv1.ListCardsRequest{Parent: "users/alice", BankId: "sandbox", PageToken: "not-a-token"})
				return err
			}, commonv1.ErrorReason_ERROR_REASON_PAGE_TOKEN_INVALID, "page_token"},
			{"ListCards", "a malformed bank id", func() error { return listAt(alice, "users/alice", "Sandbox!", 0) }, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "bank_id"},
			{"ListCards", "a page too large", func() error { return listAt(alice, "users/alice", "sandbox", 101) }, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "page_size"},
			{"ListCards", "another user", func() error { return listAt(alice, "users/bob", "sandbox", 0) }, commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH, ""},
			{"ListCards", "advertising", func() error { return listAt(advertising, "users/alice", "sandbox", 0) }, commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED, ""},
			{"ListCards", "no consent at the bank", func() error { return listAt(carol, "users/carol", "sandbox", 0) }, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, ""},
			{"BlockCard", "no such card", func() error { return blockAs(alice, "users/alice/cards/sandbox~card-nope", lost, newKey()) }, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, ""},
			{"BlockCard", "another user's card", func() error { return blockAs(bob, debitCard, lost, newKey()) }, commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH, ""},
			{"BlockCard", "a bank whose adapter has no cards", func() error { return blockAs(alice, "users/alice/cards/nocards~card-1", lost, newKey()) },
				commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED, ""},
			{"BlockCard", "a card at a bank not configured", func() error { return blockAs(alice, "users/alice/cards/nobank~card-1", lost, newKey()) },
				commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, ""},
			{"BlockCard", "not a card's name", func() error { return blockAs(alice, "users/alice/cards/card-alice-debit", lost, newKey()) }, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "name"},
			{"BlockCard", "no reason", func() error { return blockAs(alice, debitCard, 0, newKey()) }, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "reason"},
			{"BlockCard", "a short key", func() error { return blockAs(alice, debitCard, lost, "k") }, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "idempotency_key"},
			{"StartCardUnblock", "no such card", func() error { _, err := start("users/alice/cards/sandbox~card-nope", newKey()); return err }, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, ""},
			{"StartCardUnblock", "a bank whose adapter has no cards", func() error { _, err := start("users/alice/cards/nocards~card-1", newKey()); return err },
				commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED, ""},
			{"StartCardUnblock", "no key", func() error { _, err := start(debitCard, ""); return err }, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "idempotency_key"},
			{"VerifyCardUnblock", "a card without a challenge", func() error { _, err := verify(creditCard, "123456", newKey()); return err }, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, ""},
			{"VerifyCardUnblock", "no such card", func() error { _, err := verify("users/alice/cards/sandbox~card-nope", "123456", newKey()); return err },
				commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, ""},
			{"VerifyCardUnblock", "a code of letters", func() error { _, err := verify(debitCard, "abcdef", newKey()); return err }, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "code"},
			{"VerifyCardUnblock", "no code", func() error { _, err := verify(debitCard, "", newKey()); return err }, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "code"},
		}
		for _, tt := range tests {
			t.Run(tt.rpc+"/"+tt.name, func(t *testing.T) {
				err := tt.call()
				testkit.RequireReason(t, err, tt.reason)
				if tt.field != "" {
					testkit.RequireFieldViolation(t, err, tt.field)
				}
			})
		}
		t.Run("ListCards/a revoked consent", func(t *testing.T) {
			nocards := e.consent.AddLink("dave", "nocards")
			e.consent.SetLinkState(nocards, consentv1.ConsentState_CONSENT_STATE_REVOKED)
			testkit.RequireReason(t, listAt(e.as(t, "dave"), "users/dave", "nocards", 0), commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED)
		})
	})

	// The codes went to the bank, never into a log line.
	e.requireCleanLogs(t, "123456", "000000", "111111")
}
