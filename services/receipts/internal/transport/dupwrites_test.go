package transport_test

// Issue 14's fault row "duplicate concurrent writes with one idempotency
// key" for receipts ingest, through the gRPC server on SQLite and
// PostgreSQL: calls made at once with one key get one answer and store
// one receipt.

import (
	"os"
	"testing"
	"time"

	receiptsv1 "github.com/bankbridge/bankbridge/gen/bankbridge/receipts/v1"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

func TestIngestsAtOnceWithOneKeyGetOneAnswer(t *testing.T) {
	t.Parallel()
	dbs := map[string]func(t *testing.T) *storage.DB{
		"sqlite": func(t *testing.T) *storage.DB { return storagetest.OpenSQLite(t) },
		"postgres": func(t *testing.T) *storage.DB {
			url := os.Getenv(storagetest.PostgresURLEnv)
			if url == "" {
				t.Skipf("%s is not set: no PostgreSQL to run on", storagetest.PostgresURLEnv)
			}
			return storagetest.OpenPostgres(t, url)
		},
	}
	for name, open := range dbs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := startOn(t, open(t), embeddedNATS)
			e.optIn("alice", "puid-alice-0001")
			paid := time.Now().Add(-time.Hour).UTC()
			const n = 8
			if _, err := testkit.SameAnswers(t, "IngestReceipt", n, func() (*receiptsv1.IngestReceiptResponse, error) {
				return e.partner.IngestReceipt(e.asPartner(t), ingestReq("puid-alice-0001", "ORD-1", "key-00000001", nordic(paid)))
			}); err != nil {
				t.Errorf("IngestReceipt: %v", err)
			}
			if got := e.stored(t, "alice"); got != 1 {
				t.Errorf("%d receipts stored, want 1", got)
			}
		})
	}
}
