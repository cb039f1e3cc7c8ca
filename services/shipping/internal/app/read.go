package app

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
)

// ListInput is what ListShipments needs.
type ListInput struct {
	User      string
	Filter    Filter
	PageSize  int
	PageToken string
}

// ListShipments returns one page of the user's shipments, newest create
// time first, and the token of the next page. A page is a keyset read:
// its cost does not grow with the shipments before it.
func (s *Service) ListShipments(ctx context.Context, in ListInput) ([]Shipment, string, error) {
	list := pagetoken.List{Method: listShipments, Parent: names.User(in.User), Filters: []string{in.Filter.key()}}
	var readErr error
	out, next, err := pagetoken.ReadPage(s.pages, list, in.PageSize, in.PageToken,
		func(after *pagetoken.Position, limit int) ([]Shipment, error) {
			shs, err := s.store.ListShipments(ctx, in.User, in.Filter, after, limit)
			readErr = err
			return shs, err
		},
		func(sh Shipment) pagetoken.Position { return pagetoken.Position{Time: sh.CreateTime, ID: sh.ID} })
	if readErr != nil {
		return nil, "", s.internal(ctx, "list shipments", readErr)
	}
	return out, next, err
}

// GetShipment returns one of the user's shipments with its checkpoints.
func (s *Service) GetShipment(ctx context.Context, user, id string) (Shipment, error) {
	sh, err := s.store.Shipment(ctx, user, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return Shipment{}, ShipmentNotFound()
	case err != nil:
		return Shipment{}, s.internal(ctx, "read shipment", err)
	}
	return sh, nil
}

// DeleteShipment stops tracking a shipment and deletes it, with its
// parcel's checkpoints when no other shipment awaits them, and writes the
// deleted event.
func (s *Service) DeleteShipment(ctx context.Context, user, id string) error {
	now := s.stamp()
	// A run after one that committed finds no shipment: NOT_FOUND, as a
	// retried delete would get, and nothing deleted twice.
	err := s.store.IdempotentTx(ctx, func(tx Tx) error {
		sh, err := lockShipment(ctx, tx, user, id)
		if err != nil {
			return err
		}
		if err := tx.DeleteShipment(ctx, sh.User, sh.ID); err != nil {
			return err
		}
		return tx.AddEvent(ctx, deletedEvent(sh, now))
	})
	switch {
	case errors.Is(err, ErrNotFound):
		return ShipmentNotFound()
	case err != nil:
		return s.internal(ctx, "delete shipment", err)
	}
	return nil
}

// lockShipment reads one of the user's shipments in tx, locking its
// parcel first, as every transaction does.
func lockShipment(ctx context.Context, tx Tx, user, id string) (Shipment, error) {
	sh, err := tx.PeekShipment(ctx, user, id)
	if err != nil {
		return Shipment{}, err
	}
	// A tracking number never changes: the one read is the one to lock.
	if err := tx.LockParcel(ctx, sh.TrackingNumber); err != nil {
		return Shipment{}, err
	}
	return tx.LockShipment(ctx, user, id)
}

// deletedEvent is the event of sh's deletion: its name alone.
func deletedEvent(sh Shipment, now time.Time) Event {
	return Event{ID: newID(), Type: EventDeleted, User: sh.User, Client: sh.Client, Shipment: Shipment{User: sh.User, ID: sh.ID}, Time: now}
}

// SelectCarrier chooses the carrier of a shipment whose number fits
// several, among its candidates; the carrier's checkpoints stored for
// the number apply at once.
func (s *Service) SelectCarrier(ctx context.Context, user, id, c string) (Shipment, error) {
	out, err := retry(func() (Shipment, error) {
		var out Shipment
		// A run after one that committed finds the carrier set
		// (CARRIER_SET), and nothing is chosen twice.
		err := s.store.IdempotentTx(ctx, func(tx Tx) error {
			sh, err := lockShipment(ctx, tx, user, id)
			switch {
			case errors.Is(err, ErrNotFound):
				return ShipmentNotFound()
			case err != nil:
				return err
			case sh.Carrier != "":
				return errCarrierSet()
			case !slices.Contains(sh.CarrierCandidates, c):
				return errNotACandidate()
			}
			sh, evs, err := s.choose(ctx, tx, sh, c, s.stamp())
			if err != nil {
				return err
			}
			out = sh
			return addEvents(ctx, tx, evs)
		})
		return out, err
	})
	return out, s.passOrMask(ctx, "select carrier", err)
}
