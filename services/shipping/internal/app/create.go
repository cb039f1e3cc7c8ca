package app

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
	"github.com/bankbridge/bankbridge/services/shipping/internal/carrier"
)

// parcel is a tracking number with its carrier resolved.
type parcel struct {
	// Number is normalised.
	Number string
	// Carrier is "" when the number fits each of Candidates.
	Carrier    string
	Candidates []string
	// Detected is true when Carrier came from the number alone.
	Detected bool
}

// resolve normalises a tracking number and resolves its carrier: the one
// the caller named, when the number fits its format and check digit, or
// the one the number's format and check digit fit, or several. prefix is
// where the request holds the two fields.
func (s *Service) resolve(ctx context.Context, number, named, prefix string) (parcel, error) {
	n := carrier.Normalize(number)
	if named != "" {
		if err := carrier.Check(named, n); err != nil {
			return parcel{}, s.carrierError(ctx, err, true, prefix)
		}
		return parcel{Number: n, Carrier: named}, nil
	}
	cs, err := carrier.Detect(n)
	switch {
	case err != nil:
		return parcel{}, s.carrierError(ctx, err, false, prefix)
	case len(cs) == 1:
		return parcel{Number: n, Carrier: cs[0], Detected: true}, nil
	}
	return parcel{Number: n, Candidates: cs}, nil
}

func (s *Service) carrierError(ctx context.Context, err error, named bool, prefix string) error {
	if mapped := carrierError(err, named, prefix); mapped != nil {
		return mapped
	}
	return s.internal(ctx, "resolve carrier", err)
}

// CreateInput is a user's product starting to track a parcel.
type CreateInput struct {
	User string
	// Client is the product's client id, from its token.
	Client         string
	TrackingNumber string
	// Carrier is "" to detect it.
	Carrier string
	// Receipt is users/{user}/receipts/{receipt}, or "".
	Receipt        string
	IdempotencyKey string
	// RequestHash identifies the request, for the idempotency key.
	RequestHash string
}

// CreateShipment starts tracking a parcel for the user, or returns the
// shipment the user tracks it with already (of the carrier, or waiting
// for the carrier to be chosen among the number's). A parcel the
// carrier reported on before, for another user, starts with its
// checkpoints. A retry with the same idempotency key and request returns
// the shipment the first answered with; another request under the key is
// IDEMPOTENCY_KEY_REUSED. The created event is written with the
// shipment.
func (s *Service) CreateShipment(ctx context.Context, in CreateInput) (Shipment, error) {
	p, err := s.resolve(ctx, in.TrackingNumber, in.Carrier, "shipment.")
	if err != nil {
		return Shipment{}, err
	}
	sh, err := retry(func() (Shipment, error) { return s.create(ctx, in, p) })
	return sh, s.passOrMask(ctx, "create shipment", err)
}

func (s *Service) create(ctx context.Context, in CreateInput, p parcel) (Shipment, error) {
	if in.IdempotencyKey != "" {
		sh, ok, err := s.recall(ctx, in.Client, in.User, in.IdempotencyKey, in.RequestHash)
		if err != nil || ok {
			return sh, err
		}
	}
	now := s.stamp()
	var out Shipment
	// track re-reads the user's shipments of the parcel under its lock: a
	// run after one that committed finds the shipment and adds nothing.
	err := s.store.IdempotentTx(ctx, func(tx Tx) error {
		sh, evs, err := s.track(ctx, tx, newShipment{User: in.User, Client: in.Client, Receipt: in.Receipt, parcel: p}, now)
		if err != nil {
			return err
		}
		if in.IdempotencyKey != "" {
			if err := tx.Remember(ctx, IdempotencyKey{Client: in.Client, Subject: in.User, Key: in.IdempotencyKey, User: in.User,
				RequestHash: in.RequestHash, ShipmentID: sh.ID, Time: now}); err != nil {
				return err
			}
		}
		out = sh
		return addEvents(ctx, tx, evs)
	})
	return out, err
}

// recall answers a request whose idempotency key was seen: ok with the
// shipment the first answered with, or IDEMPOTENCY_KEY_REUSED for another
// request. ok is false for a key never seen, or whose shipment is gone
// (its keys go with it).
func (s *Service) recall(ctx context.Context, client, subject, key, hash string) (Shipment, bool, error) {
	k, err := s.store.Recall(ctx, client, subject, key)
	switch {
	case errors.Is(err, ErrNotFound):
		return Shipment{}, false, nil
	case err != nil:
		return Shipment{}, false, err
	case k.RequestHash != hash:
		return Shipment{}, false, errKeyReused()
	}
	sh, err := s.store.Shipment(ctx, k.User, k.ShipmentID)
	if errors.Is(err, ErrNotFound) {
		return Shipment{}, false, nil
	}
	return sh, err == nil, err
}

