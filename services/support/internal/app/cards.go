package app

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// listCards is the list the cards' page tokens name.
const listCards = "bankbridge.support.v1.SupportService/ListCards"

// The card operations, as their idempotency keys name them.
const (
	opBlockCard     = "block_card"
	opStartUnblock  = "start_unblock"
	opVerifyUnblock = "verify_unblock"
)

// CardState is whether a card works: the contract's CardState without its
// prefix.
type CardState string

// The card states.
const (
	CardActive  CardState = "ACTIVE"
	CardBlocked CardState = "BLOCKED"
)

// CardBlockReason is why a card is blocked: the contract's
// CardBlockReason without its prefix.
type CardBlockReason string

// The card block reasons.
const (
	BlockLost           CardBlockReason = "LOST"
	BlockStolen         CardBlockReason = "STOLEN"
	BlockFraudSuspected CardBlockReason = "FRAUD_SUSPECTED"
)

// Card is one of the user's payment cards as its bank answers now,
// users/{User}/cards/{BankID}~{ID}, ID being the bank's card id.
type Card struct {
	BankKey
	// AccountID is the bank's id of the account the card draws on.
	AccountID string
	// Last4 is all of the card number that leaves the service.
	Last4       string
	State       CardState
	BlockReason CardBlockReason
	// Unblock is the unblock challenge running; nil when none.
	Unblock *CardUnblock
}

// Name is the card's resource name.
func (c Card) Name() string { return c.resource(names.Cards).String() }

// Account is the account the card draws on.
func (c Card) Account() names.Account {
	return names.Account{User: c.User, BankID: c.BankID, BankAccountID: c.AccountID}
}

// CardUnblock is the two-factor challenge that lifts a card's block, as
// StartCardUnblock started it at the bank. The challenge id is the bank's
// and stays in the service: VerifyCardUnblock reads it from here, never
// from the client.
type CardUnblock struct {
	BankKey
	ChallengeID string
	// Method is the bank's SCA method, OTP or DECOUPLED.
	Method string
	// Text is the bank's instruction, its digit runs masked.
	Text            string
	ExpireTime      time.Time
	AttemptsAllowed int
	CreateTime      time.Time
}

// BlockCardInput blocks one of the user's cards at the grant's bank.
type BlockCardInput struct {
	// CardID is the bank's id of the card.
	CardID         string
	Reason         CardBlockReason
	IdempotencyKey string
}

// UnblockInput starts or completes lifting a card's block.
type UnblockInput struct {
	// CardID is the bank's id of the card.
	CardID string
	// Code is the one-time code the bank sent, for VerifyCardUnblock;
	// never logged nor stored.
	Code           string
	IdempotencyKey string
}

// errCardNotFound is the contract's NOT_FOUND for a card.
func errCardNotFound() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "no such card")
}

// Cards lists the user's cards at the grant's bank, as the bank answers
// now, each blocked card with its running unblock challenge. It is what
// the assistant reads too, with the conversation's consent as the grant.
// A card the bank describes outside the protocol is left out.
func (s *Service) Cards(ctx context.Context, g Grant) ([]Card, error) {
	if g.BankID == "" || g.BankConsentID == "" {
		return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, "no consent at this bank covers support")
	}
	client, err := s.banks.Client(g.BankID)
	if err != nil {
		return nil, err
	}
	bctx, cancel := fraudBankContext(ctx)
	defer cancel()
	resp, err := client.ListCards(bctx, &adapterv1.ListCardsRequest{BankConsentId: g.BankConsentID})
	if err != nil {
		return nil, err
	}
	unblocks, err := s.store.CardUnblocks(ctx, g.User, g.BankID)
	if err != nil {
		return nil, err
	}
	running := map[string]CardUnblock{}
	for _, u := range unblocks {
		running[u.ID] = u
	}
	out := make([]Card, 0, len(resp.GetCards()))
	dropped := 0
	for _, c := range resp.GetCards() {
		card, ok := cardFromBank(g, c)
		if !ok {
			dropped++
			continue
		}
		if u, ok := running[card.ID]; ok && card.State == CardBlocked {
			card.Unblock = &u
		}
		out = append(out, card)
	}
	if dropped > 0 {
		s.log.WarnContext(ctx, "cards left out: the bank described them outside the adapter protocol",
			slog.String(telemetry.AttrBankID, g.BankID), slog.Int("bankbridge.count", dropped))
	}
	return out, nil
}

