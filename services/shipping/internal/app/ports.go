package app

import (
	"context"
	"errors"
	"time"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
)

// The ports the logic needs: internal/store implements Store, and the
// platform's consent checker (*consentcheck.Checker) is Consent.

// Errors a Store returns that the service acts on.
var (
	// ErrNotFound: no such row.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a concurrent write got there first (a unique key was
	// taken, or the database chose this transaction to fail); running the
	// whole operation again sees it.
	ErrConflict = errors.New("conflicting write")
)

// ErrReplayedPush is IngestCarrierPush's answer to a push whose id the
// carrier used before: nothing of it is stored.
var ErrReplayedPush = errors.New("shipping: carrier push id seen before")

// Consent is the consent service as the shipping logic reaches it: the
// partner opt-ins, the links covering shipping, the user's access log and
// the change feed.
type Consent interface {
	// ResolvePartner turns a partner-scoped user id into the user, when
	// the user opted in to the partner for scope; else an apierr
	// PERMISSION_DENIED (CONSENT_REQUIRED, CONSENT_REVOKED); UNAVAILABLE
	// (CONSENT_UNAVAILABLE) with RetryInfo when the consent service cannot
	// be reached in time, which the caller passes on as it is; a masked
	// INTERNAL for any other failure to answer.
	ResolvePartner(ctx context.Context, partner, partnerUserID string, scope commonv1.Scope) (PartnerUser, error)
	// CoveringLinks returns the user's VALID links covering scope for
	// purpose, one per bank.
	CoveringLinks(ctx context.Context, user string, scope commonv1.Scope, purpose commonv1.Purpose) ([]CoveringLink, error)
	// Decide answers whether the user's consent covers need for purpose
	// (need.BankID "": at any bank), else the apierr refusal
	// (CONSENT_REQUIRED, CONSENT_REVOKED, ...).
	Decide(ctx context.Context, user string, need access.Need, purpose commonv1.Purpose) (access.Decision, error)
	// Record appends e to the user's access log, durably; an error means
	// it is not recorded.
	Record(ctx context.Context, e access.Entry) error
	// AllChanges returns every committed consent change of every user
	// until cancel is called.
	AllChanges() (ch <-chan Change, cancel func())
}

// PartnerUser is the user behind a partner-scoped id.
type PartnerUser = consentcheck.PartnerUser

// CoveringLink is a VALID link that covers a scope and purpose.
type CoveringLink = consentcheck.CoveringLink

// Change is one committed consent change: a link's new ConsentState, a
// partner opt-in's new PartnerOptInState, or, alone, Resync (changes may
// have been missed: reconcile).
type Change = consentcheck.Change

// Store keeps shipments, the carriers' tracking events, push ids and
// idempotency keys.
type Store interface {
	// Tx runs fn in one transaction, committed when fn returns nil. A
	// write that conflicts with a concurrent one fails with ErrConflict.
	Tx(ctx context.Context, fn func(tx Tx) error) error
	// IdempotentTx is Tx for a transaction that may be run again after
	// its connection to the database was lost (a PostgreSQL restart),
	// even when that first run may have committed: fn must have the effect
	// of one run however often it runs, because its write is keyed (an
	// idempotency key, a push id), or it re-reads under lock what it
	// changes and so finds its own committed change and adds nothing.
	IdempotentTx(ctx context.Context, fn func(tx Tx) error) error
	// Recall reads an idempotency key of client for subject ("" for a
	// partner's), or ErrNotFound.
	Recall(ctx context.Context, client, subject, key string) (IdempotencyKey, error)
	// Shipment reads the user's shipment with its checkpoints, or
	// ErrNotFound.
	Shipment(ctx context.Context, user, id string) (Shipment, error)
	// ListShipments reads the user's shipments that f selects, with their
	// checkpoints, newest create time first (ties by id, descending),
	// after the position (nil: from the first), at most limit.
	ListShipments(ctx context.Context, user string, f Filter, after *pagetoken.Position, limit int) ([]Shipment, error)
	// DeleteExpired forgets push ids received before pushesBefore and
	// idempotency keys made before keysBefore.
	DeleteExpired(ctx context.Context, pushesBefore, keysBefore time.Time) error
	// PartnerSubjects returns up to limit partner-scoped ids with stored
	// shipments, in order, after the given one (zero: from the first).
	PartnerSubjects(ctx context.Context, after PartnerSubject, limit int) ([]PartnerSubject, error)
	// UsersWithShipments returns up to limit users with shipments, in
	// order, after the given one.
	UsersWithShipments(ctx context.Context, after string, limit int) ([]string, error)
}

