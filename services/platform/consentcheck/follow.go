package consentcheck

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// Follower is what a service that keeps data under consent does with the
// consent changes of every user: Handle acts on one change as it is
// committed (a Resync among them: changes may have been missed), and
// Reconcile checks everything kept against the consent it needs, for what
// Handle never heard of.
type Follower struct {
	// Handle acts on one change; an error is logged and left to the next
	// reconcile.
	Handle func(context.Context, Change) error
	// Reconcile runs as Follow starts, then every Every; an error is logged
	// and retried at the next tick.
	Reconcile func(context.Context) error
	Every     time.Duration
	// What names the service's data in log lines, e.g. "receipts".
	What   string
	Logger *slog.Logger
}

// ErrFeedEnded is Follow's answer when the change subscription closed
// while its context was still live.
var ErrFeedEnded = errors.New("consentcheck: the consent change feed ended")

// Follow subscribes (subscribe is Checker.AllChanges, or a port that
// forwards to it), reconciles once, then hands every change to f.Handle
// and reconciles every f.Every, until ctx ends (nil) or the subscription
// closes (ErrFeedEnded). It is the one loop of every service's consent
// change follower (a bootstrap task).
func Follow(ctx context.Context, subscribe func() (<-chan Change, func()), f Follower) error {
	log := f.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	changes, cancel := subscribe()
	defer cancel()
	t := time.NewTicker(f.Every)
	defer t.Stop()
	reconcile := func() {
		if err := f.Reconcile(ctx); err != nil && ctx.Err() == nil {
			log.ErrorContext(ctx, f.What+" not reconciled with consents; retrying at the next tick",
				slog.String(telemetry.AttrIncidentID, apierr.IncidentID()), slog.String("error", err.Error()))
		}
	}
	reconcile()
	for {
		select {
		case <-ctx.Done():
			return nil
		case c, ok := <-changes:
			if !ok {
				return ErrFeedEnded
			}
			if err := f.Handle(ctx, c); err != nil && ctx.Err() == nil {
				log.ErrorContext(ctx, "consent change not acted on; the next reconcile will",
					slog.String(telemetry.AttrIncidentID, apierr.IncidentID()), slog.String("error", err.Error()))
			}
		case <-t.C:
			reconcile()
		}
	}
}
