package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// consumeConfig is a worker's consumer; see the ConsumeOptions.
type consumeConfig struct {
	minBackoff, maxBackoff time.Duration
	ackWait                time.Duration
	maxAckPending          int
	startTime              time.Time
}

// ConsumeOption tunes Consume.
type ConsumeOption func(*consumeConfig)

// WithBackoff sets the wait before a failed event is handled again: min
// after the first failure, doubling (with ±20% jitter) up to max. Default
// 1s to 5m.
func WithBackoff(minWait, maxWait time.Duration) ConsumeOption {
	return func(c *consumeConfig) { c.minBackoff, c.maxBackoff = minWait, maxWait }
}

// WithAckWait sets how long a handler may take: its ctx ends then, and the
// event is handed out again. Default 30s.
func WithAckWait(d time.Duration) ConsumeOption {
	return func(c *consumeConfig) { c.ackWait = d }
}

// WithStartTime makes a consumer created now start at the events stored
// since t rather than at the oldest the stream keeps. It has no effect on
// a consumer that exists already.
func WithStartTime(t time.Time) ConsumeOption {
	return func(c *consumeConfig) { c.startTime = t }
}

var durableName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Consume hands each event f selects to handle until ctx ends, through the
// durable consumer named durable: every replica that consumes with the
// same name shares the work, and the position survives restarts. An event
// is done when handle returns nil; when it returns an error, the event is
// handed out again after a backoff (exponential, capped; see WithBackoff),
// without limit, until it succeeds. Events are handled one at a time per
// process, in stream order, but a retried event comes back after later
// ones: handlers must not depend on order across retries.
//
// A consumer created by Consume starts at the oldest event the stream
// keeps (see WithStartTime). Consume returns nil when ctx ends, or an
// error when the consumer cannot be set up.
func (b *Bus) Consume(ctx context.Context, durable string, f Filter, handle func(context.Context, Delivered) error, opts ...ConsumeOption) error {
	if !durableName.MatchString(durable) {
		return fmt.Errorf("events: consumer name %q: want 1 to 64 of [A-Za-z0-9_-]", durable)
	}
	cfg := consumeConfig{minBackoff: time.Second, maxBackoff: 5 * time.Minute, ackWait: 30 * time.Second, maxAckPending: 256}
	for _, o := range opts {
		o(&cfg)
	}
	sel, err := b.selection(f)
	if err != nil {
		return err
	}
	cons, err := b.durable(ctx, durable, sel.subjects, cfg)
	if err != nil {
		return err
	}
	wait := 100 * time.Millisecond
	for {
		err := b.consume(ctx, cons, sel, cfg, handle)
		if ctx.Err() != nil {
			return nil
		}
		b.log.Warn("event consumer interrupted; resuming", slog.String("component", durable), slog.String("error", err.Error()))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
		if c, err := b.durable(ctx, durable, sel.subjects, cfg); err == nil {
			cons = c
		}
	}
}

// durable creates the consumer, or updates its filter and timings while
// keeping where it started.
func (b *Bus) durable(ctx context.Context, name string, subjects []string, c consumeConfig) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:       name,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.ackWait,
		MaxDeliver:    -1,
		MaxAckPending: c.maxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if len(subjects) == 1 {
		cfg.FilterSubject = subjects[0] // what a server before 2.10 reads
	} else {
		cfg.FilterSubjects = subjects
	}
	if !c.startTime.IsZero() {
		t := c.startTime
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	}
	for range 2 {
		existing, err := b.js.Consumer(ctx, b.name, name)
		if err == nil {
			was := existing.CachedInfo().Config
			cfg.DeliverPolicy, cfg.OptStartTime, cfg.OptStartSeq = was.DeliverPolicy, was.OptStartTime, was.OptStartSeq
			cons, err := b.js.UpdateConsumer(ctx, b.name, cfg)
			if err != nil {
				return nil, fmt.Errorf("events: update consumer %s: %w", name, err)
			}
			return cons, nil
		}
		if !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("events: consumer %s: %w", name, err)
		}
		cons, err := b.js.CreateConsumer(ctx, b.name, cfg)
		if err == nil {
			return cons, nil
		}
		if !errors.Is(err, jetstream.ErrConsumerExists) {
			return nil, fmt.Errorf("events: create consumer %s: %w", name, err)
		}
		// Another replica created it first: update that one.
	}
	return nil, fmt.Errorf("events: consumer %s: created and removed concurrently", name)
}

// consume handles messages until ctx ends or the iterator fails.
func (b *Bus) consume(ctx context.Context, cons jetstream.Consumer, sel selection, c consumeConfig, handle func(context.Context, Delivered) error) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(min(c.maxAckPending, 64)))
	if err != nil {
		return err
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if errors.Is(err, jetstream.ErrNoHeartbeat) && ctx.Err() == nil {
				continue // the server was slow to answer; the iterator carries on
			}
			return err
		}
		if !sel.kept(msg.Subject()) {
			_ = msg.Ack()
			continue
		}
		b.handle(ctx, msg, c, handle)
	}
}

func (b *Bus) handle(ctx context.Context, msg jetstream.Msg, c consumeConfig, handle func(context.Context, Delivered) error) {
	d, err := b.delivered(msg)
	if err != nil {
		b.log.Error("event cannot be read; dropped", slog.String("error", err.Error()))
		_ = msg.Term()
		return
	}
	hctx, cancel := context.WithTimeout(ctx, c.ackWait)
	err = handle(hctx, d)
	cancel()
	if err == nil {
		if err := msg.Ack(); err != nil {
			b.log.Warn("event ack lost; it will be handled again", slog.String("error", err.Error()))
		}
		return
	}
	attempt := uint64(1)
	if meta, merr := msg.Metadata(); merr == nil {
		attempt = meta.NumDelivered
	}
	delay := backoff(attempt, c.minBackoff, c.maxBackoff)
	b.log.Warn("event handler failed; retrying later",
		slog.String("bankbridge.event_type", d.Type), slog.Uint64("bankbridge.attempt", attempt),
		slog.Duration("bankbridge.retry_in", delay), slog.String("error", err.Error()))
	_ = msg.NakWithDelay(delay)
}

// backoff is the wait after the attempt-th failure: minWait doubling, capped
// at maxWait, with ±20% jitter so retries of many events spread out.
func backoff(attempt uint64, minWait, maxWait time.Duration) time.Duration {
	d := minWait
	for i := uint64(1); i < attempt && d < maxWait; i++ {
		d *= 2
	}
	d = min(d, maxWait)
	jitter := time.Duration((rand.Float64()*0.4 - 0.2) * float64(d))
	return max(d+jitter, 0)
}