// ListCards serves one page of Cards, in the bank's order.
func (s *Service) ListCards(ctx context.Context, g Grant, pageSize int, token string) ([]Card, string, error) {
	list := pagetoken.List{Method: listCards, Parent: names.User(g.User), Filters: []string{g.BankID}}
	if _, _, err := s.pages.Decode(list, token); err != nil {
		return nil, "", err // before asking the bank
	}
	cards, err := s.Cards(ctx, g)
	if err != nil {
		return nil, "", err
	}
	return pagetoken.Paginate(s.pages, list, cards, pageSize, token)
}

// card finds one of the user's cards at the grant's bank.
func (s *Service) card(ctx context.Context, g Grant, cardID string) (Card, error) {
	cards, err := s.Cards(ctx, g)
	if err != nil {
		return Card{}, err
	}
	for _, c := range cards {
		if c.ID == cardID {
			return c, nil
		}
	}
	return Card{}, errCardNotFound()
}

// Card identifiers as the contract's names carry them (no "~": it
// separates the bank from the id), and the adapter protocol's ids.
var (
	publicIDPattern  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
	adapterIDPattern = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,128}$`)
	last4Pattern     = regexp.MustCompile(`^[0-9A-Z]{4}$`)
)

// cardFromBank reads a card as the bank describes it, holding the bank to
// the protocol: ids the names can carry, a masked number of four
// characters (the bank's display form is not passed on: it might show
// more), a defined state, a block reason only when blocked.
func cardFromBank(g Grant, c *adapterv1.Card) (Card, bool) {
	if !publicIDPattern.MatchString(c.GetBankCardId()) || !adapterIDPattern.MatchString(c.GetBankAccountId()) ||
		!last4Pattern.MatchString(c.GetMaskedNumber().GetLast4()) {
		return Card{}, false
	}
	card := Card{
		BankKey:   BankKey{User: g.User, BankID: g.BankID, ID: c.GetBankCardId()},
		AccountID: c.GetBankAccountId(), Last4: c.GetMaskedNumber().GetLast4(),
	}
	switch c.GetState() {
	case adapterv1.CardState_CARD_STATE_ACTIVE:
		card.State = CardActive
	case adapterv1.CardState_CARD_STATE_BLOCKED:
		card.State = CardBlocked
		switch r := c.GetBlockReason(); r {
		case adapterv1.CardBlockReason_CARD_BLOCK_REASON_LOST, adapterv1.CardBlockReason_CARD_BLOCK_REASON_STOLEN,
			adapterv1.CardBlockReason_CARD_BLOCK_REASON_FRAUD_SUSPECTED:
			card.BlockReason = CardBlockReason(strings.TrimPrefix(r.String(), "CARD_BLOCK_REASON_"))
		}
	default:
		return Card{}, false
	}
	return card, true
}

// rememberCardKey takes a card operation's idempotency key for the
// request hash: a key used before for another request fails with
// ALREADY_EXISTS (IDEMPOTENCY_KEY_REUSED); for the same request it passes,
// and the bank, asked again with the key derived from it, answers once.
func (s *Service) rememberCardKey(ctx context.Context, g Grant, op, key, hash string) error {
	_, err := retry(func() (struct{}, error) {
		k, err := s.store.RecallCardKey(ctx, g.User, g.Client, op, key)
		switch {
		case err == nil && k.RequestHash != hash:
			return struct{}{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED,
				"idempotency_key was used before with a different request")
		case err == nil:
			return struct{}{}, nil
		case !errors.Is(err, ErrNotFound):
			return struct{}{}, err
		}
		// Keyed: a run after one that committed conflicts, and the retry
		// recalls the key.
		return struct{}{}, s.store.IdempotentTx(ctx, func(tx Tx) error {
			return tx.RememberCardKey(ctx, CardKey{User: g.User, Client: g.Client, Operation: op, Key: key, RequestHash: hash, CreateTime: s.stamp()})
		})
	})
	return err
}

// bankCardKey is the key a card operation sends the bank: derived from
// the caller's, per user and client, so no two callers' keys meet at the
// bank.
func bankCardKey(g Grant, op, key string) string {
	return idempotencyKey("card", g.User, g.Client, op, key)
}

// BlockCard blocks one of the user's cards at the grant's bank, at once,
// and returns it BLOCKED. Blocking a blocked card changes nothing, its
// reason included. The assistant blocks a lost card through it too
// (Reason BlockLost), with the conversation's consent as the grant.
func (s *Service) BlockCard(ctx context.Context, g Grant, in BlockCardInput) (Card, error) {
	hash := idempotencyKey(opBlockCard, g.BankID, in.CardID, string(in.Reason))
	if err := s.rememberCardKey(ctx, g, opBlockCard, in.IdempotencyKey, hash); err != nil {
		return Card{}, err
	}
	reason := adapterv1.CardBlockReason(adapterv1.CardBlockReason_value["CARD_BLOCK_REASON_"+string(in.Reason)])
	if reason == adapterv1.CardBlockReason_CARD_BLOCK_REASON_UNSPECIFIED {
		return Card{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "invalid request: reason: not a block reason",
			apierr.WithFieldViolations(apierr.FieldViolation{Field: "reason", Description: "not a block reason", Reason: "enum.defined_only"}))
	}
	card, err := s.card(ctx, g, in.CardID)
	if err != nil || card.State == CardBlocked {
		return card, err
	}
	client, err := s.banks.Client(g.BankID)
	if err != nil {
		return Card{}, err
	}
	bctx, cancel := fraudBankContext(ctx)
	defer cancel()
	resp, err := client.BlockCard(bctx, &adapterv1.BlockCardRequest{
		BankConsentId: g.BankConsentID, BankAccountId: card.AccountID, BankCardId: card.ID,
		Reason: reason, IdempotencyKey: bankCardKey(g, opBlockCard, in.IdempotencyKey),
	})
	if err != nil {
		return Card{}, err
	}
	if st := resp.GetStatus(); st != adapterv1.CardBlockStatus_CARD_BLOCK_STATUS_BLOCKED && st != adapterv1.CardBlockStatus_CARD_BLOCK_STATUS_PENDING {
		return Card{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE,
			"the bank could not block the card; the user should call the bank")
	}
	// A block ends any unblock challenge running for the card.
	if err := s.store.IdempotentTx(ctx, func(tx Tx) error { return tx.DeleteCardUnblock(ctx, card.BankKey) }); err != nil {
		return Card{}, err
	}
	card.State, card.BlockReason, card.Unblock = CardBlocked, in.Reason, nil
	return card, nil
}

// StartCardUnblock starts lifting a blocked card's block: the bank sends
// the user a code, and the card comes back still BLOCKED with the
// challenge, whose id stays here for VerifyCardUnblock. A card that is not
// blocked fails with FAILED_PRECONDITION, as does one whose block the
// bank will not lift.
func (s *Service) StartCardUnblock(ctx context.Context, g Grant, in UnblockInput) (Card, error) {
	hash := idempotencyKey(opStartUnblock, g.BankID, in.CardID)
	if err := s.rememberCardKey(ctx, g, opStartUnblock, in.IdempotencyKey, hash); err != nil {
		return Card{}, err
	}
	card, err := s.card(ctx, g, in.CardID)
	if err != nil {
		return Card{}, err
	}
	if card.State != CardBlocked {
		return Card{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION, "the card is not blocked")
	}
	client, err := s.banks.Client(g.BankID)
	if err != nil {
		return Card{}, err
	}
	bctx, cancel := fraudBankContext(ctx)
	defer cancel()
	resp, err := client.StartCardUnblock(bctx, &adapterv1.StartCardUnblockRequest{
		BankConsentId: g.BankConsentID, BankCardId: card.ID, IdempotencyKey: bankCardKey(g, opStartUnblock, in.IdempotencyKey),
	})
	if err != nil {
		return Card{}, err
	}
	u := CardUnblock{
		BankKey: card.BankKey, ChallengeID: resp.GetChallengeId(),
		Method: strings.TrimPrefix(resp.GetMethod().String(), "SCA_METHOD_"),
		// The bank's words go to the user; a code in them would not be
		// the first thing a bank got wrong.
		Text:       MaskDigits(resp.GetChallengeText()),
		ExpireTime: resp.GetExpireTime().AsTime().UTC().Truncate(time.Microsecond), AttemptsAllowed: int(resp.GetAttemptsAllowed()),
		CreateTime: s.stamp(),
	}
	// Keyed by the card: a run after one that committed, or a call made at
	// once with the same key, writes the bank's same challenge over it.
	if err := s.store.IdempotentTx(ctx, func(tx Tx) error { return tx.SaveCardUnblock(ctx, u) }); err != nil {
		return Card{}, err
	}
	card.Unblock = &u
	return card, nil
}

// VerifyCardUnblock completes an unblock with the code the bank sent,
// answering the challenge StartCardUnblock stored, and returns the card
// ACTIVE. The bank's refusals pass: SCA_FAILED with attempts_remaining,
// SCA_LOCKED, SCA_EXPIRED; a challenge the user declined is SCA_LOCKED.
// A card without a running challenge is NOT_FOUND.
func (s *Service) VerifyCardUnblock(ctx context.Context, g Grant, in UnblockInput) (Card, error) {
	hash := idempotencyKey(opVerifyUnblock, g.BankID, in.CardID, in.Code)
	if err := s.rememberCardKey(ctx, g, opVerifyUnblock, in.IdempotencyKey, hash); err != nil {
		return Card{}, err
	}
	k := BankKey{User: g.User, BankID: g.BankID, ID: in.CardID}
	u, err := s.store.CardUnblock(ctx, k)
	if errors.Is(err, ErrNotFound) {
		return Card{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "the card has no unblock challenge running; start one")
	}
	if err != nil {
		return Card{}, err
	}
	client, err := s.banks.Client(g.BankID)
	if err != nil {
		return Card{}, err
	}
	bctx, cancel := fraudBankContext(ctx)
	defer cancel()
	resp, err := client.VerifyCardUnblock(bctx, &adapterv1.VerifyCardUnblockRequest{
		BankConsentId: g.BankConsentID, BankCardId: in.CardID, ChallengeId: u.ChallengeID, Code: in.Code,
		IdempotencyKey: bankCardKey(g, opVerifyUnblock, in.IdempotencyKey),
	})
	if err != nil {
		return Card{}, err
	}
	switch resp.GetStatus() {
	case adapterv1.ScaStatus_SCA_STATUS_FINALISED:
	case adapterv1.ScaStatus_SCA_STATUS_STARTED:
		// A decoupled approval still pending: the card is as it was.
		return s.card(ctx, g, in.CardID)
	default:
		return Card{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_SCA_LOCKED, "the challenge was declined; start again")
	}
	if err := s.store.IdempotentTx(ctx, func(tx Tx) error { return tx.DeleteCardUnblock(ctx, k) }); err != nil {
		return Card{}, err
	}
	card, err := s.card(ctx, g, in.CardID)
	if err != nil {
		return Card{}, err
	}
	// The bank said the block is lifted; a listing that lags says
	// otherwise for a moment.
	card.State, card.BlockReason, card.Unblock = CardActive, "", nil
	return card, nil
}
