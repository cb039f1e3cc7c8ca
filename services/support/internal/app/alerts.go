package app

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// listAlerts is the list the alerts' page tokens name.
const listAlerts = "bankbridge.support.v1.SupportService/ListAlerts"

// consentTimeout bounds the consent service's answers on the consents of a
// batch of alerts; without them the batch is read again later.
const consentTimeout = 5 * time.Second

// AlertSeverity is how serious the bank thinks an alert is: the
// contract's AlertSeverity without its prefix.
type AlertSeverity string

// The alert severities.
const (
	SeverityLow    AlertSeverity = "LOW"
	SeverityMedium AlertSeverity = "MEDIUM"
	SeverityHigh   AlertSeverity = "HIGH"
)

// AlertState is whether the user answered an alert: the contract's
// AlertState without its prefix.
type AlertState string

// The alert states.
const (
	AlertNew          AlertState = "NEW"
	AlertAcknowledged AlertState = "ACKNOWLEDGED"
)

// AlertResponse is the user's answer to an alert: the contract's
// AlertResponse without its prefix.
type AlertResponse string

// The answers to an alert.
const (
	ResponseRecognised    AlertResponse = "RECOGNISED"
	ResponseNotRecognised AlertResponse = "NOT_RECOGNISED"
)

// Alert is a fraud alert a bank raised about one of the user's accounts,
// users/{User}/alerts/{BankID}~{ID}, ID being the bank's alert id.
type Alert struct {
	BankKey
	// Client is the product the user linked the bank through: the alert's
	// webhooks go there.
	Client string
	// Link and BankConsentID are the consent the alert came under; the
	// answer goes back to the bank under BankConsentID.
	Link          string
	BankConsentID string
	// AccountID, TransactionID and CardID are the bank's ids; the last two
	// are "" when the alert names none.
	AccountID     string
	TransactionID string
	CardID        string
	// Amount is the amount at stake; nil when none.
	Amount       *Money
	MerchantName string
	// Description is the bank's explanation, its digit runs masked.
	Description     string
	ActivityTime    time.Time
	Severity        AlertSeverity
	State           AlertState
	Response        AlertResponse
	AcknowledgeTime time.Time
	// CreateTime is when bankbridge received the alert.
	CreateTime time.Time
}

// Name is the alert's resource name.
func (a Alert) Name() string { return a.resource(names.Alerts).String() }

// Account is the account concerned.
func (a Alert) Account() names.Account {
	return names.Account{User: a.User, BankID: a.BankID, BankAccountID: a.AccountID}
}

// Transaction is the transaction's resource name, or "".
func (a Alert) Transaction() string {
	if a.TransactionID == "" {
		return ""
	}
	return names.Transaction{Account: a.Account(), ID: a.TransactionID}.String()
}

// Card is the card's resource name, or "".
func (a Alert) Card() string {
	if a.CardID == "" {
		return ""
	}
	return BankKey{User: a.User, BankID: a.BankID, ID: a.CardID}.resource(names.Cards).String()
}

// AlertFilter selects alerts to list.
type AlertFilter struct {
	// State selects one state; "" for all.
	State AlertState
	// Banks selects alerts at these banks only.
	Banks []string
}

// errAlertNotFound is the contract's NOT_FOUND for an alert.
func errAlertNotFound() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "no such alert")
}

// GetAlert reads one of the user's alerts.
func (s *Service) GetAlert(ctx context.Context, g Grant, k BankKey) (Alert, error) {
	if k.User != g.User {
		return Alert{}, errAlertNotFound()
	}
	a, err := s.store.Alert(ctx, k)
	if errors.Is(err, ErrNotFound) {
		return Alert{}, errAlertNotFound()
	}
	return a, err
}

// ListAlerts reads one page of the user's alerts in state ("" for all),
// newest first, at the banks where a consent of the user still covers
// fraud alerts.
func (s *Service) ListAlerts(ctx context.Context, g Grant, state AlertState, pageSize int, token string) ([]Alert, string, error) {
	banks, err := s.coveredBanks(ctx, g.User, commonv1.Scope_SCOPE_FRAUD_ALERTS, commonv1.Purpose_PURPOSE_FRAUD_PREVENTION)
	if err != nil {
		return nil, "", err
	}
	list := pagetoken.List{Method: listAlerts, Parent: names.User(g.User), Filters: []string{string(state)}}
	return pagetoken.ReadPage(s.pages, list, pageSize, token,
		func(after *pagetoken.Position, limit int) ([]Alert, error) {
			if len(banks) == 0 {
				return nil, nil
			}
			return s.store.ListAlerts(ctx, g.User, AlertFilter{State: state, Banks: banks}, after, limit)
		},
		func(a Alert) pagetoken.Position {
			return pagetoken.Position{Time: a.CreateTime, ID: a.BankID + names.BankSeparator + a.ID}
		})
}

