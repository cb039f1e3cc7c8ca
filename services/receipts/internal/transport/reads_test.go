package transport_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	receiptsv1 "github.com/bankbridge/bankbridge/gen/bankbridge/receipts/v1"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/receipts/internal/app"
)

func merchants(rs []*receiptsv1.Receipt) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.GetMerchantName()
	}
	return out
}

// TestListReceipts pages through a user's receipts, newest purchase first,
// with each filter.
func TestListReceipts(t *testing.T) {
	t.Parallel()
	e := start(t, embeddedNATS)
	e.optIn("alice", "puid-alice-0001")
	base := time.Now().Add(-48 * time.Hour).UTC().Truncate(time.Second)
	at := func(h int) time.Time { return base.Add(time.Duration(h) * time.Hour) }
	for i, m := range []string{"Corner Grocery GmbH", "Nordic Outdoor", "Blue Door Coffee", "CORNER GROCERY", "Nordic Outdoor Online"} {
		e.ingest(t, ingestReq("puid-alice-0001", fmt.Sprintf("O%d", i), "", simple(m, at(i), int64(1_00+i))))
	}
	// The bank reports the 2nd purchase; the matcher matches it.
	e.banks.AddTransactions("sandbox", "chk", app.Transaction{ID: "tx-7", Booked: true, Amount: app.Money{CurrencyCode: "EUR", Units: -1, Nanos: -10_000_000},
		Time: at(1), CounterpartyName: "NORDIC OUTDOOR", BankCardID: "card-1", CardLast4: "1043"})
	if _, err := e.svc.MatchDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	tx := "users/alice/accounts/sandbox~chk/transactions/tx-7"

	all := e.list(t, "alice", &receiptsv1.ListReceiptsRequest{PageSize: 2})
	if got, want := merchants(all), []string{"Nordic Outdoor Online", "CORNER GROCERY", "Blue Door Coffee", "Nordic Outdoor", "Corner Grocery GmbH"}; !slices.Equal(got, want) {
		t.Fatalf("pages = %v, want %v (newest first)", got, want)
	}
	if m := all[3].GetMatch(); m.GetTransaction() != tx || m.GetConfidence() != receiptsv1.MatchConfidence_MATCH_CONFIDENCE_MEDIUM || m.GetMatchTime() == nil {
		t.Errorf("match = %v", m)
	}

	tests := []struct {
		name string
		req  *receiptsv1.ListReceiptsRequest
		want []string
	}{
		{"merchant, as normalised", &receiptsv1.ListReceiptsRequest{MerchantName: "corner grocery"}, []string{"CORNER GROCERY", "Corner Grocery GmbH"}},
		{"merchant with a web suffix", &receiptsv1.ListReceiptsRequest{MerchantName: "Nordic Outdoor Online"}, []string{"Nordic Outdoor Online", "Nordic Outdoor"}},
		{"transaction", &receiptsv1.ListReceiptsRequest{Transaction: tx}, []string{"Nordic Outdoor"}},
		{"matched", &receiptsv1.ListReceiptsRequest{MatchFilter: receiptsv1.MatchFilter_MATCH_FILTER_MATCHED}, []string{"Nordic Outdoor"}},
		{"unmatched, paged", &receiptsv1.ListReceiptsRequest{MatchFilter: receiptsv1.MatchFilter_MATCH_FILTER_UNMATCHED, PageSize: 1},
			[]string{"Nordic Outdoor Online", "CORNER GROCERY", "Blue Door Coffee", "Corner Grocery GmbH"}},
		{"a time window", &receiptsv1.ListReceiptsRequest{StartTime: timestamppb.New(at(1)), EndTime: timestamppb.New(at(3))}, []string{"Blue Door Coffee", "Nordic Outdoor"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := merchants(e.list(t, "alice", tt.req)); !slices.Equal(got, tt.want) {
				t.Errorf("list = %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("a page token is bound to its filters", func(t *testing.T) {
		alice := e.as(t, "alice")
		first, err := e.receipts.ListReceipts(alice, &receiptsv1.ListReceiptsRequest{Parent: "users/alice", PageSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.receipts.ListReceipts(alice, &receiptsv1.ListReceiptsRequest{Parent: "users/alice", PageSize: 1, PageToken: first.GetNextPageToken(), MerchantName: "Nordic Outdoor"})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_PAGE_TOKEN_INVALID)
		testkit.RequireFieldViolation(t, err, "page_token")
	})
	t.Run("another user sees none of them", func(t *testing.T) {
		e.consent.AddLink("bob", "sandbox")
		if got := e.list(t, "bob", nil); len(got) != 0 {
			t.Errorf("bob lists %d receipts", len(got))
		}
		_, err := e.receipts.GetReceipt(e.as(t, "bob"), &receiptsv1.GetReceiptRequest{Name: "users/bob/receipts/" + all[0].GetName()[len("users/alice/receipts/"):]})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
		_, err = e.receipts.DeleteReceipt(e.as(t, "bob"), &receiptsv1.DeleteReceiptRequest{Name: "users/bob/receipts/" + all[0].GetName()[len("users/alice/receipts/"):]})
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND)
		if n := e.stored(t, "alice"); n != 5 {
			t.Errorf("alice has %d receipts", n)
		}
	})
	t.Run("reads are in the access log", func(t *testing.T) {
		var reads int
		for _, en := range e.consent.Entries() {
			if en.Method == receiptsv1.ReceiptsService_ListReceipts_FullMethodName && en.User == "alice" && en.Allowed {
				reads++
			}
		}
		if reads == 0 {
			t.Error("no list in alice's access log")
		}
	})
}

// TestWatchReceipts streams a user's receipt events from the bus: the
// receipt created, then matched; resumes after a cursor; ends when the
// consent covering receipts is revoked. It runs on a NATS server embedded
// in the test and on the real one.
func TestWatchReceipts(t *testing.T) {
	t.Parallel()
	for name, url := range map[string]busURL{"embedded": embeddedNATS, "nats-server": func(t *testing.T) string { return testkit.RealNATS(t) }} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := start(t, url)
			e.optIn("alice", "puid-alice-0001")
			ctx, cancel := context.WithTimeout(e.as(t, "alice"), 20*time.Second)
			defer cancel()
			w, err := e.receipts.WatchReceipts(ctx, &receiptsv1.WatchReceiptsRequest{Parent: "users/alice"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Header(); err != nil { // the watch is open
				t.Fatal(err)
			}
			paid := time.Now().Add(-time.Hour).UTC()
			e.ingest(t, ingestReq("puid-alice-0001", "ORD-1", "", nordic(paid)))
			created, err := w.Recv()
			if err != nil {
				t.Fatal(err)
			}
			ev := created.GetEvent()
			if ev.GetType() != app.EventCreated || !receiptName.MatchString(ev.GetReceipt()) || ev.GetMatch() != nil || ev.GetEventTime() == nil || created.GetCursor() == "" {
				t.Fatalf("first event = %v", created)
			}

			e.banks.AddTransactions("sandbox", "chk", app.Transaction{ID: "tx-p02", Amount: app.Money{CurrencyCode: "EUR", Units: -59, Nanos: -990_000_000},
				Time: paid, CounterpartyName: "NORDIC OUTDOOR", BankCardID: "card-1", CardLast4: "1043"})
			if _, err := e.svc.MatchDue(t.Context()); err != nil {
				t.Fatal(err)
			}
			matched, err := w.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if m := matched.GetEvent().GetMatch(); matched.GetEvent().GetType() != app.EventMatched || matched.GetEvent().GetReceipt() != ev.GetReceipt() ||
				m.GetTransaction() != "users/alice/accounts/sandbox~chk/transactions/tx-p02" || m.GetConfidence() != receiptsv1.MatchConfidence_MATCH_CONFIDENCE_HIGH {
				t.Fatalf("second event = %v", matched)
			}

			// Resumed after the first event, the stream goes on with the second.
			w2, err := e.receipts.WatchReceipts(ctx, &receiptsv1.WatchReceiptsRequest{Parent: "users/alice", ResumeCursor: created.GetCursor()})
			if err != nil {
				t.Fatal(err)
			}
			again, err := w2.Recv()
			if err != nil || again.GetCursor() != matched.GetCursor() || again.GetEvent().GetType() != app.EventMatched {
				t.Fatalf("resumed = %v, %v", again, err)
			}

			// The user revokes the consent covering receipts: the stream ends.
			e.consent.SetLinkState("users/alice/links/l-sandbox-0", consentv1.ConsentState_CONSENT_STATE_REVOKED)
			_, err = w.Recv()
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED)
		})
	}
}

// TestEveryFailureTheContractNames provokes each failure each RPC's
// comment names, as a caller would meet it.
func TestEveryFailureTheContractNames(t *testing.T) {
	t.Parallel()
	e := start(t, embeddedNATS)
	e.optIn("alice", "puid-alice-0001")
	e.consent.AddLink("bob", "sandbox")
	e.consent.SetLinkState("users/bob/links/l-sandbox-0", consentv1.ConsentState_CONSENT_STATE_REVOKED)
	paid := time.Now().Add(-time.Hour).UTC()
	e.ingest(t, ingestReq("puid-alice-0001", "ORD-1", "key-00000001", nordic(paid)))
	name := e.list(t, "alice", nil)[0].GetName()

	bearer := func(tok string) context.Context { return withHeader(t.Context(), "authorization", "Bearer "+tok) }
	noToken := withHeader(t.Context(), "bankbridge-purpose", "PURCHASE_HISTORY")
	badToken := withHeader(bearer("not-a-token"), "bankbridge-purpose", "PURCHASE_HISTORY")
	expired := withHeader(bearer(e.token(t, "alice", "chat-app", -time.Minute)), "bankbridge-purpose", "PURCHASE_HISTORY")
	alice, carol := e.as(t, "alice"), e.as(t, "carol")
	otherPurpose := e.asFor(t, "alice", "FRAUD_PREVENTION")
	advertising := e.asFor(t, "alice", "ADVERTISING")
	notListed := e.asFor(t, "alice", "ACCOUNT_INFORMATION")
	partnerExpired := bearer(e.token(t, "test-partner", "test-partner", -time.Minute))
	partner := e.asPartner(t)

	list := func(ctx context.Context, req *receiptsv1.ListReceiptsRequest) error {
		if req.Parent == "" {
			req.Parent = "users/alice"
		}
		_, err := e.receipts.ListReceipts(ctx, req)
		return err
	}
	get := func(ctx context.Context, n string) error {
		_, err := e.receipts.GetReceipt(ctx, &receiptsv1.GetReceiptRequest{Name: n})
		return err
	}
	del := func(ctx context.Context, n string) error {
		_, err := e.receipts.DeleteReceipt(ctx, &receiptsv1.DeleteReceiptRequest{Name: n})
		return err
	}
	watch := func(ctx context.Context, parent, cursor string) error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		w, err := e.receipts.WatchReceipts(ctx, &receiptsv1.WatchReceiptsRequest{Parent: parent, ResumeCursor: cursor})
		if err != nil {
			return err
		}
		_, err = w.Recv()
		if err == io.EOF {
			return fmt.Errorf("stream ended without an error")
		}
		return err
	}
	ingest := func(ctx context.Context, req *receiptsv1.IngestReceiptRequest) error {
		_, err := e.partner.IngestReceipt(ctx, req)
		return err
	}
	amend := func(receiptID, amends string) *receiptsv1.IngestReceiptRequest {
		r := ingestReq("puid-alice-0001", receiptID, "", simple("Nordic Outdoor Online", paid, 1_00))
		r.AmendsReceiptId = amends
		return r
	}
	badCursor := base64.RawURLEncoding.EncodeToString([]byte("1:" + e.stream + ":1:1"))

	tests := []struct {
		rpc, name string
		call      func() error
		reason    commonv1.ErrorReason
		field     string
	}{
		{"ListReceipts", "no token", func() error { return list(noToken, &receiptsv1.ListReceiptsRequest{}) }, commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID, ""},
		{"ListReceipts", "a bad token", func() error { return list(badToken, &receiptsv1.ListReceiptsRequest{}) }, commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID, ""},
		{"ListReceipts", "an expired token", func() error { return list(expired, &receiptsv1.ListReceiptsRequest{}) }, commonv1.ErrorReason_ERROR_REASON_TOKEN_EXPIRED, ""},
		{"ListReceipts", "page_size over 100", func() error { return list(alice, &receiptsv1.ListReceiptsRequest{PageSize: 101}) }, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "page_size"},
		{"ListReceipts", "a transaction of another user", func() error {
			return list(alice, &receiptsv1.ListReceiptsRequest{Transaction: "users/bob/accounts/sandbox~chk/transactions/t1"})
		}, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, ""},
		{"ListReceipts", "a made-up page token", func() error { return list(alice, &receiptsv1.ListReceiptsRequest{PageToken: "b2Zmc2V0PTI"}) },
			commonv1.ErrorReason_ERROR_REASON_PAGE_TOKEN_INVALID, "page_token"},
		{"ListReceipts", "another user", func() error { return list(alice, &receiptsv1.ListReceiptsRequest{Parent: "users/bob"}) }, commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH, ""},
		{"ListReceipts", "a purpose the client may not declare", func() error { return list(otherPurpose, &receiptsv1.ListReceiptsRequest{}) },
			commonv1.ErrorReason_ERROR_REASON_CLIENT_PURPOSE_NOT_ALLOWED, ""},
		{"ListReceipts", "advertising", func() error { return list(advertising, &receiptsv1.ListReceiptsRequest{}) }, commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED, ""},
		{"ListReceipts", "a purpose the method does not serve", func() error { return list(notListed, &receiptsv1.ListReceiptsRequest{}) },
			commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED, ""},
		{"ListReceipts", "no consent", func() error { return list(carol, &receiptsv1.ListReceiptsRequest{Parent: "users/carol"}) }, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, ""},
		{"ListReceipts", "a revoked consent", func() error { return list(e.as(t, "bob"), &receiptsv1.ListReceiptsRequest{Parent: "users/bob"}) },
			commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, ""},

		{"GetReceipt", "no token", func() error { return get(noToken, name) }, commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID, ""},
		{"GetReceipt", "an expired token", func() error { return get(expired, name) }, commonv1.ErrorReason_ERROR_REASON_TOKEN_EXPIRED, ""},
		{"GetReceipt", "not a receipt name", func() error { return get(alice, "users/alice/receipts/a/b") }, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "name"},
		{"GetReceipt", "another user's name", func() error { return get(carol, name) }, commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH, ""},
		{"GetReceipt", "a purpose the client may not declare", func() error { return get(otherPurpose, name) }, commonv1.ErrorReason_ERROR_REASON_CLIENT_PURPOSE_NOT_ALLOWED, ""},
		{"GetReceipt", "advertising", func() error { return get(advertising, name) }, commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED, ""},
		{"GetReceipt", "no consent", func() error { return get(carol, "users/carol/receipts/r1") }, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, ""},
		{"GetReceipt", "a revoked consent", func() error { return get(e.as(t, "bob"), "users/bob/receipts/r1") }, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, ""},
		{"GetReceipt", "no such receipt", func() error { return get(alice, "users/alice/receipts/nope") }, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, ""},

		{"DeleteReceipt", "no token", func() error { return del(noToken, name) }, commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID, ""},
		{"DeleteReceipt", "an expired token", func() error { return del(expired, name) }, commonv1.ErrorReason_ERROR_REASON_TOKEN_EXPIRED, ""},
		{"DeleteReceipt", "not a receipt name", func() error { return del(alice, "users/alice/receipts/") }, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "name"},
		{"DeleteReceipt", "another user's name", func() error { return del(carol, name) }, commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH, ""},
		{"DeleteReceipt", "a purpose the client may not declare", func() error { return del(otherPurpose, name) }, commonv1.ErrorReason_ERROR_REASON_CLIENT_PURPOSE_NOT_ALLOWED, ""},
		{"DeleteReceipt", "advertising", func() error { return del(advertising, name) }, commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED, ""},
		{"DeleteReceipt", "no such receipt", func() error { return del(alice, "users/alice/receipts/nope") }, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, ""},

		{"WatchReceipts", "no token", func() error { return watch(noToken, "users/alice", "") }, commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID, ""},
		{"WatchReceipts", "an expired token", func() error { return watch(expired, "users/alice", "") }, commonv1.ErrorReason_ERROR_REASON_TOKEN_EXPIRED, ""},
		{"WatchReceipts", "a bad parent", func() error { return watch(alice, "alice", "") }, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "parent"},
		{"WatchReceipts", "a malformed cursor", func() error { return watch(alice, "users/alice", "not-a-cursor") }, commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID, "resume_cursor"},
		{"WatchReceipts", "a cursor of a stream since made anew", func() error { return watch(alice, "users/alice", badCursor) }, commonv1.ErrorReason_ERROR_REASON_CURSOR_EXPIRED, ""},
		{"WatchReceipts", "another user", func() error { return watch(alice, "users/bob", "") }, commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH, ""},
		{"WatchReceipts", "a purpose the client may not declare", func() error { return watch(otherPurpose, "users/alice", "") },
			commonv1.ErrorReason_ERROR_REASON_CLIENT_PURPOSE_NOT_ALLOWED, ""},
		{"WatchReceipts", "advertising", func() error { return watch(advertising, "users/alice", "") }, commonv1.ErrorReason_ERROR_REASON_PURPOSE_NOT_ALLOWED, ""},
		{"WatchReceipts", "no consent", func() error { return watch(carol, "users/carol", "") }, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, ""},
		{"WatchReceipts", "a revoked consent", func() error { return watch(e.as(t, "bob"), "users/bob", "") }, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED, ""},

		{"IngestReceipt", "no token", func() error { return ingest(t.Context(), amend("X1", "")) }, commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID, ""},
		{"IngestReceipt", "an expired token", func() error { return ingest(partnerExpired, amend("X1", "")) }, commonv1.ErrorReason_ERROR_REASON_TOKEN_EXPIRED, ""},
		{"IngestReceipt", "a user's token", func() error { return ingest(alice, amend("X1", "")) }, commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED, ""},
		{"IngestReceipt", "a bad partner user id", func() error {
			r := amend("X1", "")
			r.PartnerUserId = "short"
			return ingest(partner, r)
		}, commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "partner_user_id"},
		{"IngestReceipt", "no opt-in", func() error {
			r := amend("X1", "")
			r.PartnerUserId = "puid-nobody-01"
			return ingest(partner, r)
		}, commonv1.ErrorReason_ERROR_REASON_CONSENT_REQUIRED, ""},
		{"IngestReceipt", "a reused key", func() error { return ingest(partner, ingestReq("puid-alice-0001", "X2", "key-00000001", nordic(paid))) },
			commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED, "idempotency_key"},
		{"IngestReceipt", "a taken receipt id", func() error { return ingest(partner, amend("ORD-1", "")) }, commonv1.ErrorReason_ERROR_REASON_ALREADY_EXISTS, "receipt_id"},
		{"IngestReceipt", "amending no receipt", func() error { return ingest(partner, amend("X3", "ORD-404")) }, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "amends_receipt_id"},
	}
	for _, tt := range tests {
		t.Run(tt.rpc+"/"+tt.name, func(t *testing.T) {
			err := tt.call()
			testkit.RequireReason(t, err, tt.reason)
			if tt.field != "" {
				testkit.RequireFieldViolation(t, err, tt.field)
			}
		})
	}
	// The rest of IngestReceipt's (CONSENT_REVOKED, FAILED_PRECONDITION,
	// INVALID_ARGUMENT on amounts) are in TestIngestRefused and TestAmend.
}
