package conformance

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/adapters"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// eventReader receives a stream's events in the background.
type eventReader struct {
	events chan *adapterv1.StreamEventsResponse
	err    chan error
}

// readEvents reads stream until it fails or ctx, the stream's context,
// ends.
func readEvents(ctx context.Context, stream grpc.ServerStreamingClient[adapterv1.StreamEventsResponse]) *eventReader {
	r := &eventReader{events: make(chan *adapterv1.StreamEventsResponse), err: make(chan error, 1)}
	go func() {
		for {
			ev, err := stream.Recv()
			if err != nil {
				r.err <- err
				return
			}
			select {
			case r.events <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return r
}

// next waits up to d for the next event.
func (r *eventReader) next(d time.Duration) (*adapterv1.StreamEventsResponse, error) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case ev := <-r.events:
		return ev, nil
	case err := <-r.err:
		return nil, err
	case <-timer.C:
		return nil, nil
	}
}

// runEvents runs the events/ checks but events/watch, which runs before
// the calls it watches.
func (k *kit) runEvents(r *runner) {
	r.check(k, "events/watched", k.testWatched)
	r.check(k, "events/malformed-cursor", func(c *C) {
		stream, err := k.client.StreamEvents(k.ctx(c), &adapterv1.StreamEventsRequest{ResumeCursor: "conformance-not-a-cursor"})
		if err == nil {
			_, err = stream.Recv()
		}
		wantError(c, "StreamEvents with a malformed cursor", err, commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID)
	})
	r.check(k, "events/delivery", k.testDelivery)
	r.check(k, "events/resume", k.testResume)
}

// streamCtx is parent with what every call carries (purpose, API key),
// without a timeout: a stream lives as long as parent.
func (k *kit) streamCtx(parent context.Context) context.Context {
	ctx := metadata.AppendToOutgoingContext(parent, adapters.PurposeMetadata, "ACCOUNT_INFORMATION")
	if k.fx.APIKey != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, adapters.APIKeyMetadata, k.fx.APIKey)
	}
	return ctx
}

// testDelivery is events/delivery: a stream opened from now on delivers
// two triggered events, each valid, each with its own cursor.
func (k *kit) testDelivery(c *C) {
	if k.fx.TriggerEvent == nil {
		c.Skip("no trigger_event in the fixtures (Fixtures.TriggerEvent)")
	}
	ctx, cancel := context.WithCancel(k.streamCtx(c.Context()))
	stream, err := k.client.StreamEvents(ctx, &adapterv1.StreamEventsRequest{})
	if !ok(c, "StreamEvents", err) {
		cancel()
		return
	}
	live := readEvents(ctx, stream)
	// An empty cursor means "from now on", and the stream may not be open
	// at the bank yet: trigger until an event arrives.
	var got []*adapterv1.StreamEventsResponse
	for attempt := 0; attempt < 50 && len(got) == 0; attempt++ {
		if err := k.fx.TriggerEvent(k.ctx(c)); err != nil {
			cancel()
			c.Fatalf("trigger_event: %v", err)
		}
		ev, err := live.next(100 * time.Millisecond)
		if err != nil {
			cancel()
			ok(c, "StreamEvents", err)
			return
		}
		if ev != nil {
			got = append(got, ev)
		}
	}
	if len(got) == 0 {
		cancel()
		c.Fatal("StreamEvents: no event arrived after trigger_event")
	}
	if err := k.fx.TriggerEvent(k.ctx(c)); err != nil {
		cancel()
		c.Fatalf("trigger_event: %v", err)
	}
	ev, err := live.next(eventWait)
	cancel()
	if err != nil || ev == nil {
		c.Fatalf("StreamEvents: the second triggered event did not arrive (%v)", err)
	}
	got = append(got, ev)
	for i, ev := range got {
		k.check(c, fmt.Sprintf("StreamEvents event %d", i), ev)
	}
	if got[0].GetCursor() == got[1].GetCursor() {
		c.Error("StreamEvents: two events carry the same cursor")
	}
	k.delivered = got
}

// testResume is events/resume: a stream resumed after the first event
// events/delivery saw starts with the second.
func (k *kit) testResume(c *C) {
	if len(k.delivered) < 2 {
		c.Skip("events/delivery did not pass")
	}
	got := k.delivered
	ctx, cancel := context.WithCancel(k.streamCtx(c.Context()))
	defer cancel()
	stream, err := k.client.StreamEvents(ctx, &adapterv1.StreamEventsRequest{ResumeCursor: got[0].GetCursor()})
	if !ok(c, "StreamEvents with a resume cursor", err) {
		return
	}
	first, err := readEvents(ctx, stream).next(eventWait)
	switch {
	case err != nil:
		ok(c, "StreamEvents with a resume cursor", err)
	case first == nil:
		c.Error("StreamEvents resumed after an event: nothing arrived, want the event that followed it")
	case !proto.Equal(first, got[1]):
		c.Errorf("StreamEvents resumed after an event: got cursor %q first, want the next event (cursor %q)", first.GetCursor(), got[1].GetCursor())
	}
}
