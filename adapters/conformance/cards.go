package conformance

import (
	"fmt"
	"slices"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// listCards calls ListCards and holds its answer to the rules: masked
// numbers only, each card once, on an account ListAccounts showed, with a
// block reason only when blocked. nil when the call failed.
func (k *kit) listCards(c *C, what string) []*adapterv1.Card {
	c.Helper()
	resp, err := k.client.ListCards(k.ctx(c), &adapterv1.ListCardsRequest{BankConsentId: k.consentID})
	if !ok(c, what, err) {
		return nil
	}
	k.check(c, what, resp)
	seen := map[string]bool{}
	for i, card := range resp.GetCards() {
		if seen[card.GetBankCardId()] {
			c.Errorf("%s: card id %q appears twice", what, card.GetBankCardId())
		}
		seen[card.GetBankCardId()] = true
		if len(k.accounts) > 0 && !slices.ContainsFunc(k.accounts, func(a *adapterv1.Account) bool { return a.GetBankAccountId() == card.GetBankAccountId() }) {
			c.Errorf("%s: cards[%d] is on account %q, which ListAccounts did not show", what, i, card.GetBankAccountId())
		}
		if card.GetState() == adapterv1.CardState_CARD_STATE_ACTIVE && card.GetBlockReason() != adapterv1.CardBlockReason_CARD_BLOCK_REASON_UNSPECIFIED {
			c.Errorf("%s: cards[%d] is ACTIVE with block_reason %s; leave it unset unless BLOCKED", what, i, card.GetBlockReason())
		}
	}
	return resp.GetCards()
}

// cardState is the state of the card with id in cards; UNSPECIFIED when
// it is missing.
func cardState(cards []*adapterv1.Card, id string) adapterv1.CardState {
	for _, c := range cards {
		if c.GetBankCardId() == id {
			return c.GetState()
		}
	}
	return adapterv1.CardState_CARD_STATE_UNSPECIFIED
}

// testUnknownCard is cards/unknown-card.
func (k *kit) testUnknownCard(c *C) {
	k.needConsent(c)
	_, err := k.client.StartCardUnblock(k.ctx(c), &adapterv1.StartCardUnblockRequest{
		BankConsentId: k.consentID, BankCardId: unknownID, IdempotencyKey: k.key("unblock-unknown-card"),
	})
	wantError(c, "StartCardUnblock of an unknown card", err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
}

// testBlockUnblock (cards/block-unblock) takes the first active card cards/list showed
// through a block and its lifting: an active card cannot be unblocked
// (FAILED_PRECONDITION); BlockCard blocks it (and again answers BLOCKED),
// and ListCards shows it BLOCKED; StartCardUnblock starts a challenge
// (idempotent on its key); VerifyCardUnblock refuses the bad code with
// SCA_FAILED and attempts_remaining, spending no attempt on a retry, and
// with the good code answers FINALISED; ListCards then shows the card
// ACTIVE again. An unknown challenge is NOT_FOUND.
func (k *kit) testBlockUnblock(c *C) {
	k.needConsent(c)
	i := slices.IndexFunc(k.cards, func(c *adapterv1.Card) bool { return c.GetState() == adapterv1.CardState_CARD_STATE_ACTIVE })
	if i < 0 {
		c.Skipf("ListCards shows no active card (of %d); blocking and unblocking not checked", len(k.cards))
	}
	card := k.cards[i]
	what := fmt.Sprintf("card %q", card.GetBankCardId())

	_, err := k.client.StartCardUnblock(k.ctx(c), &adapterv1.StartCardUnblockRequest{
		BankConsentId: k.consentID, BankCardId: card.GetBankCardId(), IdempotencyKey: k.key("unblock-active"),
	})
	wantError(c, "StartCardUnblock of an active "+what, err, commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION)

	block := &adapterv1.BlockCardRequest{
		BankConsentId:  k.consentID,
		BankAccountId:  card.GetBankAccountId(),
		BankCardId:     card.GetBankCardId(),
		Reason:         adapterv1.CardBlockReason_CARD_BLOCK_REASON_LOST,
		IdempotencyKey: k.key("block"),
	}
	blocked, err := k.client.BlockCard(k.ctx(c), block)
	if !ok(c, "BlockCard of "+what, err) {
		return
	}
	k.check(c, "BlockCard", blocked)
	if last4 := card.GetMaskedNumber().GetLast4(); len(blocked.GetMaskedCardNumbers()) > 0 &&
		!slices.ContainsFunc(blocked.GetMaskedCardNumbers(), func(m *commonv1.MaskedAccountNumber) bool { return m.GetLast4() == last4 }) {
		c.Errorf("BlockCard of %s: masked_card_numbers do not name the card (last four %s)", what, last4)
	}
	retry, err := k.client.BlockCard(k.ctx(c), block)
	if ok(c, "BlockCard retried with the same key", err) && !proto.Equal(blocked, retry) {
		c.Error("BlockCard retried with the same key: answer differs from the first")
	}
	other := proto.CloneOf(block)
	other.Reason = adapterv1.CardBlockReason_CARD_BLOCK_REASON_FRAUD_SUSPECTED
	_, err = k.client.BlockCard(k.ctx(c), other)
	wantError(c, "BlockCard with a used key and another request", err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
	switch blocked.GetStatus() {
	case adapterv1.CardBlockStatus_CARD_BLOCK_STATUS_BLOCKED:
	case adapterv1.CardBlockStatus_CARD_BLOCK_STATUS_PENDING:
		c.Skipf("BlockCard of %s: PENDING; the unblock is not checked", what)
	default:
		c.Fatalf("BlockCard of active %s: status %s, want BLOCKED", what, blocked.GetStatus())
	}
	again := proto.CloneOf(block)
	again.IdempotencyKey = k.key("block-again")
	if resp, err := k.client.BlockCard(k.ctx(c), again); ok(c, "BlockCard of a blocked card", err) &&
		resp.GetStatus() != adapterv1.CardBlockStatus_CARD_BLOCK_STATUS_BLOCKED {
		c.Errorf("BlockCard of blocked %s: status %s, want BLOCKED", what, resp.GetStatus())
	}
	if st := cardState(k.listCards(c, "ListCards after BlockCard"), card.GetBankCardId()); st != adapterv1.CardState_CARD_STATE_BLOCKED {
		c.Errorf("ListCards after BlockCard: %s is %s, want BLOCKED", what, st)
	}

	start := &adapterv1.StartCardUnblockRequest{BankConsentId: k.consentID, BankCardId: card.GetBankCardId(), IdempotencyKey: k.key("unblock")}
	challenge, err := k.client.StartCardUnblock(k.ctx(c), start)
	if !ok(c, "StartCardUnblock of blocked "+what, err) {
		return
	}
	k.check(c, "StartCardUnblock", challenge)
	if retry, err := k.client.StartCardUnblock(k.ctx(c), start); ok(c, "StartCardUnblock retried with the same key", err) && !proto.Equal(challenge, retry) {
		c.Error("StartCardUnblock retried with the same key: answer differs from the first (the customer would get a second code)")
	}
	otherStart := proto.CloneOf(start)
	otherStart.BankCardId = unknownID
	_, err = k.client.StartCardUnblock(k.ctx(c), otherStart)
	wantError(c, "StartCardUnblock with a used key and another request", err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)

	verify := func(challengeID, code, key string) (*adapterv1.VerifyCardUnblockResponse, error) {
		return k.client.VerifyCardUnblock(k.ctx(c), &adapterv1.VerifyCardUnblockRequest{
			BankConsentId: k.consentID, BankCardId: card.GetBankCardId(), ChallengeId: challengeID, Code: code, IdempotencyKey: k.key(key),
		})
	}
	_, err = verify(unknownID, k.fx.GoodCode, "verify-unblock-unknown")
	wantError(c, "VerifyCardUnblock of an unknown challenge", err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
	if challenge.GetMethod() != adapterv1.ScaMethod_SCA_METHOD_OTP {
		c.Skipf("the bank chose %s for the unblock; the kit completes OTP challenges only", challenge.GetMethod())
	}

	if k.fx.BadCode != "" {
		_, err := verify(challenge.GetChallengeId(), k.fx.BadCode, "verify-unblock-bad")
		if !wantError(c, "VerifyCardUnblock with a wrong code", err,
			commonv1.ErrorReason_ERROR_REASON_SCA_FAILED, commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED) {
			return
		}
		if apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED) {
			c.Skip("VerifyCardUnblock: one wrong code locked the challenge; the good code is not checked")
		}
		left := apierr.Info(err).GetMetadata()["attempts_remaining"]
		if n, convErr := strconv.Atoi(left); convErr != nil || n < 1 {
			c.Errorf("VerifyCardUnblock with a wrong code: SCA_FAILED with attempts_remaining %q, want how many more codes it accepts", left)
		}
		_, err = verify(challenge.GetChallengeId(), k.fx.BadCode, "verify-unblock-bad")
		if wantError(c, "VerifyCardUnblock with a wrong code, retried with the same key", err, commonv1.ErrorReason_ERROR_REASON_SCA_FAILED) {
			if again := apierr.Info(err).GetMetadata()["attempts_remaining"]; again != left {
				c.Errorf("VerifyCardUnblock with a wrong code, retried with the same key: attempts_remaining %q, was %q; a retry must spend no attempt", again, left)
			}
		}
	}

	good, err := verify(challenge.GetChallengeId(), k.fx.GoodCode, "verify-unblock")
	if !ok(c, "VerifyCardUnblock with the good code", err) {
		return
	}
	k.check(c, "VerifyCardUnblock", good)
	if good.GetStatus() != adapterv1.ScaStatus_SCA_STATUS_FINALISED {
		c.Fatalf("VerifyCardUnblock with the good code: status %s, want FINALISED", good.GetStatus())
	}
	if retry, err := verify(challenge.GetChallengeId(), k.fx.GoodCode, "verify-unblock"); ok(c, "VerifyCardUnblock retried with the same key", err) && !proto.Equal(good, retry) {
		c.Error("VerifyCardUnblock retried with the same key: answer differs from the first")
	}
	if st := cardState(k.listCards(c, "ListCards after VerifyCardUnblock"), card.GetBankCardId()); st != adapterv1.CardState_CARD_STATE_ACTIVE {
		c.Errorf("ListCards after VerifyCardUnblock FINALISED: %s is %s, want ACTIVE", what, st)
	}
}
