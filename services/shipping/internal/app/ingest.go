package app

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/events"
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
// once per (carrier, tracking number) whoever tracks the parcel, and
// applied to every shipment of the parcel, of every user. A checkpoint
// moves a shipment's status only when it is the shipment's newest by
// time: a late one takes its place among the checkpoints and nothing more.
//
// Each new checkpoint leaves as one audience event (EventParcelTracked)
// for all the parcel's shipments in the same state, however many users
// track it: the push's transaction writes a few rows whatever the
// parcel's following, and live streams hear of it at once. The per-user
// events webhooks and resumed streams need (EventTracked) are written
// afterwards by ExpandParcelEvent, off the push's path.
//
// Events for a number no shipment awaits are dropped, counted neither
// recorded nor duplicate: bankbridge keeps no tracking of parcels nobody
// follows. Shipments waiting for their carrier to be chosen get no event;
// the events wait for the choice.
func (s *Service) IngestCarrierPush(ctx context.Context, carrierCode, pushID string, in []CarrierEvent) (PushResult, error) {
	res, err := retry(func() (PushResult, error) { return s.ingest(ctx, carrierCode, pushID, in) })
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
	// Keyed by the push id: a run after one that committed is a replayed push.
	err := s.store.IdempotentTx(ctx, func(tx Tx) error {
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

// ingestParcel stores one parcel's new events and announces each, in
// time order, to the shipments tracking it, a state at a time: a parcel's
// shipments share their state but for those the expiry ended. The
// shipments' rows are left as they are: they absorb the events moments
// later (ExpandParcelEvent), and whatever reads one first catches it up
// (CatchUp), so a push costs a few rows however many users follow the
// parcel.
func (s *Service) ingestParcel(ctx context.Context, tx Tx, carrierCode, number string, in []TrackingEvent, res *PushResult, now time.Time) ([]Event, error) {
	if err := tx.LockParcel(ctx, number); err != nil {
		return nil, err
	}
	awaited, err := tx.Awaited(ctx, carrierCode, number)
	if err != nil || !awaited {
		return nil, err
	}
	stored, err := tx.TrackingEvents(ctx, carrierCode, number)
	if err != nil {
		return nil, err
	}
	// Rows absorb events by their receive time: the push's must come after
	// every stored one, though its clock was read before the parcel's lock.
	for _, e := range stored {
		if !now.After(e.ReceiveTime) {
			now = e.ReceiveTime.Add(time.Microsecond)
		}
	}
	shipments, err := tx.ParcelShipments(ctx, carrierCode, number)
	if err != nil {
		return nil, err
	}
	// Shipments by the state their rows will have once caught up.
	type group struct {
		state TrackingState
		names []string
	}
	var groups []*group
	for _, ps := range shipments {
		sh := Shipment{TrackingState: ps.State}
		CatchUp(&sh, stored)
		st := sh.TrackingState
		i := slices.IndexFunc(groups, func(g *group) bool { return g.state == st })
		if i < 0 {
			i = len(groups)
			groups = append(groups, &group{state: st})
		}
		groups[i].names = append(groups[i].names, ps.Shipments...)
	}
	var out []Event
	changed := false
	for _, e := range in {
		e.ReceiveTime = now
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
		cp := e.Checkpoint
		for _, g := range groups {
			sh := Shipment{TrackingNumber: number, Carrier: carrierCode, TrackingState: g.state, UpdateTime: now}
			apply(&sh, e)
			g.state = sh.TrackingState
			for _, audience := range events.SplitAudience(g.names) {
				out = append(out, Event{ID: newID(), Type: EventParcelTracked, Shipment: sh, Checkpoint: &cp, Time: now, Audience: audience})
			}
		}
	}
	if !changed {
		return nil, nil
	}
	return out, tx.PruneTracking(ctx, carrierCode, number, MaxCheckpoints)
}

// CatchUp applies to sh the stored events of its parcel (stored, as
// TrackingEvents reads them) that it has not absorbed yet, those received
// after its LastEventTime, in the order they arrived, and reports whether
// it changed. A push announces a parcel's events at once and leaves the
// shipments' rows to absorb them moments later (ExpandParcelEvent);
// everything that reads a row meanwhile catches it up first, and so
// reads the state the row is about to have.
func CatchUp(sh *Shipment, stored []TrackingEvent) bool {
	var pending []TrackingEvent
	for _, e := range stored {
		if e.ReceiveTime.After(sh.LastEventTime) {
			pending = append(pending, e)
		}
	}
	if len(pending) == 0 {
		return false
	}
	slices.SortStableFunc(pending, func(a, b TrackingEvent) int {
		return cmp.Or(a.ReceiveTime.Compare(b.ReceiveTime), compareEvents(a, b))
	})
	for _, e := range pending {
		apply(sh, e)
		if e.ReceiveTime.After(sh.UpdateTime) {
			sh.UpdateTime = e.ReceiveTime
		}
	}
	return true
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
