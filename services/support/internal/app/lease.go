package app

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// Each bank whose adapter implements EVENTS has one event stream, read by
// exactly one replica at a time: the one holding the bank's lease, a row
// of the support database (bank, holder, lease_until, cursor) taken with a
// conditional UPDATE and renewed at a third of its length. A replica that
// dies stops renewing and another takes over once the lease lapses; one
// that stops lets it lapse at once. Whoever holds the lease resumes from
// the cursor stored with the last event's effect. The stream is never
// opened "from now on" (an empty cursor), which would lose what the bank
// sent while it was down: until the first event is applied it asks for
// the events since the lease was first taken, and after the bank refuses
// a cursor (its history lost, or older than it keeps) for those since the
// last event applied (StreamEventsRequest.start_time).

// startSkew is how much earlier than the time the lease was first taken
// (our clock) the first stream starts, for a bank whose clock (its
// events' times) runs behind ours: events a little older than bankbridge's
// interest arrive rather than some newer ones being missed.
const startSkew = time.Minute

// RunBankEvents reads the event streams of every configured bank whose
// adapter implements EVENTS, holding each one's lease, until ctx ends.
func (s *Service) RunBankEvents(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, b := range s.banks.Banks() {
		wg.Go(func() { s.RunBank(ctx, b.ID) })
	}
	wg.Wait()
	return nil
}

// RunBank reads one bank's event stream whenever this replica holds its
// lease, until ctx ends; it returns at once when the bank's adapter does
// not implement EVENTS.
func (s *Service) RunBank(ctx context.Context, bankID string) {
	if !s.streamsEvents(ctx, bankID) {
		if ctx.Err() == nil {
			s.log.InfoContext(ctx, "bank adapter streams no events; its agents' and fraud events are not read", slog.String(telemetry.AttrBankID, bankID))
		}
		return
	}
	renew := s.cfg.LeaseTTL / 3
	for ctx.Err() == nil {
		now := s.now()
		pos, ok, err := s.store.AcquireLease(ctx, bankID, s.cfg.Holder, now, now.Add(s.cfg.LeaseTTL))
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "bank event lease not acquired; trying again", slog.String(telemetry.AttrBankID, bankID), slog.String("error", err.Error()))
		}
		if ok {
			if pos.Cursor == "" && !pos.Since.IsZero() {
				pos.Since = pos.Since.Add(-startSkew)
			}
			s.holdLease(ctx, bankID, pos)
			continue
		}
		sleep(ctx, renew)
	}
}

// streamsEvents asks the bank's adapter whether it implements EVENTS,
// again with backoff while it does not answer.
func (s *Service) streamsEvents(ctx context.Context, bankID string) bool {
	client, err := s.banks.Client(bankID)
	if err != nil {
		return false
	}
	wait := s.cfg.ReconnectBackoff
	for ctx.Err() == nil {
		info, err := client.GetAdapterInfo(ctx, &adapterv1.GetAdapterInfoRequest{})
		if err == nil {
			return slices.Contains(info.GetCapabilities(), adapterv1.Capability_CAPABILITY_EVENTS)
		}
		if ctx.Err() == nil {
			s.log.WarnContext(ctx, "bank adapter info not read; trying again", slog.String(telemetry.AttrBankID, bankID),
				slog.String(telemetry.AttrReason, apierr.ReasonString(apierr.Reason(err))))
		}
		sleep(ctx, wait)
		wait = min(2*wait, MaxReconnectBackoff)
	}
	return false
}

// holdLease streams the bank's events from pos while this replica holds
// its lease: a renewer extends it and ends the stream when the lease is
// lost or cannot be renewed before it lapses. When ctx ends the lease is
// let go at once, so another replica takes over without waiting.
func (s *Service) holdLease(ctx context.Context, bankID string, pos EventPosition) {
	lctx, lost := context.WithCancel(ctx)
	defer lost()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { s.renewLease(lctx, bankID, lost) })

	wait := s.cfg.ReconnectBackoff
	for lctx.Err() == nil {
		next, n, err := s.streamOnce(lctx, bankID, pos)
		pos = next
		if lctx.Err() != nil {
			break
		}
		if errors.Is(err, ErrLeaseLost) {
			s.log.InfoContext(ctx, "bank event lease taken over by another replica", slog.String(telemetry.AttrBankID, bankID))
			break
		}
		if n > 0 {
			wait = s.cfg.ReconnectBackoff
		}
		if apierr.Reason(err) == commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID && pos.Cursor != "" {
			// The bank keeps events 7 days, and may lose them (a sandbox
			// restarts empty): a cursor it no longer knows cannot be
			// resumed, so the stream starts again from the last applied
			// event's time: that event (and any of the same time) may be
			// applied again, as delivery is at least once anyway, and
			// nothing after it is lost.
			s.log.ErrorContext(ctx, "bank refused the stored event cursor; resuming from the time of the last event applied",
				slog.String(telemetry.AttrBankID, bankID), slog.String(telemetry.AttrIncidentID, apierr.IncidentID()))
			pos.Cursor = ""
			continue
		}
		attrs := []any{slog.String(telemetry.AttrBankID, bankID)}
		if err != nil {
			attrs = append(attrs, slog.String(telemetry.AttrReason, apierr.ReasonString(apierr.Reason(err))))
		}
		s.log.InfoContext(ctx, "bank event stream ended; reconnecting", attrs...)
		sleep(lctx, wait)
		wait = min(2*wait, MaxReconnectBackoff)
	}
	if ctx.Err() != nil {
		// Shutting down: let the lease lapse now, keeping the cursor.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := s.store.ReleaseLease(rctx, bankID, s.cfg.Holder); err != nil {
			s.log.WarnContext(ctx, "bank event lease not released; it lapses on its own", slog.String(telemetry.AttrBankID, bankID), slog.String("error", err.Error()))
		}
	}
}

// renewLease extends the lease every third of its length until ctx ends,
// and calls lost when another holder has it or it could not be renewed
// before it lapsed.
func (s *Service) renewLease(ctx context.Context, bankID string, lost context.CancelFunc) {
	t := time.NewTicker(s.cfg.LeaseTTL / 3)
	defer t.Stop()
	until := s.now().Add(s.cfg.LeaseTTL)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		next := s.now().Add(s.cfg.LeaseTTL)
		ok, err := s.store.RenewLease(ctx, bankID, s.cfg.Holder, next)
		switch {
		case err == nil && ok:
			until = next
		case err == nil:
			s.log.InfoContext(ctx, "bank event lease taken over by another replica", slog.String(telemetry.AttrBankID, bankID))
			lost()
			return
		case ctx.Err() != nil:
			return
		case !s.now().Before(until):
			s.log.WarnContext(ctx, "bank event lease lapsed: not renewed in time", slog.String(telemetry.AttrBankID, bankID), slog.String("error", err.Error()))
			lost()
			return
		}
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
