// Package receiptpb is the one translation between the receipts domain
// (app) and the contract's messages (bankbridge.receipts.v1): transport
// speaks it on the wire, and the store keeps a receipt's content as its
// deterministic protobuf bytes and writes the events' payloads with it.
// Enum values map by name: the domain's are the contract's without their
// prefix.
package receiptpb

import (
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	receiptsv1 "github.com/bankbridge/bankbridge/gen/bankbridge/receipts/v1"
	"github.com/bankbridge/bankbridge/services/receipts/internal/app"
)

// Content reads what a contract receipt says of the purchase; its output
// only fields are ignored.
func Content(r *receiptsv1.Receipt) app.Content {
	c := app.Content{
		MerchantName:  r.GetMerchantName(),
		OrderNumber:   r.GetOrderNumber(),
		OrderURL:      r.GetOrderUrl(),
		RecipientName: r.GetRecipientName(),
		Summary: app.Summary{
			Subtotal:     optMoney(r.GetSummary().GetSubtotal()),
			ShippingCost: optMoney(r.GetSummary().GetShippingCost()),
			TotalTax:     optMoney(r.GetSummary().GetTotalTax()),
			TotalCost:    Money(r.GetSummary().GetTotalCost()),
		},
	}
	if r.GetPurchaseTime() != nil {
		c.PurchaseTime = r.GetPurchaseTime().AsTime()
	}
	if pm := r.GetPaymentMethod(); pm != nil {
		c.PaymentMethod = &app.PaymentMethod{
			Type:        strings.TrimPrefix(pm.GetType().String(), "PAYMENT_METHOD_TYPE_"),
			CardNetwork: cardNetwork(pm.GetCardNetwork()),
		}
		if m := pm.GetMaskedNumber(); m != nil {
			c.PaymentMethod.MaskedNumber = &app.MaskedNumber{Last4: m.GetLast4(), Display: m.GetDisplay()}
		}
	}
	for _, li := range r.GetLineItems() {
		c.LineItems = append(c.LineItems, app.LineItem{
			Title: li.GetTitle(), Subtitle: li.GetSubtitle(), Quantity: li.GetQuantity(),
			UnitPrice: Money(li.GetUnitPrice()), ImageURL: li.GetImageUrl(),
		})
	}
	for _, a := range r.GetAdjustments() {
		c.Adjustments = append(c.Adjustments, app.Adjustment{Name: a.GetName(), Amount: Money(a.GetAmount())})
	}
	if a := r.GetShippingAddress(); a != nil {
		c.ShippingAddress = &app.Address{
			Street1: a.GetStreet_1(), Street2: a.GetStreet_2(), City: a.GetCity(),
			PostalCode: a.GetPostalCode(), State: a.GetState(), Country: a.GetCountry(),
		}
	}
	return c
}

func cardNetwork(n receiptsv1.CardNetwork) string {
	if n == receiptsv1.CardNetwork_CARD_NETWORK_UNSPECIFIED {
		return ""
	}
	return strings.TrimPrefix(n.String(), "CARD_NETWORK_")
}

