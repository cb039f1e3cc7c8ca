package app

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// A card issuer may know what a card purchase bought (enhanced transaction
// data). For each link that covers transactions for purchase history and
// also receipts, at a bank not known to lack the capability, the issuer
// sync asks about each recent card transaction that has no issuer receipt
// yet, checks that the answer adds up, and stores it as a receipt matched
// to that very transaction. It runs when a link becomes VALID, when the
// user lists receipts and the last sync is older than IssuerInterval (in
// the background), and periodically for users synced before.

// Issuer sync bounds.
const (
	// issuerQueue is how many users may wait for a sync; more are dropped
	// (the periodic sync or the next list picks them up).
	issuerQueue = 1024
	// maxDetailsPerSync bounds the purchase details asked for one user at
	// one sync; the rest wait for the next.
	maxDetailsPerSync = 200
	// periodicBatch is how many users the periodic sync takes at once.
	periodicBatch = 100
	// noDetailsFor is how long a bank that said it has no purchase
	// details is not asked again.
	noDetailsFor = 24 * time.Hour
)

type issuerJob struct {
	user string
	// force syncs even when the last sync is recent (a link became VALID).
	force bool
}

// kickIssuer queues a sync of the user's issuer receipts without waiting;
// a full queue drops it.
func (s *Service) kickIssuer(user string, force bool) {
	select {
	case s.issuer <- issuerJob{user: user, force: force}:
	default:
	}
}

// RunIssuer syncs queued users, and every IssuerInterval the users whose
// last sync is older than it, until ctx ends.
func (s *Service) RunIssuer(ctx context.Context) error {
	tick := time.NewTicker(s.cfg.IssuerInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case j := <-s.issuer:
			s.syncQueued(ctx, j)
		case <-tick.C:
			s.syncStale(ctx)
		}
	}
}

func (s *Service) syncQueued(ctx context.Context, j issuerJob) {
	if !j.force {
		last, err := s.store.IssuerSyncTime(ctx, j.user)
		if err != nil {
			s.log.ErrorContext(ctx, "issuer sync time not read", slog.String("error", err.Error()))
			return
		}
		if s.now().Sub(last) < s.cfg.IssuerInterval {
			return
		}
	}
	s.syncLogged(ctx, j.user, false)
}

// syncStale syncs the users last synced longer than IssuerInterval ago.
func (s *Service) syncStale(ctx context.Context) {
	users, err := s.store.UsersToSync(ctx, s.now().Add(-s.cfg.IssuerInterval), periodicBatch)
	if err != nil {
		s.log.ErrorContext(ctx, "users to sync not read", slog.String("error", err.Error()))
		return
	}
	for _, u := range users {
		if ctx.Err() != nil {
			return
		}
		s.syncLogged(ctx, u, true)
	}
}

// syncLogged syncs the user's issuer receipts and logs a failure. Periodic
// syncs forget a user with no link to an issuer to ask: until a link
// becomes VALID or the user lists receipts, there is nothing to sync.
func (s *Service) syncLogged(ctx context.Context, user string, periodic bool) {
	asked, err := s.syncIssuer(ctx, user)
	if err == nil && periodic && !asked {
		err = s.store.SetIssuerSyncTime(ctx, user, time.Time{})
	}
	if err != nil && ctx.Err() == nil {
		s.log.ErrorContext(ctx, "issuer receipts not synced; trying again later",
			slog.String(telemetry.AttrIncidentID, apierr.IncidentID()), slog.String("error", err.Error()))
	}
}

// lacksDetails reports a bank that said lately it has no purchase details.
func (s *Service) lacksDetails(bank string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	since, ok := s.noDetails[bank]
	return ok && s.now().Sub(since) < noDetailsFor
}

func (s *Service) markNoDetails(bank string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noDetails[bank] = s.now()
}

// claimSync marks the user's sync as running; false when one is.
func (s *Service) claimSync(user string) (release func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.syncing[user] {
		return nil, false
	}
	s.syncing[user] = true
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.syncing, user)
	}, true
}

// SyncIssuer reads the user's issuer receipts from the banks now, and
// records when, so lists do not ask again within IssuerInterval.
func (s *Service) SyncIssuer(ctx context.Context, user string) error {
	_, err := s.syncIssuer(ctx, user)
	return err
}

// syncIssuer is SyncIssuer, reporting whether any bank was asked.
func (s *Service) syncIssuer(ctx context.Context, user string) (asked bool, err error) {
	release, ok := s.claimSync(user)
	if !ok {
		return true, nil // another sync of the user runs
	}
	defer release()
	links, err := s.consent.CoveringLinks(ctx, user, commonv1.Scope_SCOPE_TRANSACTIONS, commonv1.Purpose_PURPOSE_PURCHASE_HISTORY)
	if err != nil {
		return false, err
	}
	now := s.stamp()
	for _, l := range links {
		if !slices.Contains(l.Scopes, commonv1.Scope_SCOPE_RECEIPTS) || s.lacksDetails(l.BankID) {
			continue
		}
		asked = true
		if err := s.syncBank(ctx, user, l); err != nil {
			s.logBankFailure(ctx, "issuer receipts of a bank not synced", l.BankID, err)
		}
	}
	return asked, s.store.SetIssuerSyncTime(ctx, user, now)
}

