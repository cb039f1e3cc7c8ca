package transport_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	receiptsv1 "github.com/bankbridge/bankbridge/gen/bankbridge/receipts/v1"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck/consenttest"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// receiptName is a receipt's name: the user's, with an opaque random id
// that names neither the user nor the partner's receipt id.
var receiptName = regexp.MustCompile(`^users/alice/receipts/[0-9a-f]{32}$`)

// TestIngest is a partner pushing a receipt, and retrying it.
func TestIngest(t *testing.T) {
	t.Parallel()
	e := start(t, embeddedNATS)
	e.optIn("alice", "puid-alice-0001")
	paid := time.Now().Add(-time.Hour).UTC()
	sent := nordic(paid)
	req := ingestReq("puid-alice-0001", "ORD-1", "key-00000001", sent)

	first := e.ingest(t, req)
	if first.GetReceiptId() != "ORD-1" || first.GetVersion() != 1 || first.GetCreateTime() == nil {
		t.Fatalf("response = %v", first)
	}
	if b, _ := protojson.Marshal(first); strings.Contains(string(b), "alice") || strings.Contains(string(b), "users/") {
		t.Errorf("the response names the user: %s", b)
	}

	got := e.list(t, "alice", nil)
	if len(got) != 1 {
		t.Fatalf("alice has %d receipts, want 1", len(got))
	}
	r := got[0]
	if !receiptName.MatchString(r.GetName()) || r.GetPartner() != servertest.Partner || r.GetBankId() != "" || r.GetVersion() != 1 ||
		r.GetAmends() != "" || r.GetAmendedBy() != "" || r.GetMatch() != nil || !r.GetCreateTime().AsTime().Equal(first.GetCreateTime().AsTime()) {
		t.Errorf("stored receipt = %v", r)
	}
	content := proto.Clone(r).(*receiptsv1.Receipt)
	content.Name, content.Partner, content.Version, content.CreateTime = "", "", 0, nil
	if !proto.Equal(content, sent) {
		t.Errorf("stored content =\n%v\nwant what was sent\n%v", content, sent)
	}

	// The ingest is in alice's access log, as the partner's, before it
	// was stored.
	var logged bool
	for _, en := range e.consent.Entries() {
		if en.Method == receiptsv1.PartnerReceiptsService_IngestReceipt_FullMethodName {
			logged = en.User == "alice" && en.ClientID == servertest.Partner && en.Resource == r.GetName() && en.Allowed &&
				en.Purpose == commonv1.Purpose_PURPOSE_PURCHASE_HISTORY && en.Scope == commonv1.Scope_SCOPE_RECEIPTS
		}
	}
	if !logged {
		t.Errorf("access log = %+v, want the ingest", e.consent.Entries())
	}

	t.Run("a retry with the same key answers the first answer", func(t *testing.T) {
		again := e.ingest(t, ingestReq("puid-alice-0001", "ORD-1", "key-00000001", nordic(paid)))
		if !proto.Equal(again, first) {
			t.Errorf("retry = %v, want %v", again, first)
		}
		if n := e.stored(t, "alice"); n != 1 {
			t.Errorf("%d receipts stored after a retry", n)
		}
	})
	t.Run("the same key with another request", func(t *testing.T) {
		changed := nordic(paid)
		changed.OrderNumber = "NO-100235"
		_, err := e.partner.IngestReceipt(e.asPartner(t), ingestReq("puid-alice-0001", "ORD-1", "key-00000001", changed))
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
		testkit.RequireFieldViolation(t, err, "idempotency_key")
	})
	t.Run("the same receipt id and receipt under another key is the same receipt", func(t *testing.T) {
		again := e.ingest(t, ingestReq("puid-alice-0001", "ORD-1", "key-00000002", nordic(paid)))
		if !proto.Equal(again, first) {
			t.Errorf("answer = %v, want %v", again, first)
		}
		if n := e.stored(t, "alice"); n != 1 {
			t.Errorf("%d receipts stored", n)
		}
	})
	t.Run("the same receipt id with another receipt", func(t *testing.T) {
		_, err := e.partner.IngestReceipt(e.asPartner(t), ingestReq("puid-alice-0001", "ORD-1", "key-00000003", simple("Nordic Outdoor", paid, 10_00)))
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_ALREADY_EXISTS)
		testkit.RequireFieldViolation(t, err, "receipt_id")
		if n := e.stored(t, "alice"); n != 1 {
			t.Errorf("%d receipts stored", n)
		}
	})
	t.Run("the Idempotency-Key header fills the key", func(t *testing.T) {
		ctx := e.asPartner(t)
		req := ingestReq("puid-alice-0001", "ORD-2", "", simple("Kiosk", paid, 2_00))
		req.IdempotencyKey = ""
		resp, err := e.partner.IngestReceipt(withHeader(ctx, "idempotency-key", "key-00000004"), req)
		if err != nil {
			t.Fatal(err)
		}
		again := e.ingest(t, ingestReq("puid-alice-0001", "ORD-2", "key-00000004", simple("Kiosk", paid, 2_00)))
		if !proto.Equal(again, resp) {
			t.Errorf("retry with the key in the body = %v, want %v", again, resp)
		}
	})
}