// newShipment is who starts tracking which parcel.
type newShipment struct {
	User, Client           string
	Partner, PartnerUserID string
	Receipt                string
	parcel
}

// track returns the user's shipment of the parcel, made now when the user
// has none, with its checkpoints, and the events to write. A user tracks a
// parcel once: a shipment of the same carrier is returned as it is; one
// waiting for the carrier to be chosen among the number's gets the
// carrier named now; a number that fits several carriers finds the user's
// shipment of any of them.
func (s *Service) track(ctx context.Context, tx Tx, in newShipment, now time.Time) (Shipment, []Event, error) {
	if err := tx.LockParcel(ctx, in.Number); err != nil {
		return Shipment{}, nil, err
	}
	mine, err := tx.UserShipments(ctx, in.User, in.Number)
	if err != nil {
		return Shipment{}, nil, err
	}
	for _, sh := range mine {
		if (in.Carrier != "" && sh.Carrier == in.Carrier) || (in.Carrier == "" && (sh.Carrier == "" || slices.Contains(in.Candidates, sh.Carrier))) {
			sh, err := withCheckpoints(ctx, tx, sh)
			return sh, nil, err
		}
	}
	if in.Carrier != "" {
		for _, sh := range mine {
			if sh.Carrier == "" && slices.Contains(sh.CarrierCandidates, in.Carrier) {
				return s.choose(ctx, tx, sh, in.Carrier, now)
			}
		}
	}
	sh := Shipment{
		User: in.User, ID: newID(), TrackingNumber: in.Number, Carrier: in.Carrier, CarrierDetected: in.Detected,
		CarrierCandidates: in.Candidates, Receipt: in.Receipt, Partner: in.Partner, PartnerUserID: in.PartnerUserID,
		Client: in.Client, TrackingState: TrackingState{Status: StatusPending}, CreateTime: now, UpdateTime: now,
	}
	if sh.Carrier != "" {
		// The carrier may have reported on the parcel for another user.
		evs, err := tx.TrackingEvents(ctx, sh.Carrier, sh.TrackingNumber)
		if err != nil {
			return Shipment{}, nil, err
		}
		for _, e := range evs {
			apply(&sh, e)
		}
		sh.Checkpoints = checkpoints(evs)
	}
	if err := tx.InsertShipment(ctx, sh); err != nil {
		return Shipment{}, nil, err
	}
	return sh, []Event{{ID: newID(), Type: EventCreated, User: sh.User, Client: sh.Client, Shipment: sh, Time: now}}, nil
}

// choose sets the carrier of a shipment that waits for it; the carrier's
// events stored for the number apply at once. The caller holds the
// parcel's lock.
func (s *Service) choose(ctx context.Context, tx Tx, sh Shipment, c string, now time.Time) (Shipment, []Event, error) {
	sh.Carrier, sh.CarrierCandidates, sh.CarrierDetected, sh.UpdateTime = c, nil, false, now
	evs, err := tx.TrackingEvents(ctx, c, sh.TrackingNumber)
	if err != nil {
		return Shipment{}, nil, err
	}
	for _, e := range evs {
		apply(&sh, e)
	}
	if err := tx.UpdateShipment(ctx, sh); err != nil {
		return Shipment{}, nil, err
	}
	// Other carriers' events for the number were kept for this choice.
	if err := tx.ForgetUnawaited(ctx, sh.TrackingNumber); err != nil {
		return Shipment{}, nil, err
	}
	sh.Checkpoints = checkpoints(evs)
	return sh, []Event{{ID: newID(), Type: EventUpdated, User: sh.User, Client: sh.Client, Shipment: sh, Time: now}}, nil
}

// withCheckpoints fills sh's checkpoints, and catches sh up with them
// (CatchUp).
func withCheckpoints(ctx context.Context, tx Tx, sh Shipment) (Shipment, error) {
	if sh.Carrier == "" {
		return sh, nil
	}
	evs, err := tx.TrackingEvents(ctx, sh.Carrier, sh.TrackingNumber)
	if err != nil {
		return Shipment{}, err
	}
	CatchUp(&sh, evs)
	sh.Checkpoints = checkpoints(evs)
	return sh, nil
}

