package server_test

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/server"
)

// TestShutdownStopsHardAfterGrace: a call that outlives the grace period
// is cut, and Serve returns soon after drain + grace.
func TestShutdownStopsHardAfterGrace(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done() // never finishes on its own
	}), ReadHeaderTimeout: time.Second}
	notServing := make(chan struct{})
	sd := server.Shutdown{DrainDelay: 200 * time.Millisecond, Grace: 300 * time.Millisecond, NotServing: func() { close(notServing) }}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sd.Serve(ctx, []server.Endpoint{server.HTTPEndpoint("HTTP", srv, lis)}, nil) }()

	callErr := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + lis.Addr().String() + "/")
		if err == nil {
			resp.Body.Close()
		}
		callErr <- err
	}()
	<-entered
	start := time.Now()
	stop()
	<-notServing
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not return after the grace period")
	}
	if took := time.Since(start); took < 500*time.Millisecond || took > 1500*time.Millisecond {
		t.Errorf("Serve returned %s after the signal, want about drain + grace (500ms)", took)
	}
	if err := <-callErr; err == nil {
		t.Error("the call that outlived the grace period was not cut")
	}
}
