package supportpb

import (
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	supportv1 "github.com/bankbridge/bankbridge/gen/bankbridge/support/v1"
	"github.com/bankbridge/bankbridge/services/support/internal/app"
)

// Owned by the fraud, cards and alerts files (see app/doc.go).

// fraudEventData encodes the fraud files' event payloads: an alert event
// as the protojson of the WatchAlertsResponse it streams as (its cursor
// empty), the fraud workers' work as JSON; ok is false for a payload that
// is not theirs.
func fraudEventData(e app.Event) (data []byte, ok bool, err error) {
	switch p := e.Payload.(type) {
	case app.AlertChanged:
		b, err := protojson.Marshal(&supportv1.WatchAlertsResponse{EventTime: timestamppb.New(e.Time), Alert: AlertProto(p.Alert)})
		if err != nil {
			return nil, true, fmt.Errorf("encode event %s: %w", e.Type, err)
		}
		return b, true, nil
	case app.FraudReportFiled, app.AlertAnswered:
		b, err := json.Marshal(p)
		if err != nil {
			return nil, true, fmt.Errorf("encode event %s: %w", e.Type, err)
		}
		return b, true, nil
	}
	return nil, false, nil
}

// AlertEvent decodes an alert event's data, as WatchAlerts sends it
// without its cursor.
func AlertEvent(data []byte) (*supportv1.WatchAlertsResponse, error) {
	var out supportv1.WatchAlertsResponse
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// money is m as the contract's Money, or nil.
func money(m *app.Money) *commonv1.Money {
	if m == nil {
		return nil
	}
	return &commonv1.Money{CurrencyCode: m.Currency, Units: m.Units, Nanos: m.Nanos}
}

// AlertProto is a as the contract's Alert.
func AlertProto(a app.Alert) *supportv1.Alert {
	out := &supportv1.Alert{
		Name:         a.Name(),
		Account:      a.Account().String(),
		Transaction:  a.Transaction(),
		Card:         a.Card(),
		Amount:       money(a.Amount),
		MerchantName: a.MerchantName,
		Description:  a.Description,
		ActivityTime: timestamppb.New(a.ActivityTime),
		Severity:     supportv1.AlertSeverity(supportv1.AlertSeverity_value["ALERT_SEVERITY_"+string(a.Severity)]),
		State:        supportv1.AlertState(supportv1.AlertState_value["ALERT_STATE_"+string(a.State)]),
		Response:     AlertResponse(a.Response),
		CreateTime:   timestamppb.New(a.CreateTime),
	}
	if !a.AcknowledgeTime.IsZero() {
		out.AcknowledgeTime = timestamppb.New(a.AcknowledgeTime)
	}
	return out
}

// AlertResponse is r as the contract's AlertResponse (UNSPECIFIED for
// "").
func AlertResponse(r app.AlertResponse) supportv1.AlertResponse {
	return supportv1.AlertResponse(supportv1.AlertResponse_value["ALERT_RESPONSE_"+string(r)])
}

// AppAlertResponse is r in the domain's terms ("" for UNSPECIFIED).
func AppAlertResponse(r supportv1.AlertResponse) app.AlertResponse {
	switch r {
	case supportv1.AlertResponse_ALERT_RESPONSE_RECOGNISED:
		return app.ResponseRecognised
	case supportv1.AlertResponse_ALERT_RESPONSE_NOT_RECOGNISED:
		return app.ResponseNotRecognised
	}
	return ""
}

// AppAlertState is s in the domain's terms ("" for UNSPECIFIED).
func AppAlertState(s supportv1.AlertState) app.AlertState {
	switch s {
	case supportv1.AlertState_ALERT_STATE_NEW:
		return app.AlertNew
	case supportv1.AlertState_ALERT_STATE_ACKNOWLEDGED:
		return app.AlertAcknowledged
	}
	return ""
}

// CardProto is c as the contract's Card: its number as its last four
// characters only.
func CardProto(c app.Card) *supportv1.Card {
	out := &supportv1.Card{
		Name:         c.Name(),
		Account:      c.Account().String(),
		MaskedNumber: &commonv1.MaskedAccountNumber{Last4: c.Last4, Display: "•••• " + c.Last4},
		State:        supportv1.CardState(supportv1.CardState_value["CARD_STATE_"+string(c.State)]),
		BlockReason:  CardBlockReason(c.BlockReason),
	}
	if u := c.Unblock; u != nil {
		out.UnblockChallenge = &supportv1.UnblockChallenge{
			ChallengeText: u.Text, ExpireTime: timestamppb.New(u.ExpireTime), AttemptsAllowed: int32(u.AttemptsAllowed),
		}
	}
	return out
}

// CardBlockReason is r as the contract's CardBlockReason (UNSPECIFIED for
// "").
func CardBlockReason(r app.CardBlockReason) supportv1.CardBlockReason {
	return supportv1.CardBlockReason(supportv1.CardBlockReason_value["CARD_BLOCK_REASON_"+string(r)])
}

// AppCardBlockReason is r in the domain's terms ("" for UNSPECIFIED).
func AppCardBlockReason(r supportv1.CardBlockReason) app.CardBlockReason {
	switch r {
	case supportv1.CardBlockReason_CARD_BLOCK_REASON_LOST:
		return app.BlockLost
	case supportv1.CardBlockReason_CARD_BLOCK_REASON_STOLEN:
		return app.BlockStolen
	case supportv1.CardBlockReason_CARD_BLOCK_REASON_FRAUD_SUSPECTED:
		return app.BlockFraudSuspected
	}
	return ""
}

// FraudReportProto is r as the contract's FraudReport.
func FraudReportProto(r app.FraudReport) *supportv1.FraudReport {
	return &supportv1.FraudReport{
		Name:              r.Name(),
		Account:           r.Account().String(),
		Transaction:       r.Transaction(),
		Category:          supportv1.FraudCategory(supportv1.FraudCategory_value["FRAUD_CATEGORY_"+string(r.Category)]),
		Description:       r.Description,
		BlockCard:         r.BlockCard,
		Card:              r.Card(),
		Status:            supportv1.FraudReportStatus(supportv1.FraudReportStatus_value["FRAUD_REPORT_STATUS_"+string(r.Status)]),
		CardBlockStatus:   supportv1.CardBlockStatus(supportv1.CardBlockStatus_value["CARD_BLOCK_STATUS_"+string(r.CardBlockStatus)]),
		BankCaseReference: r.CaseID,
		CreateTime:        timestamppb.New(r.CreateTime),
		UpdateTime:        timestamppb.New(r.UpdateTime),
	}
}

// AppFraudCategory is c in the domain's terms ("" for UNSPECIFIED).
func AppFraudCategory(c supportv1.FraudCategory) app.FraudCategory {
	switch c {
	case supportv1.FraudCategory_FRAUD_CATEGORY_UNRECOGNISED_TRANSACTION:
		return app.FraudUnrecognisedTransaction
	case supportv1.FraudCategory_FRAUD_CATEGORY_CARD_LOST:
		return app.FraudCardLost
	case supportv1.FraudCategory_FRAUD_CATEGORY_CARD_STOLEN:
		return app.FraudCardStolen
	case supportv1.FraudCategory_FRAUD_CATEGORY_ACCOUNT_TAKEOVER:
		return app.FraudAccountTakeover
	case supportv1.FraudCategory_FRAUD_CATEGORY_SCAM:
		return app.FraudScam
	case supportv1.FraudCategory_FRAUD_CATEGORY_PHISHING:
		return app.FraudPhishing
	case supportv1.FraudCategory_FRAUD_CATEGORY_OTHER:
		return app.FraudOther
	}
	return ""
}
