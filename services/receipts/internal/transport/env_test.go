package transport_test

// These tests call the receipts service the way a product and a partner
// do: over gRPC, with bearer tokens (and a declared purpose for users),
// through the real server kit (token check, user and client binding,
// validation, access rules, consent check, access log) on 127.0.0.1:0, on
// a real store (SQLite) whose outbox a real relay publishes to a NATS
// server. Consent and banks are fakes at the ports.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	receiptsv1 "github.com/bankbridge/bankbridge/gen/bankbridge/receipts/v1"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck/consenttest"
	"github.com/bankbridge/bankbridge/services/platform/events/eventstest"
	"github.com/bankbridge/bankbridge/services/platform/events/stream"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/receipts/internal/app"
	"github.com/bankbridge/bankbridge/services/receipts/internal/fakes"
	"github.com/bankbridge/bankbridge/services/receipts/internal/store"
	"github.com/bankbridge/bankbridge/services/receipts/internal/transport"
)

const partnerParent = "clients/" + servertest.Partner

type env struct {
	svc      *app.Service
	db       *storage.DB
	consent  *consenttest.Consent
	banks    *fakes.Banks
	issuer   *auth.DevIssuer
	receipts receiptsv1.ReceiptsServiceClient
	partner  receiptsv1.PartnerReceiptsServiceClient
	// stream is the name of the bus's stream.
	stream string
}

// busURL is a NATS server for one test: embedded in it, or the real one.
type busURL func(t *testing.T) string

func embeddedNATS(t *testing.T) string { return eventstest.EmbeddedNATS(t) }

// start serves the receipts service with the test partner and the chat
// app's purchase-history purpose configured, its events relayed to a
// stream of the test's own on the NATS server url gives.
func start(t *testing.T, url busURL) *env {
	t.Helper()
	return startOn(t, storagetest.OpenSQLite(t), url)
}

// startOn is start with the service's store on db.
func startOn(t *testing.T, db *storage.DB, url busURL) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e := &env{db: db, consent: consenttest.New(fakes.Scopes...), banks: fakes.NewBanks()}
	relayed := eventstest.Relay(t, url(t), e.db, "receipts")
	bus := relayed.Bus
	e.stream = relayed.Stream
	st, err := store.New(ctx, e.db, relayed.Outbox)
	if err != nil {
		t.Fatal(err)
	}

	e.svc, err = app.New(app.Config{Store: st, Consent: e.consent, Banks: e.banks, Pages: pagetoken.Random(), ClientID: "receipts"})
	if err != nil {
		t.Fatal(err)
	}
	feed := stream.Feed{Bus: bus, Consent: e.consent, Logger: slog.New(slog.DiscardHandler)}
	srv := servertest.Start(t, server.Deps{Consent: e.consent, Recorder: e.consent},
		func(r grpc.ServiceRegistrar) {
			receiptsv1.RegisterReceiptsServiceServer(r, transport.NewReceiptsServer(e.svc, feed))
			receiptsv1.RegisterPartnerReceiptsServiceServer(r, transport.NewPartnerServer(e.svc))
		}, servertest.Options{Name: "receipts", Config: func(c *server.Config) {
			c.ClientPurposes = servertest.Client + "=PURCHASE_HISTORY,ACCOUNT_INFORMATION,CONSENT_MANAGEMENT"
		}})
	e.issuer = srv.Issuer
	e.receipts = receiptsv1.NewReceiptsServiceClient(srv.Conn)
	e.partner = receiptsv1.NewPartnerReceiptsServiceClient(srv.Conn)
	return e
}

// token mints a token of user for client, valid for ttl.
func (e *env) token(t *testing.T, user, client string, ttl time.Duration) string {
	t.Helper()
	tok, err := e.issuer.Mint(user, client, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// as is a call by user through the chat app, for PURCHASE_HISTORY.
func (e *env) as(t *testing.T, user string) context.Context {
	t.Helper()
	return e.asFor(t, user, "PURCHASE_HISTORY")
}

func (e *env) asFor(t *testing.T, user, purpose string) context.Context {
	t.Helper()
	return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+e.token(t, user, servertest.Client, time.Hour),
		"bankbridge-purpose", purpose)
}

// asPartner is a call by the test partner with its own token.
func (e *env) asPartner(t *testing.T) context.Context {
	t.Helper()
	return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+e.token(t, servertest.Partner, servertest.Partner, time.Hour))
}

