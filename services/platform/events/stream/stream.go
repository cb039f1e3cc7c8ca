// Package stream serves a server-streaming method from the event bus, the
// same way for every such method (shipments:watch, conversations:stream,
// alerts): the user's events of the method's types, each sent with the
// cursor that resumes right after it, from a client's resume cursor or
// from now, then live; and the stream ends as soon as the user's consent
// no longer covers it.
//
// A handler reads nothing but its request and converts events to its
// response type:
//
//	func (s *Server) WatchShipments(req *shippingv1.WatchShipmentsRequest, srv grpc.ServerStreamingServer[shippingv1.WatchShipmentsResponse]) error {
//		return stream.Serve(srv, s.feed, stream.Options[shippingv1.WatchShipmentsResponse]{
//			Types:     []string{"shipping.shipment.created", "shipping.shipment.updated", "shipping.shipment.deleted"},
//			Cursor:    req.GetResumeCursor(),
//			ToMessage: toWatchResponse,
//		})
//	}
//
// Who the stream is for, and under which consent, comes from the kit's
// grant (access.GrantFrom), never from the handler. Resuming is the bus's:
// a cursor names a position in the bus, so a client may reconnect to any
// replica of the service.
//
// A stream from now (no cursor) reads the process's Hub when the feed has
// one: one subscription for every such stream of the process, fanned out
// in memory, so that ten thousand watches cost the NATS server one
// consumer. A stream that resumes from a cursor, or whose types the hub
// does not read, subscribes to the bus itself, from its cursor. Either
// way its events carry the bus's cursors.
package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// Bus is where streams read events; the JetStream bus (events.Bus)
// implements it. Subscribe delivers the events Filter selects, in order,
// from just after cursor, or from now when cursor is "", until ctx ends. It
// fails with events.ErrCursorExpired or events.ErrCursorInvalid for a
// cursor it cannot resume from.
type Bus interface {
	Subscribe(ctx context.Context, f events.Filter, cursor string) (<-chan events.Delivered, error)
}

// Consent decides a stream's consent again when it may have changed;
// *consentcheck.Checker implements it (its Watch must run). Changes
// signals that user's consent may have changed; Decide answers as the
// kit's access check does.
type Consent interface {
	Decide(ctx context.Context, user string, need access.Need, purpose commonv1.Purpose) (access.Decision, error)
	Changes(user string) (ch <-chan struct{}, cancel func())
}

// Feed is what every stream of a process reads from, built once at start
// and handed to the transport.
type Feed struct {
	// Bus delivers the events. Required.
	Bus Bus
	// Hub, when set, serves the streams that start from now (see Hub);
	// without one every stream subscribes to Bus.
	Hub *Hub
	// Consent re-checks the streams of methods whose access rule lists
	// scopes. Required for those.
	Consent Consent
	// Logger reports events that cannot be sent; default discards.
	Logger *slog.Logger
}

// Log attributes: event ids are random and types are fixed names, so both
// pass telemetry's allow-list (the bankbridge. prefix) safely.
const (
	attrEventID   = "bankbridge.event_id"
	attrEventType = "bankbridge.event_type"
)

// DefaultCursorField is the request field holding the resume cursor in
// every bankbridge stream contract.
const DefaultCursorField = "resume_cursor"

// Options describe one call of a streaming method.
type Options[Resp any] struct {
	// Types are the event types the method streams; empty means all of
	// the user's events.
	Types []string
	// LiveTypes, when set, are the types a stream from now reads instead
	// of Types when the feed's hub serves it: for a method whose changes
	// reach many users as one audience event each (events.Event.Audience),
	// the audience events' types beside the per-user ones. The source
	// writes each change for the users too, per user, later, under a type
	// in Types and not here: a stream resuming from a cursor reads those
	// (an audience event is on no user's subject), and a live stream is
	// not sent each change twice.
	LiveTypes []string
	// Cursor is the request's resume cursor; "" starts at the current end.
	Cursor string
	// CursorField is the request field Cursor came from, named in the
	// field violation of a malformed cursor; default DefaultCursorField.
	CursorField string
	// ToMessage converts an event to the response, setting the response's
	// cursor field to d.Cursor. It returns nil to skip the event, and an
	// error for an event it cannot read (logged and skipped, so one bad
	// event does not end every stream that reaches it). Required.
	ToMessage func(d events.Delivered) (*Resp, error)
}

