package app

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// Log attribute keys: ids the service made and counts, never a URL or
// an event's resource; all pass the telemetry allow-list.
const (
	attrDeliveryID = "bankbridge.webhook_delivery_id"
	attrEndpointID = "bankbridge.webhook_endpoint_id"
	attrAttempts   = "bankbridge.webhook_attempts"
)

// Delivery works in two steps, so that nothing rests on a process staying
// up for 24 hours:
//
//  1. HandleEvent (the bus's durable consumer) keeps each event of a client
//     and queues one delivery per endpoint subscribed to its type, in one
//     transaction, then acknowledges the event. An event the bus delivers
//     twice is kept once.
//  2. Dispatch claims due deliveries (a lease, so replicas share the work
//     and a dead worker's claims come due again), POSTs each, records the
//     attempt, and schedules the next with exponential backoff and full
//     jitter until the retry window ends; then the delivery FAILED.

// Durable is the bus consumer's durable name: every replica shares it, so
// each event is handled once across them.
const Durable = "webhooks"

// UserAgent is sent with every webhook.
const UserAgent = "bankbridge-webhooks/1"

// HandleEvent keeps an event of the bus and queues its deliveries. An
// error makes the bus deliver the event again later.
func (s *Service) HandleEvent(ctx context.Context, d events.Delivered) error {
	if d.Client == "" {
		return nil // an event for no client's product: nobody to tell
	}
	eps, err := s.cfg.Store.EndpointsOf(ctx, d.Client)
	if err != nil {
		return err
	}
	ev := Event{ID: d.ID, Type: d.Type, Client: d.Client, Resource: d.Resource, Time: d.Time.UTC().Truncate(time.Microsecond), Data: d.Data}
	now := s.now().UTC().Truncate(time.Microsecond)
	var ds []Delivery
	for _, ep := range eps {
		if ep.Subscribes(ev.Type) {
			ds = append(ds, s.newDelivery(ep, ev, now, false))
		}
	}
	added, err := s.cfg.Store.AddEvent(ctx, ev, ds)
	if err != nil {
		return err
	}
	if added && len(ds) > 0 {
		s.Wake()
	}
	return nil
}

// Consume runs the bus's durable consumer until ctx ends.
func (s *Service) Consume(ctx context.Context, bus Bus) error {
	err := bus.Consume(ctx, Durable, events.Filter{}, s.HandleEvent)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (s *Service) newDelivery(ep Endpoint, ev Event, now time.Time, replay bool) Delivery {
	return Delivery{
		ID: newID("dl_"), Client: ep.Client, EndpointID: ep.ID, EventID: ev.ID, EventType: ev.Type,
		State: DeliveryPending, CreateTime: now, NextAttemptTime: now, Deadline: now.Add(s.cfg.RetryWindow), Replay: replay,
	}
}

// Wake tells the dispatcher that deliveries may be due.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// lease is how long a claimed delivery is kept from other workers: its
// attempt's time and a margin.
func (s *Service) lease() time.Duration { return 2*s.cfg.AttemptTimeout + 5*time.Second }

// Dispatch attempts due deliveries until ctx ends, and prunes what is
// older than the retention now and then.
func (s *Service) Dispatch(ctx context.Context) error {
	poll := time.NewTicker(s.cfg.PollInterval)
	defer poll.Stop()
	var lastPrune time.Time
	for {
		s.dispatchDue(ctx)
		if now := s.now(); now.Sub(lastPrune) >= time.Hour {
			lastPrune = now
			if err := s.cfg.Store.Prune(ctx, now.Add(-s.cfg.Retention)); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "webhook events not pruned", slog.String("error", err.Error()))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-poll.C:
		}
	}
}

// dispatchDue attempts batches of due deliveries until none is due.
func (s *Service) dispatchDue(ctx context.Context) {
	for ctx.Err() == nil {
		due, err := s.cfg.Store.ClaimDue(ctx, s.now().UTC(), s.lease(), s.cfg.Concurrency)
		if err != nil {
			if ctx.Err() == nil {
				s.log.WarnContext(ctx, "due webhook deliveries not read", slog.String("error", err.Error()))
			}
			return
		}
		if len(due) == 0 {
			return
		}
		var wg sync.WaitGroup
		for _, d := range due {
			wg.Go(func() { s.attempt(ctx, d) })
		}
		wg.Wait()
	}
}

