package events

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"
)

// Subscribe streams the events f selects, in stream order, on the returned
// channel: the events after cursor (the Cursor of a Delivered), or, with
// cursor "", those published from now on. The channel closes when ctx ends
// or the subscription fails for good; a reader that sees it close while
// ctx is live has lost the bus and may subscribe again from its last
// cursor.
//
// A cursor older than the events the stream keeps, or from a stream since
// created anew, answers ErrCursorExpired: the reader must resync (list,
// then subscribe from ""). A cursor that is not one answers
// ErrCursorInvalid.
func (b *Bus) Subscribe(ctx context.Context, f Filter, cursor string) (<-chan Delivered, error) {
	sel, err := b.selection(f)
	if err != nil {
		return nil, err
	}
	// From now is from the sequence after the stream's last, not
	// DeliverNew: the ordered consumer is recreated when it is lost (a
	// reconnect, missed heartbeats), and one that had delivered nothing yet
	// would start again at the new end, losing what was stored meanwhile.
	var start uint64
	if cursor == "" {
		start, err = b.end(ctx)
	} else {
		start, err = b.resume(ctx, cursor)
	}
	if err != nil {
		return nil, err
	}
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: sel.subjects, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start,
	}
	cons, err := b.js.OrderedConsumer(ctx, b.name, cfg)
	if err != nil {
		return nil, fmt.Errorf("events: subscribe: %w", err)
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("events: subscribe: %w", err)
	}
	out := make(chan Delivered)
	go func() {
		defer close(out)
		defer it.Stop()
		for {
			msg, err := it.Next(jetstream.NextContext(ctx))
			if err != nil {
				if ctx.Err() == nil {
					b.log.Warn("event subscription ended", slog.String("error", err.Error()))
				}
				return
			}
			if !sel.kept(msg.Subject()) {
				continue
			}
			d, err := b.delivered(msg)
			if err != nil {
				// Not ours to read (an unknown payload version): skip it
				// rather than stop every reader at it.
				b.log.Error("event skipped", slog.String("error", err.Error()))
				continue
			}
			select {
			case out <- d:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// end returns the sequence the stream's next event will have.
func (b *Bus) end(ctx context.Context) (uint64, error) {
	info, err := b.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("events: stream info: %w", err)
	}
	return info.State.LastSeq + 1, nil
}

// resume returns the stream sequence to start from after cursor s.
func (b *Bus) resume(ctx context.Context, s string) (uint64, error) {
	c, err := parseCursor(s)
	if err != nil {
		return 0, err
	}
	if c.stream != b.name {
		return 0, fmt.Errorf("%w: a cursor of stream %q, not %q", ErrCursorInvalid, c.stream, b.name)
	}
	info, err := b.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("events: stream info: %w", err)
	}
	switch {
	case c.created != info.Created.UnixNano():
		return 0, fmt.Errorf("%w: the stream was created anew since", ErrCursorExpired)
	case c.seq > info.State.LastSeq:
		return 0, fmt.Errorf("%w: past the stream's last event", ErrCursorInvalid)
	case c.seq+1 < info.State.FirstSeq:
		return 0, fmt.Errorf("%w: the events after it are gone", ErrCursorExpired)
	}
	return c.seq + 1, nil
}
