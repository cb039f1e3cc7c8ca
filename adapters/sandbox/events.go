package sandbox

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// maxEvents is how many events the sandbox keeps for resumption; a cursor
// older than the oldest kept fails with CURSOR_INVALID.
const maxEvents = 10_000

// eventLog is the bank's ordered event history. Event n (from 1) has the
// cursor "<run>.<n>": a cursor from an earlier run of the sandbox, whose
// events are gone, is refused rather than misread.
type eventLog struct {
	run string
	now func() time.Time

	mu      sync.Mutex
	events  []*adapterv1.StreamEventsResponse
	first   uint64 // sequence number of events[0]
	next    uint64 // sequence number of the next event
	changed chan struct{}
}

func newEventLog(run string, now func() time.Time) *eventLog {
	return &eventLog{run: run, now: now, first: 1, next: 1, changed: make(chan struct{})}
}

// append adds an event, sets its cursor and time, and wakes every stream.
func (l *eventLog) append(ev *adapterv1.StreamEventsResponse) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ev.Cursor = l.run + "." + strconv.FormatUint(l.next, 10)
	ev.EventTime = timestamppb.New(l.now())
	l.next++
	l.events = append(l.events, ev)
	if len(l.events) > maxEvents {
		l.events = l.events[1:]
		l.first++
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// since returns the events after sequence number seq and a channel closed
// at the next append.
func (l *eventLog) since(seq uint64) ([]*adapterv1.StreamEventsResponse, uint64, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if seq+1 >= l.next {
		return nil, seq, l.changed
	}
	if seq+1 < l.first {
		seq = l.first - 1 // a stream this far behind lost what was dropped
	}
	from := seq + 1 - l.first
	out := make([]*adapterv1.StreamEventsResponse, 0, len(l.events)-int(from))
	for _, ev := range l.events[from:] {
		out = append(out, clone(ev))
	}
	return out, l.next - 1, l.changed
}

// position turns a resume cursor into the sequence number to resume after;
// the empty cursor means from start on (the first kept event that happened
// at or after it), or from now on without one.
func (l *eventLog) position(cursor string, start *timestamppb.Timestamp) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cursor == "" {
		if start == nil {
			return l.next - 1, nil
		}
		from := start.AsTime()
		for i, ev := range l.events {
			if !ev.GetEventTime().AsTime().Before(from) {
				return l.first + uint64(i) - 1, nil
			}
		}
		return l.next - 1, nil
	}
	run, n, ok := strings.Cut(cursor, ".")
	seq, err := strconv.ParseUint(n, 10, 64)
	switch {
	case !ok || err != nil:
		return 0, apierr.New(commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID, "the cursor is malformed")
	case run != l.run:
		return 0, apierr.New(commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID,
			"the cursor is from an earlier run of the sandbox, whose events are gone")
	case seq+1 < l.first:
		return 0, apierr.New(commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID, "the cursor is older than the events kept")
	case seq >= l.next:
		return 0, apierr.New(commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID, "the cursor is ahead of the events")
	}
	return seq, nil
}

// StreamEvents implements adapters.EventsAdapter: events after the resume
// cursor (or, without one, from the start time), then new ones as they
// happen, until ctx ends or the bank closes.
func (b *Bank) StreamEvents(ctx context.Context, req *adapterv1.StreamEventsRequest, send func(*adapterv1.StreamEventsResponse) error) error {
	seq, err := b.events.position(req.GetResumeCursor(), req.GetStartTime())
	if err != nil {
		return err
	}
	for {
		evs, last, changed := b.events.since(seq)
		for _, ev := range evs {
			if err := send(ev); err != nil {
				return err
			}
		}
		seq = last
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-b.closed:
			return nil
		case <-changed:
		}
	}
}