// addEvents writes evs to the outbox, ordered by user (each user's in the
// order given), so transactions that write several users' events take
// the outbox's per-user locks in one order.
func addEvents(ctx context.Context, tx Tx, evs []Event) error {
	slices.SortStableFunc(evs, func(a, b Event) int {
		switch {
		case a.User < b.User:
			return -1
		case a.User > b.User:
			return 1
		}
		return 0
	})
	for _, e := range evs {
		if err := tx.AddEvent(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// RegisterInput is a partner registering a parcel for the user behind a
// partner-scoped id.
type RegisterInput struct {
	// Method is the full gRPC method, for the access log.
	Method string
	// Partner is the partner's client id, from its token.
	Partner        string
	PartnerUserID  string
	TrackingNumber string
	// Carrier is "" to detect it.
	Carrier        string
	IdempotencyKey string
	// RequestHash identifies the whole request, for the idempotency key.
	RequestHash string
}

// RegisterResult is what a registration answers; it names no user.
type RegisterResult struct {
	// TrackingNumber is the number as the partner sent it.
	TrackingNumber string
	Carrier        string
	Candidates     []string
	CreateTime     time.Time
}

// RegisterShipment starts tracking a parcel for the user behind a
// partner-scoped id, as CreateShipment does for the user, when the user
// opted in to the partner for shipping and holds a consent covering
// shipping. It is idempotent by the partner's key. The registration is in
// the user's access log, with the shipment's event in the outbox, in the
// transaction that stores it: when the access cannot be recorded, nothing
// is stored.
func (s *Service) RegisterShipment(ctx context.Context, in RegisterInput) (RegisterResult, error) {
	p, err := s.resolve(ctx, in.TrackingNumber, in.Carrier, "")
	if err != nil {
		return RegisterResult{}, err
	}
	pu, err := s.consent.ResolvePartner(ctx, in.Partner, in.PartnerUserID, commonv1.Scope_SCOPE_SHIPPING)
	if err != nil {
		return RegisterResult{}, s.passOrMask(ctx, "resolve partner user", err)
	}
	res, err := retry(func() (RegisterResult, error) { return s.register(ctx, in, pu, p) })
	return res, s.passOrMask(ctx, "register shipment", err)
}

func (s *Service) register(ctx context.Context, in RegisterInput, pu PartnerUser, p parcel) (RegisterResult, error) {
	answer := func(sh Shipment) RegisterResult {
		return RegisterResult{TrackingNumber: in.TrackingNumber, Carrier: sh.Carrier, Candidates: sh.CarrierCandidates, CreateTime: sh.CreateTime}
	}
	if in.IdempotencyKey != "" {
		sh, ok, err := s.recall(ctx, in.Partner, "", in.IdempotencyKey, in.RequestHash)
		if err != nil || ok {
			return answer(sh), err
		}
	}
	links, err := s.consent.CoveringLinks(ctx, pu.User, commonv1.Scope_SCOPE_SHIPPING, commonv1.Purpose_PURPOSE_ORDER_TRACKING)
	if err != nil {
		return RegisterResult{}, err
	}
	if len(links) == 0 {
		return RegisterResult{}, errNoShippingConsent()
	}
	now := s.stamp()
	var res RegisterResult
	// track re-reads the user's shipments of the parcel under its lock: a
	// run after one that committed finds the shipment and adds nothing.
	// Its access is then recorded twice, as on a conflict's rerun: an
	// access recorded in excess, never one missing.
	err = s.store.IdempotentTx(ctx, func(tx Tx) error {
		sh, evs, err := s.track(ctx, tx, newShipment{User: pu.User, Client: pu.Client, Partner: in.Partner, PartnerUserID: in.PartnerUserID, parcel: p}, now)
		if err != nil {
			return err
		}
		if in.IdempotencyKey != "" {
			if err := tx.Remember(ctx, IdempotencyKey{Client: in.Partner, Key: in.IdempotencyKey, User: pu.User, RequestHash: in.RequestHash,
				ShipmentID: sh.ID, TrackingNumber: in.TrackingNumber, Time: now}); err != nil {
				return err
			}
		}
		// The access is recorded before the commit: a registration is
		// never stored unrecorded.
		if err := s.record(ctx, pu.User, in.Partner, in.Method, sh.Name()); err != nil {
			id := apierr.IncidentID()
			s.log.ErrorContext(ctx, "shipment registration not recorded in the access log; nothing stored",
				slog.String(telemetry.AttrIncidentID, id), slog.String(telemetry.AttrClientID, in.Partner), slog.String("error", err.Error()))
			return errAuditUnavailable(id)
		}
		res = answer(sh)
		return addEvents(ctx, tx, evs)
	})
	return res, err
}
