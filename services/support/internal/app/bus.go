package app

import (
	"context"

	"github.com/bankbridge/bankbridge/services/platform/events"
)

// Bus is the event bus the service's workers read (*events.Bus): Consume
// hands each event f selects to handle through the durable consumer,
// again after a backoff until handle returns nil, until ctx ends.
type Bus interface {
	Consume(ctx context.Context, durable string, f events.Filter, handle func(context.Context, events.Delivered) error, opts ...events.ConsumeOption) error
}