// AcknowledgeAlert records the user's answer to an alert, writes
// support.alert.acknowledged for its streams and webhooks, and the work of
// passing the answer to the bank, in one transaction (the alert answer
// worker delivers it, see RunFraudWorkers). The same answer again changes
// nothing; another fails with FAILED_PRECONDITION. cardOffer names the
// card for a NOT_RECOGNISED answer to an alert about one, for the client
// to offer blocking it; "" otherwise.
func (s *Service) AcknowledgeAlert(ctx context.Context, g Grant, k BankKey, response AlertResponse) (a Alert, cardOffer string, err error) {
	if k.User != g.User {
		return Alert{}, "", errAlertNotFound()
	}
	if response != ResponseRecognised && response != ResponseNotRecognised {
		return Alert{}, "", apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "invalid request: response: not an answer",
			apierr.WithFieldViolations(apierr.FieldViolation{Field: "response", Description: "not an answer", Reason: "enum.defined_only"}))
	}
	a, err = retry(func() (Alert, error) {
		var out Alert
		// A run after one that committed finds the alert acknowledged with
		// this response, and answers with it.
		err := s.store.IdempotentTx(ctx, func(tx Tx) error {
			a, err := tx.LockAlert(ctx, k)
			if errors.Is(err, ErrNotFound) {
				return errAlertNotFound()
			}
			if err != nil {
				return err
			}
			if a.State == AlertAcknowledged {
				out = a
				if a.Response != response {
					return apierr.New(commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION,
						"the alert was already acknowledged with a different response")
				}
				return nil
			}
			now := s.stamp()
			a.State, a.Response, a.AcknowledgeTime = AlertAcknowledged, response, now
			if err := tx.UpdateAlert(ctx, a); err != nil {
				return err
			}
			out = a
			if err := tx.AddEvent(ctx, Event{
				ID: newEventID(), Type: TypeAlertAcknowledged, User: a.User, Client: a.Client, Resource: a.Name(), Time: now,
				Payload: AlertChanged{Alert: a},
			}); err != nil {
				return err
			}
			return tx.AddEvent(ctx, Event{
				ID: newEventID(), Type: TypeAlertAnswered, User: a.User, Resource: a.Name(), Time: now,
				Payload: AlertAnswered{BankID: a.BankID, BankConsentID: a.BankConsentID, AlertID: a.ID, Response: response},
			})
		})
		return out, err
	})
	if err != nil {
		return Alert{}, "", err
	}
	if a.Response == ResponseNotRecognised {
		cardOffer = a.Card()
	}
	return a, cardOffer, nil
}

// storeAlert stores a bank's FraudAlert for the user whose consent it
// came under, once (a bank's alert id is stored at most once), and writes
// support.alert.raised, to the user's streams and, through its Client, to
// the product that linked the bank. It runs in the bank event consumer's
// transaction, with the consent service's answers asked before it
// (resolveAlertConsents). An alert that breaks the protocol, or whose
// consent is not a VALID link's covering fraud alerts, is dropped, logged
// with the bank and the reason only.
func (s *Service) storeAlert(ctx context.Context, tx Tx, bankID string, fa *adapterv1.FraudAlert, consents alertConsents) error {
	if problem := checkAlert(fa); problem != "" {
		s.log.WarnContext(ctx, "fraud alert dropped: it breaks the adapter protocol at "+problem, slog.String(telemetry.AttrBankID, bankID))
		return nil
	}
	ac, ok := consents[fa.GetBankConsentId()]
	if !ok {
		return errors.New("fraud alert: its consent was not resolved before the transaction")
	}
	if ac.dropped != commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
		s.log.InfoContext(ctx, "fraud alert dropped: no consent covers it", slog.String(telemetry.AttrBankID, bankID),
			slog.String(telemetry.AttrReason, apierr.ReasonString(ac.dropped)))
		return nil
	}
	bc := ac.bc
	now := s.stamp()
	a := Alert{
		BankKey: BankKey{User: bc.User, BankID: bankID, ID: fa.GetAlertId()},
		Client:  bc.Link.Client, Link: bc.Link.Link, BankConsentID: fa.GetBankConsentId(),
		AccountID: fa.GetBankAccountId(), TransactionID: fa.GetTransactionId(), CardID: fa.GetBankCardId(),
		MerchantName: fa.GetMerchantName(), Description: MaskDigits(fa.GetDescription()),
		ActivityTime: fa.GetActivityTime().AsTime().UTC().Truncate(time.Microsecond),
		Severity:     AlertSeverity(strings.TrimPrefix(fa.GetSeverity().String(), "FRAUD_SEVERITY_")),
		State:        AlertNew, CreateTime: now,
	}
	if m := fa.GetAmount(); m != nil {
		a.Amount = &Money{Currency: m.GetCurrencyCode(), Units: m.GetUnits(), Nanos: m.GetNanos()}
	}
	inserted, err := tx.InsertAlert(ctx, a)
	if err != nil || !inserted {
		return err
	}
	return tx.AddEvent(ctx, Event{
		ID: newEventID(), Type: TypeAlertRaised, User: a.User, Client: a.Client, Resource: a.Name(), Time: now,
		Payload: AlertChanged{Alert: a},
	})
}

