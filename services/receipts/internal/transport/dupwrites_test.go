package transport_test

// Issue 14's fault row "duplicate concurrent writes with one idempotency
// key" for receipts ingest, through the gRPC server on SQLite and
// PostgreSQL: calls made at once with one key get one answer and store
// one receipt.

import (
	"os"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	receiptsv1 "github.com/bankbridge/bankbridge/gen/bankbridge/receipts/v1"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
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
			resps := make([]*receiptsv1.IngestReceiptResponse, n)
			errs := make([]error, n)
			begin := make(chan struct{})
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					<-begin
					resps[i], errs[i] = e.partner.IngestReceipt(e.asPartner(t), ingestReq("puid-alice-0001", "ORD-1", "key-00000001", nordic(paid)))
				})
			}
			close(begin)
			wg.Wait()
			for i := 1; i < n; i++ {
				if !proto.Equal(status.Convert(errs[i]).Proto(), status.Convert(errs[0]).Proto()) || !proto.Equal(resps[i], resps[0]) {
					t.Errorf("call %d got %v, %v; call 0 got %v, %v", i, resps[i], errs[i], resps[0], errs[0])
				}
			}
			if errs[0] != nil {
				t.Errorf("IngestReceipt: %v", errs[0])
			}
			if got := e.stored(t, "alice"); got != 1 {
				t.Errorf("%d receipts stored, want 1", got)
			}
		})
	}
}
