package server_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/gen/apierr"
	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// lostConnectionBalance answers GetBalance with a read on a PostgreSQL
// connection whose backend was terminated just before, as a restart of
// PostgreSQL does to every pooled connection: the handler returns the
// driver's error as it is, as a store's read does.
type lostConnectionBalance struct {
	balancev1.UnimplementedBalanceServiceServer
	db, killer *storage.DB
	// marked: the store marks the error (storage.MarkUnavailable) and the
	// service passes it on, wrapped, as an apierr error.
	marked bool
}

func (b *lostConnectionBalance) GetBalance(ctx context.Context, _ *balancev1.GetBalanceRequest) (*balancev1.GetBalanceResponse, error) {
	conn, err := b.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close() }()
	var pid int
	if err := conn.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		return nil, err
	}
	if _, err := b.killer.ExecContext(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		return nil, err
	}
	for {
		var n int
		if err := b.killer.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&n); err != nil {
			return nil, err
		}
		if n == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	var one int
	if err := conn.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		if b.marked {
			return nil, fmt.Errorf("read balance: %w", storage.MarkUnavailable(err))
		}
		return nil, err
	}
	return &balancev1.GetBalanceResponse{}, nil
}

// TestALostDatabaseConnectionAnswersUnavailable: a read whose database
// connection was cut under it (a PostgreSQL restart, on a real
// PostgreSQL, by pg_terminate_backend) reaches the caller as UNAVAILABLE
// (STORAGE_UNAVAILABLE) with a retry hint and an incident id, never as
// INTERNAL, and no driver text leaves.
func TestALostDatabaseConnectionAnswersUnavailable(t *testing.T) {
	t.Parallel()
	admin := os.Getenv(storagetest.PostgresURLEnv)
	if admin == "" {
		t.Skipf("%s is not set: this test needs a real PostgreSQL", storagetest.PostgresURLEnv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	killer, err := storage.Open(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = killer.Close() })
	for _, marked := range []bool{false, true} {
		t.Run(fmt.Sprintf("marked by the store: %v", marked), func(t *testing.T) {
			t.Parallel()
			hooks := &recorder{}
			b := &lostConnectionBalance{db: storagetest.OpenPostgres(t, admin), killer: killer, marked: marked}
			s := servertest.Start(t, server.Deps{Consent: hooks, Recorder: hooks}, func(r grpc.ServiceRegistrar) {
				balancev1.RegisterBalanceServiceServer(r, b)
			}, servertest.Options{Name: "lost-db"})

			_, err := balancev1.NewBalanceServiceClient(s.Conn).GetBalance(userCtx(t, s, "ACCOUNT_INFORMATION"), aliceBalance)
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("code = %v (%v), want UNAVAILABLE", status.Code(err), err)
			}
			testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_STORAGE_UNAVAILABLE)
			if apierr.RetryDelay(err) <= 0 {
				t.Error("STORAGE_UNAVAILABLE without a retry hint")
			}
			if apierr.Info(err).GetMetadata()["incident_id"] == "" {
				t.Error("STORAGE_UNAVAILABLE without an incident id to find the log line by")
			}
			if msg := status.Convert(err).Message(); strings.Contains(msg, "SQLSTATE") || strings.Contains(msg, "terminating") || strings.Contains(msg, "read balance") {
				t.Errorf("the driver's or the service's text reached the caller: %q", msg)
			}
		})
	}
}