// maxConsentLookups is how many of a batch's consents are asked about at
// once.
const maxConsentLookups = 8

// alertConsents are the consent service's answers on the consents a batch
// of fraud alerts came under, by bank consent id (resolveAlertConsents).
type alertConsents map[string]alertConsent

// alertConsent is one answer: whose the consent is, or, in dropped, why no
// VALID link covering fraud alerts holds it (UNSPECIFIED when one does).
type alertConsent struct {
	bc      consentcheck.BankConsent
	dropped commonv1.ErrorReason
}

// resolveAlertConsents asks the consent service whose consent each fraud
// alert among events came under: once per consent, a few at a time, all
// within consentTimeout. It runs before the transaction that applies the
// events, never inside it: a transaction waiting on another service would
// hold SQLite's single write lock (every writer of the service waits) or,
// on PostgreSQL, the bank's event lock. An answer that does not come fails
// the batch, which is read again after a reconnect.
func (s *Service) resolveAlertConsents(ctx context.Context, bankID string, events []*adapterv1.StreamEventsResponse) (alertConsents, error) {
	ids := map[string]bool{}
	for _, ev := range events {
		if fa := ev.GetFraudAlert(); fa != nil && checkAlert(fa) == "" {
			ids[fa.GetBankConsentId()] = true
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	rctx, cancel := context.WithTimeout(ctx, consentTimeout)
	defer cancel()
	g, gctx := errgroup.WithContext(rctx)
	g.SetLimit(maxConsentLookups)
	var mu sync.Mutex
	out := make(alertConsents, len(ids))
	for id := range ids {
		g.Go(func() error {
			bc, err := s.consent.ResolveBankConsent(gctx, bankID, id, commonv1.Scope_SCOPE_FRAUD_ALERTS)
			var ac alertConsent
			switch reason := apierr.Reason(err); {
			case err == nil:
				ac.bc = bc
			case reason == commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED || reason == commonv1.ErrorReason_ERROR_REASON_CONSENT_EXPIRED ||
				reason == commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED:
				ac.dropped = reason
			default:
				return err // no answer: the batch is read again
			}
			mu.Lock()
			defer mu.Unlock()
			out[id] = ac
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// deliverAlertAnswer is the alert answer worker's handler: it passes the
// user's answer to the bank (AnswerFraudAlert; the same answer again is
// answered once by the bank). A bank that failed gets it again later; a
// bank that refused it for good (it knows no such alert, or the consent)
// is logged with its reason and not asked again.
func (s *Service) deliverAlertAnswer(ctx context.Context, d events.Delivered) error {
	var p AlertAnswered
	if err := json.Unmarshal(d.Data, &p); err != nil {
		s.log.ErrorContext(ctx, "alert answer dropped: unreadable event", slog.String("bankbridge.event_id", d.ID))
		return nil
	}
	answer := adapterv1.FraudAlertAnswer(adapterv1.FraudAlertAnswer_value["FRAUD_ALERT_ANSWER_"+string(p.Response)])
	client, err := s.banks.Client(p.BankID)
	if err == nil {
		bctx, cancel := fraudBankContext(ctx)
		_, err = client.AnswerFraudAlert(bctx, &adapterv1.AnswerFraudAlertRequest{
			BankConsentId: p.BankConsentID, AlertId: p.AlertID, Answer: answer,
		})
		cancel()
	}
	switch {
	case err == nil:
		return nil
	case transient(err):
		s.log.WarnContext(ctx, "alert answer not delivered; trying again later",
			slog.String(telemetry.AttrBankID, p.BankID), slog.String(telemetry.AttrReason, apierr.ReasonString(apierr.Reason(err))))
		return err
	}
	s.log.ErrorContext(ctx, "alert answer refused by the bank; not sent again",
		slog.String(telemetry.AttrBankID, p.BankID), slog.String(telemetry.AttrReason, apierr.ReasonString(apierr.Reason(err))))
	return nil
}
