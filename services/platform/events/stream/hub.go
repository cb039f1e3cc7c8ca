package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// A subscription per stream costs the NATS server a consumer per stream,
// and it matches every message it stores against every consumer's filter:
// with ten thousand watches on one instance, most events reached their
// stream seconds late or not at all. A Hub reads the bus once for the
// whole process, on one ordered consumer, and hands each event to the
// streams of its user in memory: the server's work no longer grows with
// the streams, and a stream costs a map entry and a small buffer.

// Log attributes of the hub: counts, safe under telemetry's allow-list.
const (
	attrStreams = "bankbridge.streams"
	attrBuffer  = "bankbridge.stream_buffer"
)

// DefaultHubBuffer is how many events a watcher may have waiting before
// the hub ends it as behind: a burst of one user's events fits, and ten
// thousand watchers' buffers take 20 MiB.
const DefaultHubBuffer = 256

// HubBus is the bus a Hub reads; *events.Bus implements it.
type HubBus = Bus

// HubOptions tune a Hub.
type HubOptions struct {
	// Types are the event types the hub reads (events.Filter.Types): the
	// types of the process's streaming methods. A stream asking for a type
	// the hub does not read, or for every type, reads the bus itself.
	// Empty: the hub reads every event.
	Types []string
	// Buffer is how many events a watcher may have waiting; default
	// DefaultHubBuffer.
	Buffer int
	// Logger reports the loss of the hub's subscription and the watchers
	// ended as behind; default discards.
	Logger *slog.Logger
	// MeterProvider receives the count of the process's open streams
	// (MetricOpenStreams); default none.
	MeterProvider metric.MeterProvider
}

// Hub fans the bus's events out to the streams of one process: one
// subscription, from now on, to every event of its types, opened at the
// first Watch and read until Close, each event handed to the watchers of
// its user, and an audience event (events.Event.Audience) to those of
// each recipient, as the recipient's own. It never waits for a watcher:
// one whose buffer is full is ended (UNAVAILABLE, STREAM_BEHIND), to
// resume from its last cursor, and the others go on. When the subscription fails, every watcher is ended the
// same way, and the next Watch subscribes again.
//
// Build one per process with NewHub, hand it to every stream in
// Feed.Hub, and Close it when the process stops. It is safe for concurrent
// use.
type Hub struct {
	bus    HubBus
	filter events.Filter
	buffer int
	log    *slog.Logger
	open   metric.Int64UpDownCounter

	// ctx is the subscriptions' life; stop ends it, at Close.
	ctx  context.Context
	stop context.CancelFunc
	// starting lets one Watch at a time subscribe.
	starting sync.Mutex

	// mu guards closed, feed, every feed's watchers and every watcher's
	// channel and err: the dispatcher delivers under it, so a watcher added
	// under it gets every event the dispatcher reads from then on.
	mu     sync.Mutex
	closed bool
	feed   *hubFeed
}

// hubFeed is one subscription of the hub and the watchers registered on
// it.
type hubFeed struct {
	// watchers are by user; nil once the feed has ended.
	watchers map[string][]*Watcher
	// done closes when the feed's dispatcher has returned.
	done chan struct{}
}