// ContentProto is c as a contract receipt without its output-only fields.
func ContentProto(c app.Content) *receiptsv1.Receipt {
	out := &receiptsv1.Receipt{
		MerchantName:  c.MerchantName,
		OrderNumber:   c.OrderNumber,
		OrderUrl:      c.OrderURL,
		RecipientName: c.RecipientName,
		Summary: &receiptsv1.Summary{
			Subtotal:     optMoneyProto(c.Summary.Subtotal),
			ShippingCost: optMoneyProto(c.Summary.ShippingCost),
			TotalTax:     optMoneyProto(c.Summary.TotalTax),
			TotalCost:    MoneyProto(c.Summary.TotalCost),
		},
		PurchaseTime: ts(c.PurchaseTime),
	}
	if pm := c.PaymentMethod; pm != nil {
		out.PaymentMethod = &receiptsv1.PaymentMethod{
			Type: receiptsv1.PaymentMethodType(receiptsv1.PaymentMethodType_value["PAYMENT_METHOD_TYPE_"+pm.Type]),
		}
		if pm.CardNetwork != "" {
			out.PaymentMethod.CardNetwork = receiptsv1.CardNetwork(receiptsv1.CardNetwork_value["CARD_NETWORK_"+pm.CardNetwork])
		}
		if m := pm.MaskedNumber; m != nil {
			out.PaymentMethod.MaskedNumber = &commonv1.MaskedAccountNumber{Last4: m.Last4, Display: m.Display}
		}
	}
	for _, li := range c.LineItems {
		out.LineItems = append(out.LineItems, &receiptsv1.LineItem{
			Title: li.Title, Subtitle: li.Subtitle, Quantity: li.Quantity, UnitPrice: MoneyProto(li.UnitPrice), ImageUrl: li.ImageURL,
		})
	}
	for _, a := range c.Adjustments {
		out.Adjustments = append(out.Adjustments, &receiptsv1.Adjustment{Name: a.Name, Amount: MoneyProto(a.Amount)})
	}
	if a := c.ShippingAddress; a != nil {
		out.ShippingAddress = &receiptsv1.PostalAddress{
			Street_1: a.Street1, Street_2: a.Street2, City: a.City, PostalCode: a.PostalCode, State: a.State, Country: a.Country,
		}
	}
	return out
}

// ReceiptProto is r as the contract returns it, output-only fields set.
func ReceiptProto(r app.Receipt) *receiptsv1.Receipt {
	out := ContentProto(r.Content)
	out.Name = r.Name()
	out.Partner = r.Partner
	out.BankId = r.BankID
	out.Version = int32(r.Version)
	if r.Amends != "" {
		out.Amends = app.ReceiptName(r.User, r.Amends)
	}
	if r.AmendedBy != "" {
		out.AmendedBy = app.ReceiptName(r.User, r.AmendedBy)
	}
	out.Match = MatchProto(r.Match)
	out.CreateTime = ts(r.CreateTime)
	return out
}

// MatchProto is m as the contract's TransactionMatch; nil for nil.
func MatchProto(m *app.Match) *receiptsv1.TransactionMatch {
	if m == nil {
		return nil
	}
	return &receiptsv1.TransactionMatch{
		Transaction: m.Transaction,
		Confidence:  receiptsv1.MatchConfidence(receiptsv1.MatchConfidence_value["MATCH_CONFIDENCE_"+string(m.Confidence)]),
		MatchTime:   ts(m.Time),
	}
}

// MarshalContent is c's stored form: the deterministic protobuf encoding
// of ContentProto(c).
func MarshalContent(c app.Content) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(ContentProto(c))
	if err != nil {
		return nil, fmt.Errorf("encode receipt content: %w", err)
	}
	return b, nil
}

// UnmarshalContent reads MarshalContent's bytes.
func UnmarshalContent(b []byte) (app.Content, error) {
	var r receiptsv1.Receipt
	if err := proto.Unmarshal(b, &r); err != nil {
		return app.Content{}, fmt.Errorf("decode receipt content: %w", err)
	}
	return Content(&r), nil
}

// EventData is the payload of e: the contract's ReceiptEvent, in protojson.
func EventData(e app.Event) ([]byte, error) {
	b, err := protojson.Marshal(&receiptsv1.ReceiptEvent{
		Type: e.Type, Receipt: e.Receipt, Match: MatchProto(e.Match), EventTime: ts(e.Time),
	})
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", e.Type, err)
	}
	return b, nil
}

// Money reads a contract amount.
func Money(m *commonv1.Money) app.Money {
	return app.Money{CurrencyCode: m.GetCurrencyCode(), Units: m.GetUnits(), Nanos: m.GetNanos()}
}

// MoneyProto is m as a contract amount.
func MoneyProto(m app.Money) *commonv1.Money {
	return &commonv1.Money{CurrencyCode: m.CurrencyCode, Units: m.Units, Nanos: m.Nanos}
}

func optMoney(m *commonv1.Money) *app.Money {
	if m == nil {
		return nil
	}
	v := Money(m)
	return &v
}

func optMoneyProto(m *app.Money) *commonv1.Money {
	if m == nil {
		return nil
	}
	return MoneyProto(*m)
}

// ts is an optional timestamp: unset for the zero time.
func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
