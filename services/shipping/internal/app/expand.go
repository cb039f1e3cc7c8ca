package app

import (
	"context"
	"errors"
	"slices"
	"time"
)

// expandChunk is how many shipments one transaction of ExpandParcelEvent
// writes events for: short transactions, so that pushes and users' writes
// never wait long behind a popular parcel.
const expandChunk = 500

// ParcelEvent is an EventParcelTracked as read back from the bus, for
// ExpandParcelEvent.
type ParcelEvent struct {
	// ID is the audience event's id.
	ID string
	// Audience are the names of the shipments it reached.
	Audience []string
	// Checkpoint is the checkpoint it announced.
	Checkpoint Checkpoint
	Time       time.Time
}

// ExpandParcelEvent brings the row of every shipment an audience event
// (EventParcelTracked) reached, and that still exists, up to date with
// its parcel's events (CatchUp), and writes the same change as that user's
// own event (EventTracked) with the shipment's whole state as it is now:
// what webhooks and resumed streams carry. A shipment deleted since
// gets none; one changed since carries its newer state. It runs once per
// audience event across replicas (a durable consumer); when it runs again
// after a failure, the users whose events were written already get them
// twice, which whole-state events make harmless.
func (s *Service) ExpandParcelEvent(ctx context.Context, pe ParcelEvent) error {
	for chunk := range slices.Chunk(pe.Audience, expandChunk) {
		_, err := retry(func() (struct{}, error) { return struct{}{}, s.expand(ctx, pe, chunk) })
		if err != nil {
			return s.passOrMask(ctx, "expand parcel event", err)
		}
	}
	return nil
}

func (s *Service) expand(ctx context.Context, pe ParcelEvent, names []string) error {
	// Each shipment catches up with its parcel's stored events under lock:
	// a run after one that committed finds nothing new to add.
	return s.store.IdempotentTx(ctx, func(tx Tx) error {
		var out []Event
		// The chunk's shipments share their parcel: its events are read
		// once.
		var stored []TrackingEvent
		var cps []Checkpoint
		read := false
		for _, name := range names {
			user, id, err := ParseShipmentName(name)
			if err != nil {
				continue
			}
			sh, err := tx.LockShipment(ctx, user, id)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if !read {
				if stored, err = tx.TrackingEvents(ctx, sh.Carrier, sh.TrackingNumber); err != nil {
					return err
				}
				cps, read = checkpoints(stored), true
			}
			if CatchUp(&sh, stored) {
				if err := tx.UpdateShipment(ctx, sh); err != nil {
					return err
				}
			}
			sh.Checkpoints = cps
			cp := pe.Checkpoint
			out = append(out, Event{ID: newID(), Type: EventTracked, User: sh.User, Client: sh.Client, Shipment: sh, Checkpoint: &cp, Time: pe.Time})
		}
		return addEvents(ctx, tx, out)
	})
}