// NewHub returns the hub of a process reading bus; it subscribes at the
// first Watch.
func NewHub(bus HubBus, o HubOptions) (*Hub, error) {
	if bus == nil {
		return nil, errors.New("stream: a hub needs a bus")
	}
	f := events.Filter{Types: slices.Clone(o.Types)}
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("stream: hub: %w", err)
	}
	if o.Buffer <= 0 {
		o.Buffer = DefaultHubBuffer
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	open, err := newOpenStreams(o.MeterProvider)
	if err != nil {
		return nil, fmt.Errorf("stream: hub: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	return &Hub{bus: bus, filter: f, buffer: o.Buffer, log: log, open: open, ctx: ctx, stop: stop}, nil
}

// errHubClosed is Watch's answer after Close.
var errHubClosed = errors.New("stream: the hub is closed")

// Watch registers a watcher of user's events of types, subscribing the hub
// first if it is not yet. Every event of them the hub reads from its
// return on is offered to it, in stream order: every event stored after
// Watch returned, and perhaps some stored just before. It fails for types
// the hub does not read (see HubOptions.Types; empty types are every type,
// which only a hub of every type reads), after Close, and when the hub
// cannot subscribe.
func (h *Hub) Watch(user string, types []string) (*Watcher, error) {
	if !h.serves(types) {
		return nil, fmt.Errorf("stream: the hub does not read every event of types %q", types)
	}
	w := &Watcher{hub: h, user: user, types: types, ch: make(chan *events.Delivered, h.buffer)}
	// A feed that fails between its start and the registration is started
	// once more; one that fails again is the bus's failure to report.
	for range 2 {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return nil, errHubClosed
		}
		if f := h.feed; f != nil {
			w.feed = f
			f.watchers[w.user] = append(f.watchers[w.user], w)
			h.mu.Unlock()
			return w, nil
		}
		h.mu.Unlock()
		if err := h.start(); err != nil {
			return nil, err
		}
	}
	return nil, errors.New("stream: the hub's subscription ended as soon as it started")
}

// serves reports whether the hub reads every event of types.
func (h *Hub) serves(types []string) bool {
	if len(h.filter.Types) == 0 {
		return true
	}
	if len(types) == 0 {
		return false
	}
	for _, t := range types {
		// A pattern is served only by the same pattern: whether one
		// pattern covers another is more than MatchType answers.
		literal := !strings.ContainsAny(t, "*>")
		if !slices.ContainsFunc(h.filter.Types, func(p string) bool {
			return p == t || literal && events.MatchType(p, t)
		}) {
			return false
		}
	}
	return true
}

// start subscribes the hub, unless it is subscribed or closed.
func (h *Hub) start() error {
	h.starting.Lock()
	defer h.starting.Unlock()
	h.mu.Lock()
	skip := h.feed != nil || h.closed
	h.mu.Unlock()
	if skip {
		return nil
	}
	evs, err := h.bus.Subscribe(h.ctx, h.filter, "")
	if err != nil {
		return fmt.Errorf("hub subscription: %w", err)
	}
	f := &hubFeed{watchers: map[string][]*Watcher{}, done: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		// Close has ended h.ctx: the subscription ends by itself.
		return nil
	}
	h.feed = f
	go h.dispatch(f, evs)
	return nil
}

// dispatch delivers the feed's events until its subscription ends, then
// ends every watcher still on it.
func (h *Hub) dispatch(f *hubFeed, evs <-chan events.Delivered) {
	defer close(f.done)
	for d := range evs {
		if n := h.deliver(f, d); n > 0 {
			h.log.Warn("streams fell behind the events and were ended, to be resumed from their cursors",
				slog.String(telemetry.AttrReason, apierr.ReasonString(commonv1.ErrorReason_ERROR_REASON_STREAM_BEHIND)),
				slog.Int(attrStreams, n), slog.Int(attrBuffer, h.buffer))
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.feed == f {
		h.feed = nil
	}
	stopping := h.ctx.Err() != nil
	n := 0
	for _, ws := range f.watchers {
		for _, w := range ws {
			if stopping {
				w.end(errStopping())
			} else {
				w.end(errLost())
			}
			n++
		}
	}
	f.watchers = nil
	if !stopping {
		h.log.Warn("the event hub lost its subscription; its streams were ended, to be resumed from their cursors",
			slog.Int(attrStreams, n))
	}
}

// deliver hands d to the watchers of its user that want its type, or,
// for an audience event, to those of each recipient, and ends those that
// have no room for it; it returns how many it ended.
func (h *Hub) deliver(f *hubFeed, d events.Delivered) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(d.Audience) == 0 {
		ws := f.watchers[d.User]
		if len(ws) == 0 {
			return 0
		}
		// One copy, shared by the user's watchers, and none for an event
		// nobody here watches.
		shared := new(events.Delivered)
		*shared = d
		return h.offer(f, d.User, shared)
	}
	ended := 0
	for _, res := range d.Audience {
		user, ok := names.UserOf(res)
		if !ok || len(f.watchers[user]) == 0 {
			continue
		}
		// The recipient's own event: its user and its resource, and no
		// word of the other recipients.
		own := new(events.Delivered)
		*own = d
		own.User, own.UserRef, own.Resource, own.Audience = user, "", res, nil
		ended += h.offer(f, user, own)
	}
	return ended
}

// offer hands d to the watchers of user that want its type, and ends
// those that have no room for it; it returns how many it ended. The
// caller holds h.mu.
func (h *Hub) offer(f *hubFeed, user string, d *events.Delivered) int {
	ws := f.watchers[user]
	kept := ws[:0]
	for _, w := range ws {
		if w.wants(d.Type) {
			select {
			case w.ch <- d:
			default:
				w.end(errBehind())
				continue
			}
		}
		kept = append(kept, w)
	}
	ended := len(ws) - len(kept)
	if ended == 0 {
		return 0
	}
	clear(ws[len(kept):])
	if len(kept) == 0 {
		delete(f.watchers, user)
	} else {
		f.watchers[user] = kept
	}
	return ended
}

// Watchers is how many watchers are on the hub now.
func (h *Hub) Watchers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	if h.feed != nil {
		for _, ws := range h.feed.watchers {
			n += len(ws)
		}
	}
	return n
}

// Close ends the hub's subscription and every watcher still on it (with
// UNAVAILABLE, SERVER_STOPPING), and waits until the hub has stopped;
// Watch fails from then on. Call it when the servers have drained.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.stop()
	// A start in progress has seen closed, or installed its feed.
	h.starting.Lock()
	h.mu.Lock()
	f := h.feed
	h.mu.Unlock()
	h.starting.Unlock()
	if f != nil {
		<-f.done
	}
}

