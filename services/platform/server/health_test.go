package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

func TestHealthTurnsNotServingOnDrain(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{drainDelay: 500 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	watch, err := healthpb.NewHealthClient(e.conn).Watch(ctx, &healthpb.HealthCheckRequest{Service: "bankbridge.balance.v1.BalanceService"})
	if err != nil {
		t.Fatal(err)
	}
	first, err := watch.Recv()
	if err != nil || first.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first status = %v, %v; want SERVING", first.GetStatus(), err)
	}
	if code := testkit.GetStatus(t, "http://"+e.srv.AdminAddr()+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d before drain, want 200", code)
	}

	e.stop() // what SIGTERM does through signal.NotifyContext
	next, err := watch.Recv()
	if err != nil || next.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("status after drain began = %v, %v; want NOT_SERVING", next.GetStatus(), err)
	}
	// Still answering during the drain delay, but not ready.
	if code := testkit.GetStatus(t, "http://"+e.srv.AdminAddr()+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d while draining, want 503", code)
	}
	select {
	case err := <-e.done:
		if err != nil {
			t.Fatalf("Serve returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server did not stop after drain")
	}
	e.done <- nil // for the cleanup
}

// An open stream does not hold the stop for the whole grace period and get
// cut: it ends with UNAVAILABLE (SERVER_STOPPING) as the graceful stop
// begins, so its client reopens it at once on another replica.
func TestOpenStreamsEndWhenTheServerStops(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{drainDelay: 100 * time.Millisecond})
	stream, err := e.shipping.WatchShipments(e.asFor(t, "alice", "ORDER_TRACKING"), &shippingv1.WatchShipmentsRequest{Parent: "users/alice", ResumeCursor: "hold"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	e.stop()
	_, err = stream.Recv()
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_SERVER_STOPPING)
	if err := <-e.done; err != nil {
		t.Fatalf("Serve returned %v", err)
	}
	e.done <- nil // for the cleanup
	if strings.Contains(e.logs.String(), "grace period over") {
		t.Error("the stream held the stop until the grace period was over")
	}
}
