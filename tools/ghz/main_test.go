package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// TestEachCallIsItsUsers: with --users, every call carries the request
// and the token of the same line, and the calls reach every user; a call
// whose token is another user's is refused by the server, and counted as
// an error.
func TestEachCallIsItsUsers(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		user := req.(*grpc_health_v1.HealthCheckRequest).GetService()
		md, _ := metadata.FromIncomingContext(ctx)
		if got := md.Get("authorization"); len(got) != 1 || got[0] != "Bearer token-of-"+user || md.Get("bankbridge-purpose")[0] != "TESTING" {
			return nil, status.Error(codes.PermissionDenied, "not this user's token")
		}
		mu.Lock()
		seen[user]++
		mu.Unlock()
		return &grpc_health_v1.HealthCheckResponse{Status: grpc_health_v1.HealthCheckResponse_SERVING}, nil
	}))
	grpc_health_v1.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	users := filepath.Join(t.TempDir(), "users.tsv")
	var lines bytes.Buffer
	for i := range 5 {
		fmt.Fprintf(&lines, "u%d\ttoken-of-u%d\t{\"service\":\"u%d\"}\n", i, i, i)
	}
	if err := os.WriteFile(users, lines.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run([]string{"--host", lis.Addr().String(), "--users", users, "--purpose", "TESTING",
		"--concurrency", "4", "--connections", "2", "--duration", "500ms"}, &out); err != nil {
		t.Fatal(err)
	}
	var res Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if res.Errors != 0 || res.Calls == 0 {
		t.Errorf("%d calls, %d errors (%v); want calls and no error", res.Calls, res.Errors, res.ByCode)
	}
	for i := range 5 {
		if seen[fmt.Sprintf("u%d", i)] == 0 {
			t.Errorf("no call for u%d: %v", i, seen)
		}
	}
}
