package runtime_test

import (
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/internal/adaptertest"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
)

// TestServerLogsEachCallWithTheCallersTraceID: an adapter served by the
// SDK writes one line per call with the trace id of the traceparent
// bankbridge sent, the outcome and the duration; a failure at WARN.
func TestServerLogsEachCallWithTheCallersTraceID(t *testing.T) {
	t.Parallel()
	a := newFaultBank()
	a.fail = func(n int) bool { return n == 1 }
	var logs adaptertest.SyncBuffer
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	adapterv1.RegisterBankAdapterServiceServer(srv, adapters.NewServer(a, adapters.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil)))))
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	c := adapterv1.NewBankAdapterServiceClient(conn)

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	ctx := metadata.AppendToOutgoingContext(t.Context(), "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	_ = listAccounts(ctx, c)
	_ = listAccounts(ctx, c)

	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var l map[string]any
		if err := json.Unmarshal([]byte(line), &l); err == nil && l["msg"] == "bank call" {
			lines = append(lines, l)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("%d per-call lines, want 2:\n%s", len(lines), logs.String())
	}
	for i, want := range []struct{ level, outcome string }{{"INFO", "ok"}, {"WARN", "BANK_UNAVAILABLE"}} {
		l := lines[i]
		if l["trace_id"] != traceID || l["level"] != want.level || l["outcome"] != want.outcome ||
			l["method"] != "ListAccounts" || l["duration_ms"] == nil {
			t.Errorf("call %d logged %v; want trace id %s, %s, outcome %s", i, l, traceID, want.level, want.outcome)
		}
	}
}
