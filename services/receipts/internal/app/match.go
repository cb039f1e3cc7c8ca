package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// Matching a partner's receipt to the user's card transaction runs in the
// background, never in the partner's request: the ingest queues a job, and
// the matcher claims due jobs, reads the user's card transactions at every
// bank whose link covers transactions for purchase history, and matches
// when exactly one transaction can be the purchase. Otherwise the job is
// tried again after a backoff (the receipt often arrives before the bank
// reports the payment), until MatchGiveUp after the ingest.

// The window around the purchase in which its card transaction may fall:
// authorisations can precede the receipt's time a little, and bookings
// follow it by days.
const (
	windowBefore = 24 * time.Hour
	windowAfter  = 72 * time.Hour
)

// Matcher settings.
const (
	matchBatch = 50
	matchLease = 5 * time.Minute
)

// candidates are the transactions that can be r's purchase: card payments
// of exactly its total in its currency, within the window around its
// purchase time, at a merchant whose name agrees, and, when the receipt
// names the card's last 4, on that card.
func candidates(r Receipt, txs []bankTx) []bankTx {
	c := r.Content
	want := c.Summary.TotalCost.Negated()
	from, to := c.PurchaseTime.Add(-windowBefore), c.PurchaseTime.Add(windowAfter)
	last4 := c.Last4()
	var out []bankTx
	for _, t := range txs {
		when := t.When()
		switch {
		case !t.Card(), !t.Amount.Equal(want), when.IsZero(), when.Before(from), when.After(to),
			!MerchantsAgree(c.MerchantName, t.CounterpartyName), last4 != "" && t.CardLast4 != last4:
			continue
		}
		out = append(out, t)
	}
	return out
}

// match returns the transaction r belongs to and how sure that is, when
// exactly one can be it: never a guess between two.
func match(r Receipt, txs []bankTx) (bankTx, Confidence, bool) {
	cs := candidates(r, txs)
	if len(cs) != 1 {
		return bankTx{}, "", false
	}
	if r.Content.Last4() != "" {
		return cs[0], ConfidenceHigh, true
	}
	return cs[0], ConfidenceMedium, true
}

// wakeMatcher tells the matcher a job may be due.
func (s *Service) wakeMatcher() {
	select {
	case s.matchWake <- struct{}{}:
	default:
	}
}

// RunMatcher matches due jobs until ctx ends.
func (s *Service) RunMatcher(ctx context.Context) error {
	for {
		n, err := s.MatchDue(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "match jobs not claimed; trying again shortly",
				slog.String(telemetry.AttrIncidentID, apierr.IncidentID()), slog.String("error", err.Error()))
		}
		if n == matchBatch {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.matchWake:
		case <-time.After(s.cfg.MatchPoll):
		}
	}
}

// MatchDue claims the jobs due now and runs them, one read of the banks
// per user; it returns how many it claimed.
func (s *Service) MatchDue(ctx context.Context) (int, error) {
	jobs, err := s.store.ClaimMatchJobs(ctx, s.stamp(), matchLease, matchBatch)
	if err != nil {
		return 0, err
	}
	byUser := map[string][]MatchJob{}
	var users []string
	for _, j := range jobs {
		if byUser[j.User] == nil {
			users = append(users, j.User)
		}
		byUser[j.User] = append(byUser[j.User], j)
	}
	for _, u := range users {
		if ctx.Err() != nil {
			break
		}
		s.matchUser(ctx, u, byUser[u])
	}
	return len(jobs), nil
}

// matchUser runs one user's due jobs against one read of their banks.
func (s *Service) matchUser(ctx context.Context, user string, jobs []MatchJob) {
	txs, complete := s.userCardTransactions(ctx, user)
	for _, j := range jobs {
		if err := s.matchJob(ctx, j, txs, complete); err != nil {
			s.log.ErrorContext(ctx, "match job failed; it is retried after its lease",
				slog.String(telemetry.AttrIncidentID, apierr.IncidentID()), slog.String("error", err.Error()))
		}
	}
}

// userCardTransactions reads the user's transactions at every bank whose
// link covers them for purchase history. complete is false when a bank
// could not be read now: then no match is made, since a transaction there
// could make two candidates of one.
func (s *Service) userCardTransactions(ctx context.Context, user string) (txs []bankTx, complete bool) {
	links, err := s.consent.CoveringLinks(ctx, user, commonv1.Scope_SCOPE_TRANSACTIONS, commonv1.Purpose_PURPOSE_PURCHASE_HISTORY)
	if err != nil {
		s.log.WarnContext(ctx, "links covering transactions not listed; matching later",
			slog.String(telemetry.AttrReason, apierr.ReasonString(apierr.Reason(err))), slog.String("error", err.Error()))
		return nil, false
	}
	complete = true
	for _, l := range links {
		got, err := s.readTransactions(ctx, user, l, MethodMatch)
		switch {
		case errors.Is(err, errBankSkipped):
			s.logBankFailure(ctx, "bank passed over for matching", l.BankID, err)
		case err != nil:
			s.logBankFailure(ctx, "bank not read for matching; trying again later", l.BankID, err)
			complete = false
		default:
			txs = append(txs, got...)
		}
	}
	return txs, complete
}

func (s *Service) matchJob(ctx context.Context, j MatchJob, txs []bankTx, complete bool) error {
	r, err := s.store.Receipt(ctx, j.User, j.ReceiptID)
	switch {
	case errors.Is(err, ErrNotFound):
		return s.store.DropMatchJob(ctx, j.User, j.ReceiptID)
	case err != nil:
		return err
	case r.Match != nil:
		return s.store.DropMatchJob(ctx, j.User, j.ReceiptID)
	}
	now := s.stamp()
	if t, conf, ok := match(r, txs); ok && complete {
		m := Match{Transaction: t.Name(), Confidence: conf, Time: now}
		_, err := s.store.SetMatch(ctx, r.User, r.ID, m,
			Event{ID: newID(), Type: EventMatched, User: r.User, Client: r.Client, Receipt: r.Name(), Match: &m, Time: now})
		return err
	}
	j.Attempts++
	if !now.Before(j.Deadline) {
		return s.store.DropMatchJob(ctx, j.User, j.ReceiptID) // no transaction in 14 days: stays unmatched
	}
	j.Due = now.Add(s.backoff(j.Attempts))
	return s.store.RescheduleMatch(ctx, j)
}

// backoff is the wait before the next try after attempts tries.
func (s *Service) backoff(attempts int) time.Duration {
	b := s.cfg.MatchBackoff
	return b[min(max(attempts, 1), len(b))-1]
}
