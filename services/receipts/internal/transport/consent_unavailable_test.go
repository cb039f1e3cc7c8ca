package transport_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	receiptsv1 "github.com/bankbridge/bankbridge/gen/bankbridge/receipts/v1"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck/consenttest"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/receipts/internal/app"
	"github.com/bankbridge/bankbridge/services/receipts/internal/fakes"
	"github.com/bankbridge/bankbridge/services/receipts/internal/store"
	"github.com/bankbridge/bankbridge/services/receipts/internal/transport"
)

// TestIngestWhileConsentIsUnreachable: with the consent service down (its
// port closed), a partner's IngestReceipt, which must resolve the
// partner-scoped id through consent, is refused at once with UNAVAILABLE
// (CONSENT_UNAVAILABLE) and a retry hint, not a masked INTERNAL, and
// nothing is stored.
func TestIngestWhileConsentIsUnreachable(t *testing.T) {
	t.Parallel()
	checker := consenttest.Unreachable(t)
	db := storagetest.OpenSQLite(t)
	if err := events.Migrate(t.Context(), db); err != nil {
		t.Fatal(err)
	}
	st, err := store.New(t.Context(), db, events.NewOutbox(db))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := app.New(app.Config{Store: st, Consent: checker, Banks: fakes.NewBanks(), Pages: pagetoken.Random(), ClientID: "receipts"})
	if err != nil {
		t.Fatal(err)
	}
	srv := servertest.Start(t, server.Deps{Consent: checker, Recorder: checker}, func(r grpc.ServiceRegistrar) {
		receiptsv1.RegisterPartnerReceiptsServiceServer(r, transport.NewPartnerServer(svc))
	}, servertest.Options{Name: "receipts"})
	e := &env{issuer: srv.Issuer}
	partner := receiptsv1.NewPartnerReceiptsServiceClient(srv.Conn)

	ctx, cancel := context.WithTimeout(e.asPartner(t), 30*time.Second)
	defer cancel()
	began := time.Now()
	_, err = partner.IngestReceipt(ctx, ingestReq("puid-alice", "order-1", "", nordic(time.Now().Add(-time.Hour))))
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("code = %v (%v), want UNAVAILABLE", status.Code(err), err)
	}
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CONSENT_UNAVAILABLE)
	if d := apierr.RetryDelay(err); d <= 0 {
		t.Errorf("RetryInfo delay = %v, want a retry hint", d)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("refused after %v, want well within the caller's 30s", took)
	}
	var n int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM receipts`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d receipts stored, want none", n)
	}
}