// Tx is one transaction of the shipping logic. Shipments it reads are
// locked until it ends (on PostgreSQL; SQLite's transactions take turns)
// unless said otherwise, and come without their checkpoints. Locks are
// taken in one order, so transactions never wait for each other in a
// circle: parcels (LockParcel, ascending), then shipments, then the
// outbox's users (AddEvent).
type Tx interface {
	// LockParcel makes the transactions that touch a tracking number take
	// turns until they end: a shipment created, its carrier chosen or
	// deleted, and a carrier's events for the number, so that none misses
	// what another commits. Lock numbers in ascending order.
	LockParcel(ctx context.Context, trackingNumber string) error
	// UserShipments reads the user's shipments of a tracking number, any
	// carrier, oldest first.
	UserShipments(ctx context.Context, user, trackingNumber string) ([]Shipment, error)
	// PeekShipment reads one of the user's shipments without locking it,
	// or ErrNotFound.
	PeekShipment(ctx context.Context, user, id string) (Shipment, error)
	// LockShipment reads one of the user's shipments, or ErrNotFound.
	LockShipment(ctx context.Context, user, id string) (Shipment, error)
	// ShipmentsOf reads the user's shipments, without locking them: every
	// one when partner is "", else those the partner registered (only
	// under partnerUserID, unless it is "").
	ShipmentsOf(ctx context.Context, user, partner, partnerUserID string) ([]Shipment, error)
	// InsertShipment stores a new shipment: ErrConflict when the user
	// tracks its (tracking number, carrier) already.
	InsertShipment(ctx context.Context, s Shipment) error
	// UpdateShipment writes a shipment's mutable fields.
	UpdateShipment(ctx context.Context, s Shipment) error
	// DeleteShipment deletes the shipment with its idempotency keys, and
	// the tracking events of its parcel when no shipment awaits them any
	// longer; ErrNotFound when there is none.
	DeleteShipment(ctx context.Context, user, id string) error
	// Remember stores an idempotency key: ErrConflict when it is taken.
	Remember(ctx context.Context, k IdempotencyKey) error

	// AddPush records a carrier's push id at t; false when it was seen.
	AddPush(ctx context.Context, carrier, pushID string, t time.Time) (bool, error)
	// ParcelShipments reads who tracks (carrier, number), every user's
	// shipments, by the tracking state their rows hold (see CatchUp),
	// without locking them.
	ParcelShipments(ctx context.Context, carrier, trackingNumber string) ([]ParcelState, error)
	// Awaited reports whether some shipment tracks the number with
	// carrier or waits for its carrier to be chosen: whether the
	// carrier's events for it are kept.
	Awaited(ctx context.Context, carrier, trackingNumber string) (bool, error)
	// AddTrackingEvent stores a carrier event; false when its (carrier,
	// event id) is stored already.
	AddTrackingEvent(ctx context.Context, e TrackingEvent) (bool, error)
	// TrackingEvents reads the MaxCheckpoints newest events of (carrier,
	// number), oldest first by checkpoint time (ties by event id).
	TrackingEvents(ctx context.Context, carrier, trackingNumber string) ([]TrackingEvent, error)
	// ForgetUnawaited deletes the events for the tracking number of every
	// carrier no shipment awaits any longer (Awaited).
	ForgetUnawaited(ctx context.Context, trackingNumber string) error
	// PruneTracking deletes the events of (carrier, number) but the keep
	// newest.
	PruneTracking(ctx context.Context, carrier, trackingNumber string, keep int) error
	// StaleShipments reads up to limit shipments, not in a final status,
	// whose ActiveTime is before t; on PostgreSQL, rows another
	// transaction holds are skipped.
	StaleShipments(ctx context.Context, before time.Time, limit int) ([]Shipment, error)

	// AddEvent writes an event to the outbox; call it last.
	AddEvent(ctx context.Context, e Event) error
}
