package app

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/bankbridge/bankbridge/services/shipping/internal/carrier"
)

// PushResult is what a carrier's push changed; it names no user and no
// shipment.
type PushResult struct {
	// Recorded counts the events that were new and stored.
	Recorded int
	// Duplicates counts the events stored before, skipped.
	Duplicates int
}

// IngestCarrierPush stores a carrier's verified push, in one transaction:
// its id against replays (ErrReplayedPush, and nothing stored, when the
// carrier used it before), each event once per (carrier, event id), kept
// once per (carrier, tracking number) whoever tracks the parcel, and fanned
// out to every shipment of the parcel, of every user, each with an updated
// event naming that user's shipment alone. A checkpoint moves a
// shipment's status only when it is the shipment's newest by time: a late
// one takes its place among the checkpoints and nothing more. Events for
// a number no shipment awaits are dropped, counted neither recorded nor
// duplicate: bankbridge keeps no tracking of parcels nobody follows.
// Shipments waiting for their carrier to be chosen get no event; the
// events wait for the choice.
func (s *Service) IngestCarrierPush(ctx context.Context, carrierCode, pushID string, events []CarrierEvent) (PushResult, error) {
	res, err := retry(func() (PushResult, error) { return s.ingest(ctx, carrierCode, pushID, events) })
	if errors.Is(err, ErrReplayedPush) {
		return PushResult{}, err
	}
	return res, s.passOrMask(ctx, "ingest carrier push", err)
}

func (s *Service) ingest(ctx context.Context, carrierCode, pushID string, in []CarrierEvent) (PushResult, error) {
	now := s.stamp()
	// By parcel, and within one in time order, so that watchers see a
	// parcel's checkpoints in the order they happened, and transactions
	// lock parcels in one order.
	byNumber := map[string][]TrackingEvent{}
	for _, e := range in {
		e.TrackingNumber = carrier.Normalize(e.TrackingNumber)
		e.Checkpoint.Time = e.Checkpoint.Time.UTC().Truncate(time.Microsecond)
		if !e.EstimatedDelivery.IsZero() {
			e.EstimatedDelivery = e.EstimatedDelivery.UTC().Truncate(time.Microsecond)
		}
		byNumber[e.TrackingNumber] = append(byNumber[e.TrackingNumber], TrackingEvent{Carrier: carrierCode, CarrierEvent: e, ReceiveTime: now})
	}
	numbers := make([]string, 0, len(byNumber))
	for n, evs := range byNumber {
		numbers = append(numbers, n)
		slices.SortStableFunc(evs, func(a, b TrackingEvent) int { return a.Checkpoint.Time.Compare(b.Checkpoint.Time) })
	}
	slices.Sort(numbers)

	var res PushResult
	err := s.store.Tx(ctx, func(tx Tx) error {
		res = PushResult{}
		fresh, err := tx.AddPush(ctx, carrierCode, pushID, now)
		if err != nil {
			return err
		}
		if !fresh {
			return ErrReplayedPush
		}
		var out []Event
		for _, n := range numbers {
			evs, err := s.ingestParcel(ctx, tx, carrierCode, n, byNumber[n], &res, now)
			if err != nil {
				return err
			}
			out = append(out, evs...)
		}
		return addEvents(ctx, tx, out)
	})
	return res, err
}

// ingestParcel stores one parcel's new events and applies each, in time
// order, to the shipments tracking it.
func (s *Service) ingestParcel(ctx context.Context, tx Tx, carrierCode, number string, in []TrackingEvent, res *PushResult, now time.Time) ([]Event, error) {
	if err := tx.LockParcel(ctx, number); err != nil {
		return nil, err
	}
	awaited, err := tx.Awaited(ctx, carrierCode, number)
	if err != nil || !awaited {
		return nil, err
	}
	shipments, err := tx.Tracking(ctx, carrierCode, number)
	if err != nil {
		return nil, err
	}
	stored, err := tx.TrackingEvents(ctx, carrierCode, number)
	if err != nil {
		return nil, err
	}
	var out []Event
	changed := false
	for _, e := range in {
		added, err := tx.AddTrackingEvent(ctx, e)
		if err != nil {
			return nil, err
		}
		if !added {
			res.Duplicates++
			continue
		}
		res.Recorded++
		changed = true
		stored = insertSorted(stored, e)
		cps := checkpoints(stored)
		for i := range shipments {
			sh := &shipments[i]
			apply(sh, e)
			sh.UpdateTime = now
			snapshot := *sh
			snapshot.Checkpoints = cps
			cp := e.Checkpoint
			out = append(out, Event{ID: newID(), Type: EventUpdated, User: sh.User, Client: sh.Client, Shipment: snapshot, Checkpoint: &cp, Time: now})
		}
	}
	if !changed {
		return nil, nil
	}
	for _, sh := range shipments {
		if err := tx.UpdateShipment(ctx, sh); err != nil {
			return nil, err
		}
	}
	return out, tx.PruneTracking(ctx, carrierCode, number, MaxCheckpoints)
}

// compareEvents orders a parcel's events: by checkpoint time, then id.
func compareEvents(a, b TrackingEvent) int {
	return cmp.Or(a.Checkpoint.Time.Compare(b.Checkpoint.Time), cmp.Compare(a.EventID, b.EventID))
}

// insertSorted adds e to the ordered evs, keeping the MaxCheckpoints
// newest.
func insertSorted(evs []TrackingEvent, e TrackingEvent) []TrackingEvent {
	i, _ := slices.BinarySearchFunc(evs, e, compareEvents)
	evs = slices.Insert(evs, i, e)
	if len(evs) > MaxCheckpoints {
		evs = evs[len(evs)-MaxCheckpoints:]
	}
	return evs
}

// checkpoints are the checkpoints of a parcel's ordered events.
func checkpoints(evs []TrackingEvent) []Checkpoint {
	if len(evs) == 0 {
		return nil
	}
	out := make([]Checkpoint, len(evs))
	for i, e := range evs {
		out[i] = e.Checkpoint
	}
	return out
}

// apply records a carrier event on a shipment of its parcel. The status
// (and substatus) follows the newest checkpoint by time: a late one
// changes nothing of it. The estimate and the signature follow the newest
// checkpoint that gives them, a late one filling only what is unknown.
func apply(sh *Shipment, e TrackingEvent) {
	cp := e.Checkpoint
	newest := sh.StatusTime.IsZero() || !cp.Time.Before(sh.StatusTime)
	if newest {
		sh.Status, sh.Substatus, sh.StatusTime = cp.Status, cp.Substatus, cp.Time
	}
	if !e.EstimatedDelivery.IsZero() && (newest || sh.EstimatedDelivery.IsZero()) {
		sh.EstimatedDelivery = e.EstimatedDelivery
	}
	if e.SignedBy != "" && (newest || sh.SignedBy == "") {
		sh.SignedBy = e.SignedBy
	}
	if e.ReceiveTime.After(sh.LastEventTime) {
		sh.LastEventTime = e.ReceiveTime
	}
}
