package sandbox

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// Errors of TriggerFraudAlert.
var (
	// ErrUnknownCustomer is TriggerFraudAlert's error when no sandbox
	// customer has the login.
	ErrUnknownCustomer = errors.New("sandbox: no customer with this login")
	// ErrNoActiveConsent is TriggerFraudAlert's error when the customer has
	// no valid consent, so an alert would reach nobody.
	ErrNoActiveConsent = errors.New("sandbox: the customer has no active consent")
)

// ReportFraud implements adapters.FraudAdapter: every report opens a case
// and, with block_card, blocks the card(s) as BlockCard does.
func (b *Bank) ReportFraud(ctx context.Context, req *adapterv1.ReportFraudRequest) (*adapterv1.ReportFraudResponse, error) {
	var resp *adapterv1.ReportFraudResponse
	err := b.dataCall(ctx, req.GetBankConsentId(), commonv1.Scope_SCOPE_SUPPORT, func(_ *consent, cust *customer) error {
		var err error
		resp, err = idempotent(b.idem, "ReportFraud", req.GetIdempotencyKey(), req, func() (*adapterv1.ReportFraudResponse, error) {
			a := cust.account(req.GetBankAccountId())
			if a == nil {
				return nil, notFound("account under this consent")
			}
			if id := req.GetTransactionId(); id != "" && !a.hasTransaction(id) {
				return nil, notFound("transaction on this account")
			}
			r := &adapterv1.ReportFraudResponse{
				CaseId:          randomID("fraud-"),
				CardBlockStatus: adapterv1.CardBlockStatus_CARD_BLOCK_STATUS_NOT_REQUESTED,
			}
			if req.GetBlockCard() {
				if _, err := b.block(a, req.GetBankCardId()); err != nil {
					return nil, err
				}
				r.CardBlockStatus = adapterv1.CardBlockStatus_CARD_BLOCK_STATUS_BLOCKED
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

// BlockCard implements adapters.FraudAdapter: the block is immediate, and
// blocking a blocked card answers BLOCKED.
func (b *Bank) BlockCard(ctx context.Context, req *adapterv1.BlockCardRequest) (*adapterv1.BlockCardResponse, error) {
	var resp *adapterv1.BlockCardResponse
	err := b.dataCall(ctx, req.GetBankConsentId(), commonv1.Scope_SCOPE_SUPPORT, func(_ *consent, cust *customer) error {
		var err error
		resp, err = idempotent(b.idem, "BlockCard", req.GetIdempotencyKey(), req, func() (*adapterv1.BlockCardResponse, error) {
			a := cust.account(req.GetBankAccountId())
			if a == nil {
				return nil, notFound("account under this consent")
			}
			cards, err := b.block(a, req.GetBankCardId())
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

// block blocks one card of a, or all of them when cardID is empty. The
// caller holds Bank.mu.
func (b *Bank) block(a *account, cardID string) ([]card, error) {
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
		b.blocked[c.id] = true
	}
	return cards, nil
}

// TriggerFraudAlert makes the bank suspect fraud on the customer with the
// login: one FraudAlert event per active consent of theirs, on their card
// account (or first account) and its first card. It returns the alerts'
// ids. The admin endpoint POST /admin/fraud-alerts?user=<login> calls it.
func (b *Bank) TriggerFraudAlert(login string) ([]string, error) {
	cust := b.customers[login]
	if cust == nil {
		return nil, ErrUnknownCustomer
	}
	if len(cust.accounts) == 0 {
		return nil, ErrNoActiveConsent
	}
	a := cust.accounts[0]
	for _, acc := range cust.accounts {
		if acc.typ == adapterv1.AccountType_ACCOUNT_TYPE_CARD {
			a = acc
			break
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.opts.Now()
	var ids []string
	for _, id := range slices.Sorted(maps.Keys(b.consents)) {
		c := b.consents[id]
		if c.login != login || c.revoked || c.status != adapterv1.ScaStatus_SCA_STATUS_FINALISED || !now.Before(c.validUntil) {
			continue
		}
		alert := &adapterv1.FraudAlert{
			AlertId:       randomID("alert-"),
			BankConsentId: c.id,
			BankAccountId: a.id,
			Amount:        eur(-899_00),
			MerchantName:  "Gadget Hub Online",
			ActivityTime:  timestamppb.New(now.Add(-2 * time.Minute)),
			Severity:      adapterv1.FraudSeverity_FRAUD_SEVERITY_HIGH,
			Description:   "Card payment in a country you have not used this card in before. Was it you?",
		}
		if len(a.cards) > 0 {
			alert.BankCardId = a.cards[0].id
		}
		b.events.append(&adapterv1.StreamEventsResponse{Event: &adapterv1.StreamEventsResponse_FraudAlert{FraudAlert: alert}})
		ids = append(ids, alert.AlertId)
	}
	if len(ids) == 0 {
		return nil, ErrNoActiveConsent
	}
	return ids, nil
}