// attempt POSTs one delivery and records how it went. An attempt started
// runs to its end (bounded by the attempt timeout) even when ctx ends, so
// a stop never records a half-made attempt.
func (s *Service) attempt(ctx context.Context, d Due) {
	ctx = context.WithoutCancel(ctx)
	log := s.log.With(slog.String(attrDeliveryID, d.Delivery.ID), slog.String(attrEndpointID, d.Delivery.EndpointID), slog.String(telemetry.AttrClientID, d.Delivery.Client))
	secrets, err := s.cfg.Secrets.Get(ctx, d.Delivery.EndpointID)
	if err != nil {
		// Not the endpoint's fault: no attempt is counted, and the claim's
		// lease brings the delivery back.
		log.WarnContext(ctx, "webhook not sent: signing secrets unavailable", slog.String("error", err.Error()))
		return
	}
	body, err := Payload(d.Event)
	if err != nil {
		log.ErrorContext(ctx, "webhook payload not built", slog.String("error", err.Error()))
		return
	}
	start := s.now().UTC()
	sig, err := Sign(secrets.Signing(start), d.Event.ID, start, body)
	if err != nil {
		log.ErrorContext(ctx, "webhook not signed", slog.String("error", err.Error()))
		return
	}
	header := map[string]string{
		HeaderID:        d.Event.ID,
		HeaderTimestamp: strconv.FormatInt(start.Unix(), 10),
		HeaderSignature: sig,
		"content-type":  "application/json",
		"user-agent":    UserAgent,
	}
	postCtx, cancel := context.WithTimeout(ctx, s.cfg.AttemptTimeout)
	status, outcome := s.cfg.Poster.Post(postCtx, d.URL, header, body)
	cancel()
	end := s.now().UTC()
	a := Attempt{Time: start.Truncate(time.Microsecond), Duration: end.Sub(start), StatusCode: status, Outcome: outcome}
	state, next := s.schedule(d, end, outcome)
	if err := s.cfg.Store.RecordAttempt(ctx, d.Delivery.ID, a, state, next); err != nil {
		if !errors.Is(err, ErrNotFound) { // the endpoint was deleted meanwhile
			log.WarnContext(ctx, "webhook attempt not recorded", slog.String("error", err.Error()))
		}
		return
	}
	if state == DeliveryFailed {
		log.WarnContext(ctx, "webhook delivery failed after retrying for the whole retry window",
			slog.Int(attrAttempts, d.Attempts+1), slog.String(telemetry.AttrOutcome, outcome.String()))
	}
}

// schedule decides what follows an attempt: success ends the delivery; a
// failure is retried after a backoff, up to the deadline, where the last
// attempt is made; after it the delivery FAILED.
func (s *Service) schedule(d Due, now time.Time, outcome Outcome) (DeliveryState, time.Time) {
	if outcome == OutcomeSucceeded {
		return DeliverySucceeded, time.Time{}
	}
	if !now.Before(d.Delivery.Deadline) {
		return DeliveryFailed, time.Time{}
	}
	next := now.Add(s.backoff(d.Attempts + 1))
	if next.After(d.Delivery.Deadline) {
		next = d.Delivery.Deadline
	}
	return DeliveryPending, next.Truncate(time.Microsecond)
}

// backoff is the wait before retry n (1 for the first retry): a random
// time up to min(cap, base·2^(n-1)), "full jitter", so endpoints that come
// back are not hit by every delivery at once.
func (s *Service) backoff(n int) time.Duration {
	ceiling := s.cfg.BackoffBase
	for i := 1; i < n && ceiling < s.cfg.BackoffCap; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, s.cfg.BackoffCap)
	return max(rand.N(ceiling+1), time.Millisecond)
}
