package app

import (
	"context"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/bankbridge/bankbridge/services/platform/events"
)

// The durable consumers of the fraud workers: every replica that runs
// them shares the work.
const (
	durableFraudReports = "support-fraud-reports"
	durableAlertAnswers = "support-alert-answers"
)

// RunFraudWorkers runs, until ctx ends, the fraud files' workers: the
// fraud report worker (delivers each report filed to its bank), the alert
// answer worker (passes each answer to the bank), both on bus as durable
// consumers, redelivered with backoff until the bank takes them, and the
// sweep of their expired idempotency keys.
func (s *Service) RunFraudWorkers(ctx context.Context, bus Bus) error {
	backoff := events.WithBackoff(s.fraud.deliveryBackoff, MaxDeliveryBackoff)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return bus.Consume(ctx, durableFraudReports, events.Filter{Types: []string{TypeFraudReportFiled}}, s.deliverFraudReport, backoff)
	})
	g.Go(func() error {
		return bus.Consume(ctx, durableAlertAnswers, events.Filter{Types: []string{TypeAlertAnswered}}, s.deliverAlertAnswer, backoff)
	})
	g.Go(func() error {
		t := time.NewTicker(s.fraud.sweepInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			if _, err := s.SweepFraud(ctx); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "fraud sweep failed; trying again at the next one", slog.String("error", err.Error()))
			}
		}
	})
	return g.Wait()
}

// SweepFraud deletes the fraud files' idempotency keys past their TTL and
// the kept updates of cases no report ever named; it returns how many
// rows went.
func (s *Service) SweepFraud(ctx context.Context) (int, error) {
	now := s.now()
	return s.store.DeleteExpiredFraud(ctx, now.Add(-s.fraud.keyTTL), now.Add(-caseUpdateTTL))
}
