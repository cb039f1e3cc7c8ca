package bootstrap

import (
	"context"
	"log/slog"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// Periodic is a background task that runs at once and then every Every
// (a sweep, an expiry), for Service.Tasks.
type Periodic struct {
	// What names the run in its failure's log line: "<What> failed;
	// retrying at the next tick".
	What string
	// Every is the interval; it must be positive.
	Every time.Duration
	// Run does the work and says how many things it did.
	Run func(ctx context.Context) (int, error)
	// Done, when set, is logged with the count (bankbridge.count) after a
	// run that did something.
	Done   string
	Logger *slog.Logger
}

// Task runs p until ctx ends. A failed run is logged, with an incident
// id, and tried again at the next tick; it never ends the task.
func (p Periodic) Task(ctx context.Context) error {
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(p.Every)
	defer t.Stop()
	for {
		if n, err := p.Run(ctx); err != nil && ctx.Err() == nil {
			log.ErrorContext(ctx, p.What+" failed; retrying at the next tick",
				slog.String(telemetry.AttrIncidentID, apierr.IncidentID()), slog.String("error", err.Error()))
		} else if err == nil && n > 0 && p.Done != "" {
			log.InfoContext(ctx, p.Done, slog.Int("bankbridge.count", n))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
