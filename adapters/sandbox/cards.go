package sandbox

import (
	"context"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// unblockAttempts is how many codes an unblock challenge accepts: fewer
// than linking's, since lifting a block is what a card thief would try.
const unblockAttempts = 3

// cardBlock is a blocked card's block, guarded by Bank.mu.
type cardBlock struct {
	reason adapterv1.CardBlockReason
	// challenge is the id of the unblock challenge running for the card;
	// empty when none runs. Starting another, or blocking the card again,
	// ends it.
	challenge string
}

// unblockChallenge is the OTP challenge that lifts a card's block, guarded
// by Bank.mu.
type unblockChallenge struct {
	id         string
	consentID  string
	cardID     string
	expireTime time.Time
	wrongCodes int
	status     adapterv1.ScaStatus
}

// hasCard reports whether one of the customer's accounts has the card id.
func (cust *customer) hasCard(id string) bool {
	for _, a := range cust.accounts {
		if _, ok := a.card(id); ok {
			return true
		}
	}
	return false
}

// ListCards implements adapters.CardsAdapter: every card of the customer's
// accounts, masked, ACTIVE or BLOCKED with the block's reason. It needs
// SCOPE_SUPPORT.
func (b *Bank) ListCards(ctx context.Context, req *adapterv1.ListCardsRequest) (*adapterv1.ListCardsResponse, error) {
	resp := &adapterv1.ListCardsResponse{}
	err := b.dataCall(ctx, req.GetBankConsentId(), commonv1.Scope_SCOPE_SUPPORT, func(_ *consent, cust *customer) error {
		for _, a := range cust.accounts {
			for _, c := range a.cards {
				card := &adapterv1.Card{
					BankCardId:    c.id,
					BankAccountId: a.id,
					MaskedNumber:  clone(c.masked),
					State:         adapterv1.CardState_CARD_STATE_ACTIVE,
				}
				if blk := b.cardBlocks[c.id]; blk != nil {
					card.State, card.BlockReason = adapterv1.CardState_CARD_STATE_BLOCKED, blk.reason
				}
				resp.Cards = append(resp.Cards, card)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// BlockCard implements adapters.CardsAdapter: the block is immediate and
// lasts until VerifyCardUnblock lifts it; blocking a blocked card answers
// BLOCKED and keeps its reason, unless the new one is STOLEN, which stays
// for good. It needs SCOPE_SUPPORT.
func (b *Bank) BlockCard(ctx context.Context, req *adapterv1.BlockCardRequest) (*adapterv1.BlockCardResponse, error) {
	var resp *adapterv1.BlockCardResponse
	err := b.dataCall(ctx, req.GetBankConsentId(), commonv1.Scope_SCOPE_SUPPORT, func(_ *consent, cust *customer) error {
		var err error
		resp, err = idempotent(b.idem, "BlockCard", req.GetIdempotencyKey(), req, func() (*adapterv1.BlockCardResponse, error) {
			a := cust.account(req.GetBankAccountId())
			if a == nil {
				return nil, notFound("account under this consent")
			}
			cards, err := b.block(a, req.GetBankCardId(), req.GetReason())
			if err != nil {
				return nil, err
			}
			r := &adapterv1.BlockCardResponse{Status: adapterv1.CardBlockStatus_CARD_BLOCK_STATUS_BLOCKED}
			for _, c := range cards {
				r.MaskedCardNumbers = append(r.MaskedCardNumbers, clone(c.masked))
			}
			return r, nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// block blocks one card of a, or all of them when cardID is empty, for
// reason, and ends any unblock challenge running for them. The caller
// holds Bank.mu.
func (b *Bank) block(a *account, cardID string, reason adapterv1.CardBlockReason) ([]card, error) {
	cards := a.cards
	if cardID != "" {
		c, ok := a.card(cardID)
		if !ok {
			return nil, notFound("card on this account")
		}
		cards = []card{c}
	}
	if len(cards) == 0 {
		return nil, notFound("card on this account")
	}
	for _, c := range cards {
		blk := b.cardBlocks[c.id]
		if blk == nil {
			b.cardBlocks[c.id] = &cardBlock{reason: reason}
			continue
		}
		blk.challenge = ""
		if reason == adapterv1.CardBlockReason_CARD_BLOCK_REASON_STOLEN {
			blk.reason = reason
		}
	}
	return cards, nil
}

// StartCardUnblock implements adapters.CardsAdapter: an OTP challenge that
// [Code] completes, with [unblockAttempts] tries, for a blocked card whose
// block is not for theft (a stolen card stays blocked: FAILED_PRECONDITION,
// as for a card that is not blocked). It replaces a challenge already
// running for the card. It needs SCOPE_SUPPORT.
func (b *Bank) StartCardUnblock(ctx context.Context, req *adapterv1.StartCardUnblockRequest) (*adapterv1.StartCardUnblockResponse, error) {
	var resp *adapterv1.StartCardUnblockResponse
	err := b.dataCall(ctx, req.GetBankConsentId(), commonv1.Scope_SCOPE_SUPPORT, func(c *consent, cust *customer) error {
		var err error
		resp, err = idempotent(b.idem, "StartCardUnblock", req.GetIdempotencyKey(), req, func() (*adapterv1.StartCardUnblockResponse, error) {
			if !cust.hasCard(req.GetBankCardId()) {
				return nil, notFound("card under this consent")
			}
			blk := b.cardBlocks[req.GetBankCardId()]
			switch {
			case blk == nil:
				return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION, "the card is not blocked")
			case blk.reason == adapterv1.CardBlockReason_CARD_BLOCK_REASON_STOLEN:
				return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION,
					"a card reported stolen stays blocked; the bank sends a new one")
			}
			ch := &unblockChallenge{
				id:         randomID("unblock-"),
				consentID:  c.id,
				cardID:     req.GetBankCardId(),
				expireTime: b.opts.Now().Add(challengeLifetime),
				status:     adapterv1.ScaStatus_SCA_STATUS_STARTED,
			}
			b.unblocks[ch.id] = ch
			blk.challenge = ch.id
			return &adapterv1.StartCardUnblockResponse{
				ChallengeId:     ch.id,
				Method:          adapterv1.ScaMethod_SCA_METHOD_OTP,
				ChallengeText:   "Enter the 6-digit code we sent to your phone to unblock the card. In the sandbox the code is always " + Code + ".",
				ExpireTime:      timestamppb.New(ch.expireTime),
				AttemptsAllowed: unblockAttempts,
			}, nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// VerifyCardUnblock implements adapters.CardsAdapter: [Code] unblocks the
// card (FINALISED, and FINALISED again when asked again); a wrong code is
// SCA_FAILED with attempts_remaining, and the third locks the challenge
// (SCA_LOCKED); a challenge past its expiry, or replaced by a newer one or
// by a new block, is SCA_EXPIRED. It needs SCOPE_SUPPORT.
func (b *Bank) VerifyCardUnblock(ctx context.Context, req *adapterv1.VerifyCardUnblockRequest) (*adapterv1.VerifyCardUnblockResponse, error) {
	var resp *adapterv1.VerifyCardUnblockResponse
	err := b.dataCall(ctx, req.GetBankConsentId(), commonv1.Scope_SCOPE_SUPPORT, func(c *consent, cust *customer) error {
		var err error
		resp, err = idempotent(b.idem, "VerifyCardUnblock", req.GetIdempotencyKey(), req, func() (*adapterv1.VerifyCardUnblockResponse, error) {
			if !cust.hasCard(req.GetBankCardId()) {
				return nil, notFound("card under this consent")
			}
			ch := b.unblocks[req.GetChallengeId()]
			if ch == nil || ch.consentID != c.id || ch.cardID != req.GetBankCardId() {
				return nil, notFound("unblock challenge for this card")
			}
			switch ch.status {
			case adapterv1.ScaStatus_SCA_STATUS_FINALISED:
				return &adapterv1.VerifyCardUnblockResponse{Status: ch.status}, nil
			case adapterv1.ScaStatus_SCA_STATUS_FAILED:
				return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED, "the challenge is locked")
			}
			blk := b.cardBlocks[ch.cardID]
			if blk == nil || blk.challenge != ch.id || !b.opts.Now().Before(ch.expireTime) {
				return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_SCA_EXPIRED,
					"the challenge has expired, or a newer challenge or block replaced it")
			}
			switch req.GetCode() {
			case "":
				return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT,
					"invalid request: code: required for an OTP challenge",
					apierr.WithFieldViolations(apierr.FieldViolation{
						Field: "code", Description: "required for an OTP challenge", Reason: "sandbox.code_required",
					}))
			case Code:
				ch.status = adapterv1.ScaStatus_SCA_STATUS_FINALISED
				delete(b.cardBlocks, ch.cardID)
				return &adapterv1.VerifyCardUnblockResponse{Status: ch.status}, nil
			}
			ch.wrongCodes++
			if ch.wrongCodes >= unblockAttempts {
				ch.status = adapterv1.ScaStatus_SCA_STATUS_FAILED
				return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED, "too many wrong codes; the challenge is locked")
			}
			return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_SCA_FAILED, "the code is wrong",
				apierr.WithMetadata("attempts_remaining", strconv.Itoa(unblockAttempts-ch.wrongCodes)))
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}