// Serve streams the events of the grant's user to srv until the client
// goes, the consent ends, or the bus fails. It runs behind the server
// kit's access check, whose grant (in srv.Context()) names the user, the
// scopes, the bank and the purpose.
//
// Once registered with the feed's hub, or subscribed to the bus, it sends
// the response headers: a client that waits for them (ClientStream.Header)
// knows the watch is open, so a List it makes next misses no change. Every
// consent change of the user, and every loss of the consent change feed,
// decides the grant's consent again; a refusal
// ends the stream with the decision's error (PERMISSION_DENIED and its
// reason, e.g. CONSENT_REVOKED). A cursor the bus no longer holds ends it
// with FAILED_PRECONDITION (CURSOR_EXPIRED); a malformed one with
// INVALID_ARGUMENT (CURSOR_INVALID) and a field violation. A stream the
// hub serves ends with UNAVAILABLE (STREAM_BEHIND) when its client reads
// more slowly than its events come, or when the hub loses the bus: the
// client resumes from its last cursor.
func Serve[Resp any](srv grpc.ServerStreamingServer[Resp], feed Feed, o Options[Resp]) error {
	ctx, cancel := context.WithCancel(srv.Context())
	defer cancel()
	g := access.GrantFrom(ctx)
	if feed.Bus == nil || o.ToMessage == nil {
		return errors.New("stream: Feed.Bus and Options.ToMessage are required")
	}
	if o.CursorField == "" {
		o.CursorField = DefaultCursorField
	}
	log := feed.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	var changes <-chan struct{}
	if len(g.Scopes) > 0 {
		if feed.Consent == nil {
			return fmt.Errorf("stream: %s needs consent but the feed has no consent checker", g.Method)
		}
		ch, stop := feed.Consent.Changes(g.User)
		defer stop()
		changes = ch
		// A change committed after the kit's decision but before the
		// subscription was heard by nobody: decide once more now.
		if err := recheck(ctx, feed.Consent, g); err != nil {
			return err
		}
	}

	// Exactly one of evs (a subscription of the stream's own) and shared
	// (the hub's) delivers; a nil channel never does.
	var (
		evs    <-chan events.Delivered
		shared <-chan *events.Delivered
		w      *Watcher
	)
	live := o.Types
	if o.LiveTypes != nil {
		live = o.LiveTypes
	}
	if o.Cursor == "" && feed.Hub != nil && feed.Hub.serves(live) {
		// The headers below promise that nothing published from then on
		// is missed, and the hub keeps the promise a subscription of the
		// stream's own keeps. Watch returns once the watcher is on the
		// hub's running subscription, added under the lock the hub
		// delivers under: every event the hub reads from then on is
		// offered to it, in stream order. That subscription started at
		// the stream's end when the hub's first watcher came, and reads
		// every later event in order; an event published after the
		// headers went out is stored after the registration, so the hub
		// reads it after the registration too, and delivers it. One
		// published just before may arrive as well, as it may on a
		// subscription of the stream's own: harmless, events carry whole
		// state. Should the hub lose the bus, or the stream fall behind,
		// the stream ends rather than miss anything quietly, and the
		// client resumes from its last cursor.
		var err error
		if w, err = feed.Hub.Watch(g.User, live); err != nil {
			return fmt.Errorf("stream: watch: %w", err)
		}
		defer w.Close()
		shared = w.Events()
	} else {
		var err error
		if evs, err = feed.Bus.Subscribe(ctx, events.Filter{User: g.User, Types: o.Types}, o.Cursor); err != nil {
			return cursorError(err, o.CursorField)
		}
	}
	if err := srv.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	if feed.Hub != nil {
		defer feed.Hub.opened(ctx, g.Method)()
	}
	send := func(d events.Delivered) error {
		if d.User != g.User {
			// The filter selects the user's events only; never send
			// another user's, whatever the bus did.
			log.ErrorContext(ctx, "event of another user delivered to a stream; dropped",
				slog.String(telemetry.AttrIncidentID, apierr.IncidentID()), slog.String(attrEventID, d.ID), slog.String(attrEventType, d.Type))
			return nil
		}
		msg, err := o.ToMessage(d)
		if err != nil {
			log.ErrorContext(ctx, "event not streamed: cannot convert it",
				slog.String(telemetry.AttrIncidentID, apierr.IncidentID()), slog.String(attrEventID, d.ID), slog.String(attrEventType, d.Type), slog.String("error", err.Error()))
			return nil
		}
		if msg == nil {
			return nil
		}
		return srv.Send(msg)
	}
	for {
		// A change signalled before the next event is read goes first, so
		// no event leaves after a revocation the service had heard of.
		select {
		case <-changes:
			if err := recheck(ctx, feed.Consent, g); err != nil {
				return err
			}
		default:
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changes:
			if err := recheck(ctx, feed.Consent, g); err != nil {
				return err
			}
		case d, ok := <-evs:
			if !ok {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				// The kit masks this as INTERNAL with an incident id; the
				// client resumes from its last cursor.
				return errors.New("stream: the event subscription ended")
			}
			if err := send(d); err != nil {
				return err
			}
		case d, ok := <-shared:
			if !ok {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				// Behind, or the hub lost the bus: UNAVAILABLE, and the
				// client resumes from its last cursor.
				return w.Err()
			}
			if err := send(*d); err != nil {
				return err
			}
		}
	}
}

// recheck decides the grant's consent again, scope by scope, as the kit's
// access check did when the stream opened.
func recheck(ctx context.Context, c Consent, g access.Grant) error {
	for _, scope := range g.Scopes {
		if _, err := c.Decide(ctx, g.User, access.Need{Scope: scope, BankID: g.BankID}, g.Purpose); err != nil {
			return err
		}
	}
	return nil
}

// cursorError maps the bus's cursor errors to the contract's; any other
// error is returned as is, for the kit to mask.
func cursorError(err error, field string) error {
	switch {
	case errors.Is(err, events.ErrCursorExpired):
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_CURSOR_EXPIRED,
			field+" is older than the events kept; list again, then watch without a cursor")
	case errors.Is(err, events.ErrCursorInvalid):
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID, field+" is not a cursor of this stream",
			apierr.WithFieldViolations(apierr.FieldViolation{Field: field, Description: "not a cursor of this stream", Reason: "cursor.invalid"}))
	default:
		return fmt.Errorf("stream: subscribe: %w", err)
	}
}