// TestAmend sends a refund and a correction as new versions, each amending
// the latest, and deletes the receipt with every version.
func TestAmend(t *testing.T) {
	t.Parallel()
	e := start(t, embeddedNATS)
	e.optIn("alice", "puid-alice-0001")
	paid := time.Now().Add(-time.Hour).UTC()
	e.ingest(t, ingestReq("puid-alice-0001", "ORD-1", "", nordic(paid)))
	refund := ingestReq("puid-alice-0001", "ORD-1-R1", "", simple("Nordic Outdoor Online", paid, 34_99))
	refund.AmendsReceiptId = "ORD-1"
	if v := e.ingest(t, refund).GetVersion(); v != 2 {
		t.Fatalf("version of the first amendment = %d, want 2", v)
	}
	fix := ingestReq("puid-alice-0001", "ORD-1-R2", "", simple("Nordic Outdoor Online", paid, 30_00))
	fix.AmendsReceiptId = "ORD-1-R1"
	if v := e.ingest(t, fix).GetVersion(); v != 3 {
		t.Fatalf("version of the second amendment = %d, want 3", v)
	}

	list := e.list(t, "alice", nil)
	if len(list) != 1 || list[0].GetVersion() != 3 || list[0].GetAmends() == "" || list[0].GetAmendedBy() != "" {
		t.Fatalf("list = %v, want version 3 alone", list)
	}
	alice := e.as(t, "alice")
	v2, err := e.receipts.GetReceipt(alice, &receiptsv1.GetReceiptRequest{Name: list[0].GetAmends()})
	if err != nil {
		t.Fatal(err)
	}
	if v2.GetReceipt().GetVersion() != 2 || v2.GetReceipt().GetAmendedBy() != list[0].GetName() || !receiptName.MatchString(v2.GetReceipt().GetAmends()) {
		t.Errorf("version 2 = %v", v2.GetReceipt())
	}
	v1, err := e.receipts.GetReceipt(alice, &receiptsv1.GetReceiptRequest{Name: v2.GetReceipt().GetAmends()})
	if err != nil || v1.GetReceipt().GetVersion() != 1 || v1.GetReceipt().GetAmendedBy() != v2.GetReceipt().GetName() ||
		v1.GetReceipt().GetSummary().GetTotalCost().GetUnits() != 59 {
		t.Errorf("version 1 = %v, %v", v1.GetReceipt(), err)
	}

	t.Run("amending a version that was amended", func(t *testing.T) {
		stale := ingestReq("puid-alice-0001", "ORD-1-R3", "", simple("Nordic Outdoor Online", paid, 1_00))
		stale.AmendsReceiptId = "ORD-1-R1"
		_, err := e.partner.IngestReceipt(e.asPartner(t), stale)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION)
	})
	t.Run("amending a receipt the partner never sent for the user", func(t *testing.T) {
		e.optIn("bob", "puid-bob-00001")
		e.ingest(t, ingestReq("puid-bob-00001", "BOB-1", "", simple("Kiosk", paid, 1_00)))
		for _, amends := range []string{"ORD-404", "BOB-1"} {
			r := ingestReq("puid-alice-0001", "ORD-9", "", simple("Kiosk", paid, 1_00))
			r.AmendsReceiptId = amends
			_, err := e.partner.IngestReceipt(e.asPartner(t), r)
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
		}
		if n := e.stored(t, "alice"); n != 3 {
			t.Errorf("alice has %d receipt versions, want 3", n)
		}
	})
	t.Run("deleting a receipt deletes every version", func(t *testing.T) {
		if _, err := e.receipts.DeleteReceipt(alice, &receiptsv1.DeleteReceiptRequest{Name: v1.GetReceipt().GetName()}); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{v1.GetReceipt().GetName(), v2.GetReceipt().GetName(), list[0].GetName()} {
			_, err := e.receipts.GetReceipt(alice, &receiptsv1.GetReceiptRequest{Name: name})
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
		}
		if n := e.stored(t, "alice"); n != 0 {
			t.Errorf("%d rows of the deleted receipt left", n)
		}
	})
}

