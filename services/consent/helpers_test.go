package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"testing"

	"google.golang.org/grpc"

	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
)

func randomKey(t testing.TB) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// watch opens a change stream as the balance service would, ended with
// the test, and waits until it is live (its first, empty message).
func (e *env) watch(t *testing.T) grpc.ServerStreamingClient[consentv1.WatchConsentChangesResponse] {
	t.Helper()
	ctx, cancel := context.WithCancel(e.asService(t))
	t.Cleanup(cancel)
	stream, err := e.check.WatchConsentChanges(ctx, &consentv1.WatchConsentChangesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if hello, err := stream.Recv(); err != nil || hello.GetUser() != "" {
		t.Fatalf("first message %v, %v: want the empty live marker", hello, err)
	}
	return stream
}
