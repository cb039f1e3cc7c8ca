package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

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