// TestIngestRefused: what a partner may not store, and that nothing of it
// is stored.
func TestIngestRefused(t *testing.T) {
	t.Parallel()
	e := start(t, embeddedNATS)
	e.optIn("alice", "puid-alice-0001")
	e.consent.OptIn("carol", servertest.Partner, "puid-carol-0001") // carol has no link covering receipts
	e.consent.AddLink("carol", "sandbox", commonv1.Scope_SCOPE_TRANSACTIONS)
	e.consent.OptIn("dave", servertest.Partner, "puid-dave-00001")
	e.consent.AddLink("dave", "sandbox")
	e.consent.RevokeOptIn(servertest.Partner, "puid-dave-00001")
	paid := time.Now().Add(-time.Hour).UTC()
	edit := func(f func(r *receiptsv1.Receipt)) *receiptsv1.Receipt {
		r := nordic(paid)
		f(r)
		return r
	}

	tests := []struct {
		name   string
		user   string // whose receipts must stay untouched
		req    *receiptsv1.IngestReceiptRequest
		reason commonv1.ErrorReason
		field  string
		rule   string
	}{
		{"a total that does not add up", "alice", ingestReq("puid-alice-0001", "R1", "", edit(func(r *receiptsv1.Receipt) { r.Summary.TotalCost = eur(60_00) })),
			commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "receipt.summary.total_cost", "receipt.total_adds_up"},
		{"a subtotal that is not the line items", "alice", ingestReq("puid-alice-0001", "R2", "", edit(func(r *receiptsv1.Receipt) {
			r.Summary.Subtotal, r.Summary.TotalCost = eur(50_00), eur(55_00)
		})), commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "receipt.summary.subtotal", "receipt.subtotal_adds_up"},
		{"a negative shipping cost", "alice", ingestReq("puid-alice-0001", "R3", "", edit(func(r *receiptsv1.Receipt) {
			r.Summary.ShippingCost, r.Summary.TotalCost = eur(-5_00), eur(49_99)
		})), commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "receipt.summary.shipping_cost", "receipt.amount_not_negative"},
		{"mixed currencies", "alice", ingestReq("puid-alice-0001", "R4", "", edit(func(r *receiptsv1.Receipt) { r.Summary.ShippingCost.CurrencyCode = "USD" })),
			commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "receipt", "receipt.single_currency"},
		{"an order URL that is not https", "alice", ingestReq("puid-alice-0001", "R5", "", edit(func(r *receiptsv1.Receipt) { r.OrderUrl = "javascript:alert(1)" })),
			commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "receipt.order_url", ""},
		{"a purchase in the future", "alice", ingestReq("puid-alice-0001", "R6", "", nordic(time.Now().Add(time.Hour))),
			commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "receipt.purchase_time", "receipt.purchase_time_not_future"},
		{"a partner user id nobody opted in under", "alice", ingestReq("puid-nobody-001", "R7", "", nordic(paid)),
			commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, "", ""},
		{"a user without consent covering receipts", "carol", ingestReq("puid-carol-0001", "R8", "", nordic(paid)),
			commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, "", ""},
		{"a revoked opt-in", "dave", ingestReq("puid-dave-00001", "R9", "", nordic(paid)),
			commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.partner.IngestReceipt(e.asPartner(t), tt.req)
			testkit.RequireReason(t, err, tt.reason)
			if tt.field != "" {
				v := testkit.RequireFieldViolation(t, err, tt.field)
				if tt.rule != "" && v.GetReason() != tt.rule {
					t.Errorf("violation on %s = %s, want rule %s", tt.field, v.GetReason(), tt.rule)
				}
			}
			if n := e.stored(t, tt.user); n != 0 {
				t.Errorf("%d receipts stored for %s", n, tt.user)
			}
		})
	}

	t.Run("the access log is unavailable: nothing is stored", func(t *testing.T) {
		e.consent.FailRecord(consenttest.ErrRecord)
		defer e.consent.FailRecord(nil)
		_, err := e.partner.IngestReceipt(e.asPartner(t), ingestReq("puid-alice-0001", "R10", "key-00000010", nordic(paid)))
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_AUDIT_UNAVAILABLE)
		if testkit.RetryInfo(err) == nil {
			t.Error("no RetryInfo")
		}
		if n := e.stored(t, "alice"); n != 0 {
			t.Errorf("%d receipts stored without an access log entry", n)
		}
		var events, keys int
		_ = e.db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM events_outbox`).Scan(&events)
		_ = e.db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM idempotency_keys`).Scan(&keys)
		if events != 0 || keys != 0 {
			t.Errorf("%d events and %d keys written for a receipt never stored", events, keys)
		}
		// The key was not spent: the retry, once the log is back, stores it.
		e.consent.FailRecord(nil)
		if resp := e.ingest(t, ingestReq("puid-alice-0001", "R10", "key-00000010", nordic(paid))); resp.GetVersion() != 1 {
			t.Errorf("retry = %v", resp)
		}
	})
	t.Run("a user's token", func(t *testing.T) {
		_, err := e.partner.IngestReceipt(e.as(t, "alice"), ingestReq("puid-alice-0001", "R11", "", nordic(paid)))
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED)
	})
	t.Run("another client's parent", func(t *testing.T) {
		req := ingestReq("puid-alice-0001", "R12", "", nordic(paid))
		req.Parent = "clients/other-partner"
		_, err := e.partner.IngestReceipt(e.asPartner(t), req)
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED)
	})
}