// optIn gives user a VALID link covering receipts and transactions and an
// opt-in to the test partner under puid.
func (e *env) optIn(user, puid string) {
	e.consent.AddLink(user, "sandbox")
	e.consent.OptIn(user, servertest.Partner, puid)
}

func eur(cents int64) *commonv1.Money {
	return &commonv1.Money{CurrencyCode: "EUR", Units: cents / 100, Nanos: int32(cents%100) * 10_000_000}
}

// nordic is alice's purchase at Nordic Outdoor, as the partner sends it:
// 2 × 12.50 + 29.99 = 54.99, plus 5.00 shipping, 59.99 in all.
func nordic(at time.Time) *receiptsv1.Receipt {
	return &receiptsv1.Receipt{
		MerchantName:  "Nordic Outdoor Online",
		OrderNumber:   "NO-100234",
		OrderUrl:      "https://nordic-outdoor.example/orders/NO-100234",
		RecipientName: "Alice Example",
		PaymentMethod: &receiptsv1.PaymentMethod{
			Type: receiptsv1.PaymentMethodType_PAYMENT_METHOD_TYPE_CARD, CardNetwork: receiptsv1.CardNetwork_CARD_NETWORK_VISA,
			MaskedNumber: &commonv1.MaskedAccountNumber{Last4: "1043", Display: "•••• 1043"},
		},
		LineItems: []*receiptsv1.LineItem{
			{Title: "Trail running socks", Subtitle: "Size 39-42, grey", Quantity: 2, UnitPrice: eur(12_50)},
			{Title: "Headlamp 300 lm", Quantity: 1, UnitPrice: eur(29_99), ImageUrl: "https://nordic-outdoor.example/i/headlamp.png"},
		},
		Summary:         &receiptsv1.Summary{Subtotal: eur(54_99), ShippingCost: eur(5_00), TotalCost: eur(59_99)},
		ShippingAddress: &receiptsv1.PostalAddress{Street_1: "Hauptstraße 5", City: "Berlin", PostalCode: "10115", Country: "DE"},
		PurchaseTime:    timestamppb.New(at),
	}
}

// simple is a one-line receipt of cents at merchant, bought at.
func simple(merchant string, at time.Time, cents int64) *receiptsv1.Receipt {
	return &receiptsv1.Receipt{
		MerchantName: merchant,
		LineItems:    []*receiptsv1.LineItem{{Title: "Item", Quantity: 1, UnitPrice: eur(cents)}},
		Summary:      &receiptsv1.Summary{TotalCost: eur(cents)},
		PurchaseTime: timestamppb.New(at),
	}
}

// ingestReq is a request of the test partner; key "" makes a fresh one
// (the contract requires a key).
func ingestReq(puid, receiptID, key string, r *receiptsv1.Receipt) *receiptsv1.IngestReceiptRequest {
	if key == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		key = "key-" + hex.EncodeToString(b[:])
	}
	return &receiptsv1.IngestReceiptRequest{Parent: partnerParent, PartnerUserId: puid, ReceiptId: receiptID, IdempotencyKey: key, Receipt: r}
}

// ingest sends a receipt as the partner and fails the test on an error.
func (e *env) ingest(t *testing.T, req *receiptsv1.IngestReceiptRequest) *receiptsv1.IngestReceiptResponse {
	t.Helper()
	resp, err := e.partner.IngestReceipt(e.asPartner(t), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// list returns all of user's receipts, through every page.
func (e *env) list(t *testing.T, user string, req *receiptsv1.ListReceiptsRequest) []*receiptsv1.Receipt {
	t.Helper()
	if req == nil {
		req = &receiptsv1.ListReceiptsRequest{}
	}
	req.Parent = "users/" + user
	var out []*receiptsv1.Receipt
	for {
		resp, err := e.receipts.ListReceipts(e.as(t, user), req)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, resp.GetReceipts()...)
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			return out
		}
	}
}

// stored counts the receipts rows of user, straight from the database.
func (e *env) stored(t *testing.T, user string) int {
	t.Helper()
	var n int
	if err := e.db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM receipts WHERE user_id = $1`, user).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// withHeader adds one metadata entry to a call.
func withHeader(ctx context.Context, key, value string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, key, value)
}
