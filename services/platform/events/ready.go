package events

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
)

// Ready reports whether the bus can publish now: its NATS connection is
// up and the server answers a round trip within ctx. A connection that is
// reconnecting, or a server that stopped answering before the client
// noticed (frozen, or the network silently dropping), is not ready.
func (b *Bus) Ready(ctx context.Context) error {
	if s := b.nc.Status(); s != nats.CONNECTED {
		return fmt.Errorf("events: NATS connection %s", s)
	}
	if err := b.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("events: NATS round trip: %w", err)
	}
	return nil
}
