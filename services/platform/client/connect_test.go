package client_test

import (
	"context"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	"github.com/bankbridge/bankbridge/services/platform/client"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// TestAnAddressThatNeverAnswersFailsFast: a listener that accepts and never
// says a word (a frozen process, a silently dropping network) fails a
// call with UNAVAILABLE once the connect attempt times out, not at the
// call's own deadline, far off; later calls then fail at once.
func TestAnAddressThatNeverAnswersFailsFast(t *testing.T) {
	t.Parallel()
	addr := testkit.Blackhole(t)
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "connect", LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	conn, err := client.Dial(addr, tel, client.Options{ConnectTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range 2 {
		began := time.Now()
		_, err := balancev1.NewBalanceServiceClient(conn).GetBalance(ctx, &balancev1.GetBalanceRequest{})
		took := time.Since(began)
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("call %d: %v, want UNAVAILABLE", i, err)
		}
		// Generous: gRPC's own connect timeout is 20s, the call's 60s.
		if took > 10*time.Second {
			t.Errorf("call %d failed after %v", i, took)
		}
	}
}
