package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// maxIngestAttempts bounds how often an ingest runs again after a
// concurrent one took a key it needed.
const maxIngestAttempts = 3

// IngestInput is a partner's receipt for a user.
type IngestInput struct {
	// Method is the full gRPC method, for the access log.
	Method string
	// Partner is the partner's client id, from its token.
	Partner         string
	PartnerUserID   string
	ReceiptID       string
	AmendsReceiptID string
	IdempotencyKey  string
	// RequestHash identifies the whole request, for the idempotency key.
	RequestHash string
	Content     Content
}

// IngestResult is what an ingest answers; it names no user.
type IngestResult struct {
	// ReceiptID is the partner's receipt_id.
	ReceiptID  string
	Version    int
	CreateTime time.Time
}

// Ingest stores a partner's receipt for the user behind its
// partner-scoped id, when the amounts add up, the user opted in to the
// partner for receipts and holds a consent covering receipts. It is
// idempotent by key, and by the partner's receipt id for the same
// receipt. An amendment is a new version of the latest one. The receipt is
// in the user's access log, with its created event in the outbox and its
// match job queued, in the transaction that stores it: when the access
// cannot be recorded, nothing is stored.
func (s *Service) Ingest(ctx context.Context, in IngestInput) (IngestResult, error) {
	if vs := CheckAmounts(in.Content, "receipt."); len(vs) > 0 {
		return IngestResult{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT,
			"invalid request: "+vs[0].Field+": "+vs[0].Description, apierr.WithFieldViolations(vs...))
	}
	pu, err := s.consent.ResolvePartner(ctx, in.Partner, in.PartnerUserID, commonv1.Scope_SCOPE_RECEIPTS)
	if err != nil {
		return IngestResult{}, s.consentError(ctx, "resolve partner user", err)
	}
	for attempt := 1; ; attempt++ {
		res, err := s.ingest(ctx, in, pu)
		if errors.Is(err, ErrConflict) && attempt < maxIngestAttempts {
			continue // a concurrent ingest took a key; this one sees it now
		}
		if err != nil && apierr.Reason(err) == commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
			return IngestResult{}, s.internal(ctx, "ingest receipt", err)
		}
		return res, err
	}
}

// consentError passes a consent refusal or masked failure on, and masks
// anything else.
func (s *Service) consentError(ctx context.Context, what string, err error) error {
	if apierr.Reason(err) != commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
		return err
	}
	return s.internal(ctx, what, err)
}

func (s *Service) ingest(ctx context.Context, in IngestInput, pu PartnerUser) (IngestResult, error) {
	if in.IdempotencyKey != "" {
		k, err := s.store.Recall(ctx, in.Partner, in.IdempotencyKey)
		switch {
		case err == nil && k.RequestHash == in.RequestHash:
			return k.Answer, nil
		case err == nil:
			return IngestResult{}, errKeyReused()
		case !errors.Is(err, ErrNotFound):
			return IngestResult{}, err
		}
	}
	links, err := s.consent.CoveringLinks(ctx, pu.User, commonv1.Scope_SCOPE_RECEIPTS, commonv1.Purpose_PURPOSE_PURCHASE_HISTORY)
	if err != nil {
		return IngestResult{}, s.consentError(ctx, "list links covering receipts", err)
	}
	if len(links) == 0 {
		return IngestResult{}, errNoReceiptsConsent()
	}

	now := s.stamp()
	hash := contentHash(in.Content, in.AmendsReceiptID)
	var res IngestResult
	// Keyed by the partner's receipt id (and the idempotency key): a run
	// after one that committed finds the same receipt and answers with it.
	// Its access is then recorded twice, as on a conflict's rerun: an
	// access recorded in excess, never one missing.
	err = s.store.IdempotentTx(ctx, func(tx Tx) error {
		remember := func(res IngestResult) error {
			if in.IdempotencyKey == "" {
				return nil
			}
			return tx.Remember(ctx, IdempotencyKey{Partner: in.Partner, Key: in.IdempotencyKey, User: pu.User, PartnerUserID: in.PartnerUserID,
				RequestHash: in.RequestHash, Answer: res, Time: now})
		}
		old, err := tx.PartnerReceipt(ctx, pu.User, in.Partner, in.ReceiptID)
		switch {
		case err == nil && old.ContentHash != hash:
			return errReceiptIDTaken()
		case err == nil:
			// The same receipt again, under another key: the same answer.
			res = IngestResult{ReceiptID: old.PartnerReceiptID, Version: old.Version, CreateTime: old.CreateTime}
			return remember(res)
		case !errors.Is(err, ErrNotFound):
			return err
		}

		id := newID()
		r := Receipt{
			User: pu.User, ID: id, Partner: in.Partner, PartnerUserID: in.PartnerUserID, PartnerReceiptID: in.ReceiptID,
			Client: pu.Client, Version: 1, ChainID: id, Content: in.Content, ContentHash: hash, CreateTime: now,
		}
		if in.AmendsReceiptID != "" {
			prev, err := tx.PartnerReceipt(ctx, pu.User, in.Partner, in.AmendsReceiptID)
			if errors.Is(err, ErrNotFound) {
				return errAmendsNotFound()
			}
			if err != nil {
				return err
			}
			if by, err := tx.AmendedBy(ctx, pu.User, prev.ID); err != nil || by != "" {
				if err != nil {
					return err
				}
				return errAmendsNotLatest()
			}
			r.Version, r.ChainID, r.Amends = prev.Version+1, prev.ChainID, prev.ID
		}
		if err := tx.Insert(ctx, r); err != nil {
			return err
		}
		if err := tx.QueueMatch(ctx, MatchJob{User: r.User, ReceiptID: r.ID, Due: now, Deadline: now.Add(s.cfg.MatchGiveUp)}); err != nil {
			return err
		}
		res = IngestResult{ReceiptID: r.PartnerReceiptID, Version: r.Version, CreateTime: now}
		if err := remember(res); err != nil {
			return err
		}
		// The access is recorded before the commit: a receipt is never
		// stored unrecorded.
		if err := s.record(ctx, r.User, in.Partner, in.Method, r.Name(), commonv1.Scope_SCOPE_RECEIPTS); err != nil {
			id := apierr.IncidentID()
			s.log.ErrorContext(ctx, "receipt ingest not recorded in the access log; nothing stored",
				slog.String(telemetry.AttrIncidentID, id), slog.String(telemetry.AttrClientID, in.Partner), slog.String("error", err.Error()))
			return errAuditUnavailable(id)
		}
		return tx.AddEvent(ctx, Event{ID: newID(), Type: EventCreated, User: r.User, Client: r.Client, Receipt: r.Name(), Time: now})
	})
	if err != nil {
		return IngestResult{}, err
	}
	s.wakeMatcher()
	return res, nil
}