// syncBank asks the bank of link about the user's recent card
// transactions that have no issuer receipt yet.
func (s *Service) syncBank(ctx context.Context, user string, l CoveringLink) error {
	txs, err := s.readTransactions(ctx, user, l, MethodIssuer)
	if err != nil {
		return err
	}
	since := s.now().Add(-s.cfg.IssuerLookback)
	var recent []bankTx
	var txNames []string
	for _, t := range txs {
		if t.Card() && !t.When().Before(since) {
			recent = append(recent, t)
			txNames = append(txNames, t.Name())
			if t.PendingID != "" {
				txNames = append(txNames, t.Account.Transaction(t.PendingID).String())
			}
		}
	}
	if len(recent) == 0 {
		return nil
	}
	known, err := s.store.IssuerKnown(ctx, user, txNames)
	if err != nil {
		return err
	}
	var ask []bankTx
	for _, t := range recent {
		// A booked transaction whose pending one has a receipt is the same
		// purchase: one receipt is enough.
		if known[t.Name()] || (t.PendingID != "" && known[t.Account.Transaction(t.PendingID).String()]) {
			continue
		}
		ask = append(ask, t)
	}
	if len(ask) == 0 {
		return nil
	}
	ask = ask[:min(len(ask), maxDetailsPerSync)]
	if err := s.record(ctx, user, s.cfg.ClientID, MethodIssuer, l.Link, commonv1.Scope_SCOPE_RECEIPTS); err != nil {
		return err
	}
	at := BankAccess{BankID: l.BankID, BankConsentID: l.BankConsentID, Purpose: commonv1.Purpose_PURPOSE_PURCHASE_HISTORY}
	for _, t := range ask {
		d, err := s.banks.GetPurchaseDetails(ctx, at, t.Account.BankAccountID, t.ID)
		switch {
		case unsupported(err):
			s.markNoDetails(l.BankID)
			return nil
		case apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND):
			if err := s.store.AddIssuerMiss(ctx, user, t.Name(), s.stamp()); err != nil {
				return err
			}
			continue
		case err != nil:
			return err // tried again at the next sync
		}
		if err := s.addIssuerReceipt(ctx, user, l, t, d); err != nil {
			return err
		}
	}
	return nil
}

// addIssuerReceipt stores the issuer's answer as a receipt matched to its
// transaction, when it adds up and agrees with the transaction. An answer
// that does not is logged by its rules (never its values) and remembered
// as a miss, so it is not asked for again; no caller ever sees it.
func (s *Service) addIssuerReceipt(ctx context.Context, user string, l CoveringLink, t bankTx, d PurchaseDetails) error {
	now := s.stamp()
	c := d.content(t.Transaction)
	vs := CheckAmounts(c, "")
	if !c.Summary.TotalCost.Equal(t.Amount.Negated()) {
		vs = append(vs, apierr.FieldViolation{Field: "total", Reason: "purchase_details.total_is_transaction_amount"})
	}
	if c.MerchantName == "" || c.PurchaseTime.IsZero() {
		vs = append(vs, apierr.FieldViolation{Field: "merchant_name", Reason: "purchase_details.required"})
	}
	if len(vs) > 0 {
		rules := make([]string, len(vs))
		for i, v := range vs {
			rules[i] = v.Field + ":" + v.Reason
		}
		s.log.WarnContext(ctx, "purchase details that do not add up dropped",
			slog.String(telemetry.AttrBankID, l.BankID), slog.String("bankbridge.rules", strings.Join(rules, ",")))
		return s.store.AddIssuerMiss(ctx, user, t.Name(), now)
	}
	id := newID()
	m := &Match{Transaction: t.Name(), Confidence: ConfidenceIssuer, Time: now}
	r := Receipt{
		User: user, ID: id, BankID: l.BankID, Link: l.Link, SourceTransaction: t.Name(), Client: l.Client,
		Version: 1, ChainID: id, Content: c, ContentHash: contentHash(c, ""), Match: m, CreateTime: now,
	}
	_, err := s.store.AddIssuerReceipt(ctx, r, []Event{
		{ID: newID(), Type: EventCreated, User: user, Client: l.Client, Receipt: r.Name(), Time: now},
		{ID: newID(), Type: EventMatched, User: user, Client: l.Client, Receipt: r.Name(), Match: m, Time: now},
	})
	if errors.Is(err, ErrConflict) {
		return nil // another replica stored it first
	}
	return err
}

// content is the receipt of a card issuer's purchase details: paid by the
// transaction's card.
func (d PurchaseDetails) content(t Transaction) Content {
	c := Content{
		MerchantName: d.MerchantName,
		OrderNumber:  d.OrderNumber,
		LineItems:    slices.Clone(d.LineItems),
		Summary:      Summary{Subtotal: d.Subtotal, ShippingCost: d.ShippingCost, TotalTax: d.Tax, TotalCost: d.Total},
		Adjustments:  slices.Clone(d.Adjustments),
		PurchaseTime: d.PurchaseTime.UTC(),
	}
	c.PaymentMethod = &PaymentMethod{Type: "CARD"}
	if t.CardLast4 != "" {
		c.PaymentMethod.MaskedNumber = &MaskedNumber{Last4: t.CardLast4, Display: "•••• " + t.CardLast4}
	}
	return c
}
