// Package events is how an event leaves a bankbridge service, once for all
// of them: written in the same transaction as the state change (the
// outbox), relayed at least once and in order per user to NATS JetStream
// (the bus), and from there served to clients as resumable streams and to
// product teams as signed webhooks.
//
// No personal data rides on the bus's subjects or headers: a user appears
// as a pseudonymous reference (UserRef), keyed with the shared subject key.
// Payloads are thin: ids, types and resource names; receivers fetch details
// with their own user-bound token.
package events

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Event is one thing that happened.
type Event struct {
	// ID is unique per event: the bus drops a republished duplicate by it,
	// and webhooks send it as webhook-id. It rides in a header, so it must
	// be opaque (a random id), never built from a user id or resource.
	ID string
	// Type is the event type, lowercase dot-separated, e.g.
	// "consent.link.expiring", "consent.link.revoked".
	Type string
	// Source is the service that wrote it.
	Source string
	// User is the bankbridge user the event concerns. It orders events
	// (in order per user) and derives UserRef; it never goes on a subject
	// or header.
	User string
	// Client is the client id of the product the user uses bankbridge
	// through (the one that created the link, for consent events); webhooks
	// go to that client's endpoints only. Empty: no webhook delivery.
	Client string
	// Resource is the resource name the event is about, e.g.
	// users/alice/links/l1.
	Resource string
	// Time is when the change was committed.
	Time time.Time
	// Data is the thin payload, protojson of the source's event message.
	Data []byte
	// Audience, when set, makes this one event reach many users at once:
	// one change that concerns every user listed (a parcel's checkpoint,
	// for every user tracking it), written and published once rather than
	// once per user. Each entry is the resource of one recipient, under
	// users/{user}/ (e.g. users/alice/shipments/s1); a process's stream
	// hub hands each recipient's streams the event as their own, with
	// User and Resource the recipient's, so no user learns of another.
	// User then names what the event is about (e.g.
	// parcels/ups/1Z999AA10123456784): it orders those events and derives
	// the subject's reference. Client must be empty: webhooks go per user,
	// so a source that needs them writes per-user events as well (off the
	// latency path). At most MaxAudienceBytes of entries; SplitAudience
	// cuts a longer list.
	Audience []string
}

// MaxAudienceBytes bounds the entries of one event's Audience: about
// ten thousand recipients, so that a parcel ten thousand users follow is
// one event (each event more is a round trip of the relay's), and with
// Data the message stays under NATS's default max_payload (1 MiB).
// SplitAudience cuts a longer list into events of this size.
const MaxAudienceBytes = 768 << 10

// SplitAudience cuts resources into audiences of at most
// MaxAudienceBytes each, in order (an entry larger than that alone is an
// audience of its own, which Validate refuses).
func SplitAudience(resources []string) [][]string {
	var out [][]string
	start, size := 0, 0
	for i, r := range resources {
		n := len(r) + 3 // the JSON string's quotes and comma
		if size+n > MaxAudienceBytes && i > start {
			out = append(out, resources[start:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(resources) {
		out = append(out, resources[start:])
	}
	return out
}

// Delivered is an event read from the bus, with the cursor that resumes
// right after it.
type Delivered struct {
	Event
	// UserRef is the pseudonymous reference of Event.User as on the bus.
	UserRef string
	// Cursor is opaque; a reader that passes it back gets the events after
	// this one.
	Cursor string
}

// ErrCursorExpired is returned when a cursor points before the oldest
// event the bus keeps; the caller answers FAILED_PRECONDITION,
// CURSOR_EXPIRED.
var ErrCursorExpired = errors.New("events: cursor older than the events kept")

// ErrCursorInvalid is returned for a cursor that is not one.
var ErrCursorInvalid = errors.New("events: malformed cursor")

// Outbox writes events in the caller's transaction. The table lives in
// the service's own database (Migrate adds it).
type Outbox interface {
	Add(ctx context.Context, tx *sql.Tx, e Event) error
}

// Filter selects events from the bus.
type Filter struct {
	// User selects one user's events (by its UserRef on the subject); ""
	// means every user (webhook delivery, workers).
	User string
	// Types selects event types; empty means every type.
	Types []string
}
