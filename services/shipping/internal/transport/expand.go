package transport

import (
	"context"
	"log/slog"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
	"github.com/bankbridge/bankbridge/services/shipping/internal/app"
	"github.com/bankbridge/bankbridge/services/shipping/internal/shipmentpb"
)

// expandAfter is how long after a parcel event its expansion starts.
const expandAfter = 250 * time.Millisecond

// ExpandConsumer is the durable consumer that writes each parcel event's
// per-user events, shared by every replica.
const ExpandConsumer = "shipping-parcel-expand"

// ExpandParcelEvents runs until ctx ends: every parcel event (an audience
// event) is handed once, across the replicas, to app.ExpandParcelEvent,
// which writes each recipient's own event for webhooks and resumed
// streams. A consumer created now starts at the events stored from now:
// a first deployment does not expand the stream's history.
func ExpandParcelEvents(bus *events.Bus, a *app.Service, log *slog.Logger) func(context.Context) error {
	return func(ctx context.Context) error {
		return bus.Consume(ctx, ExpandConsumer, events.Filter{Types: []string{app.EventParcelTracked}},
			func(ctx context.Context, d events.Delivered) error {
				// The live streams first: the hubs hand the event to them
				// the moment it is published, and writing ten thousand
				// users' events alongside would slow that down.
				// (At most expandAfter: d.Time is another process's clock.)
				if wait := min(expandAfter, expandAfter-time.Since(d.Time)); wait > 0 {
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(wait):
					}
				}
				ev, err := readEvent(d)
				if err != nil || ev.GetCheckpoint() == nil {
					// It would fail the same way every time: drop it, loudly.
					log.ErrorContext(ctx, "parcel event not expanded: cannot read it",
						slog.String(telemetry.AttrIncidentID, apierr.IncidentID()), slog.String("bankbridge.event_id", d.ID))
					return nil
				}
				return a.ExpandParcelEvent(ctx, app.ParcelEvent{
					ID: d.ID, Audience: d.Audience, Checkpoint: shipmentpb.Checkpoint(ev.GetCheckpoint()), Time: d.Time,
				})
			}, events.WithStartTime(time.Now()))
	}
}