// Watcher is one stream's registration with a Hub. It costs no goroutine
// and no NATS object: the stream reads Events in its own goroutine.
type Watcher struct {
	hub   *Hub
	feed  *hubFeed
	user  string
	types []string
	// ch and err are guarded by hub.mu: the hub sends, and closes ch once,
	// after setting err.
	ch  chan *events.Delivered
	err error
}

// Events delivers the watcher's events in stream order. The hub closes it
// when it ends the watcher, Err says why; Close does not close it. An
// event is shared with the user's other watchers: read it, never modify
// it.
func (w *Watcher) Events() <-chan *events.Delivered { return w.ch }

// Err is why the hub ended the watcher, once Events is closed, and nil
// before: UNAVAILABLE with STREAM_BEHIND when the watcher fell behind or
// the hub lost its subscription, with SERVER_STOPPING when the hub closed.
// Each carries a RetryInfo; the client resumes from its last cursor.
func (w *Watcher) Err() error {
	w.hub.mu.Lock()
	defer w.hub.mu.Unlock()
	return w.err
}

// Close takes the watcher off the hub. It may be called more than once,
// and after the hub ended it.
func (w *Watcher) Close() {
	h := w.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	ws := w.feed.watchers[w.user]
	i := slices.Index(ws, w)
	if i < 0 {
		return
	}
	ws = slices.Delete(ws, i, i+1)
	if len(ws) == 0 {
		delete(w.feed.watchers, w.user)
	} else {
		w.feed.watchers[w.user] = ws
	}
}

func (w *Watcher) wants(typ string) bool {
	return len(w.types) == 0 || slices.ContainsFunc(w.types, func(p string) bool { return events.MatchType(p, typ) })
}

// end ends the watcher with err; the caller holds hub.mu and takes the
// watcher off its feed.
func (w *Watcher) end(err error) {
	w.err = err
	close(w.ch)
}

// retryAfter spreads the clients' reconnections over up to a second, so
// that the streams a hub ends together do not all come back at once.
func retryAfter() time.Duration {
	return time.Millisecond + rand.N(time.Second-time.Millisecond)
}

func errBehind() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_STREAM_BEHIND,
		"the stream fell behind the events; reopen it with the last cursor received", apierr.WithRetryAfter(retryAfter()))
}

func errLost() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_STREAM_BEHIND,
		"the server lost its event subscription; reopen the stream with the last cursor received", apierr.WithRetryAfter(retryAfter()))
}

func errStopping() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_SERVER_STOPPING,
		"the server is stopping; reopen the stream with the last cursor received", apierr.WithRetryAfter(time.Millisecond))
}
