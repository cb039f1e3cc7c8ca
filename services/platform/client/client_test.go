package client_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	"github.com/bankbridge/bankbridge/services/platform/client"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// flaky answers UNAVAILABLE to the first call of each method, and records
// whether calls arrived with a deadline.
type flaky struct {
	balancev1.UnimplementedBalanceServiceServer
	balanceCalls, accountCalls atomic.Int32
	sawDeadline                atomic.Bool
}

func (f *flaky) GetBalance(ctx context.Context, _ *balancev1.GetBalanceRequest) (*balancev1.GetBalanceResponse, error) {
	_, ok := ctx.Deadline()
	f.sawDeadline.Store(ok)
	if f.balanceCalls.Add(1) == 1 {
		return nil, status.Error(codes.Unavailable, "try again")
	}
	return &balancev1.GetBalanceResponse{Balance: &balancev1.AccountBalance{AsOf: timestamppb.Now()}}, nil
}

func (f *flaky) GetAccount(context.Context, *balancev1.GetAccountRequest) (*balancev1.GetAccountResponse, error) {
	if f.accountCalls.Add(1) == 1 {
		return nil, status.Error(codes.Unavailable, "try again")
	}
	return &balancev1.GetAccountResponse{}, nil
}

func start(t *testing.T) (*flaky, balancev1.BalanceServiceClient) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &flaky{}
	s := grpc.NewServer()
	balancev1.RegisterBalanceServiceServer(s, f)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "client-test"})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := client.Dial(lis.Addr().String(), tel, client.Options{
		DefaultTimeout: 2 * time.Second,
		RetryMethods:   []string{balancev1.BalanceService_GetBalance_FullMethodName},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return f, balancev1.NewBalanceServiceClient(conn)
}

func TestReadsListedAsSafeAreRetried(t *testing.T) {
	t.Parallel()
	f, c := start(t)
	if _, err := c.GetBalance(context.Background(), &balancev1.GetBalanceRequest{}); err != nil {
		t.Fatalf("GetBalance after one UNAVAILABLE: %v", err)
	}
	if n := f.balanceCalls.Load(); n != 2 {
		t.Errorf("server saw %d calls, want 2 (one retry)", n)
	}
	if !f.sawDeadline.Load() {
		t.Error("a call without a deadline reached the server without the default one")
	}
}

func TestOtherMethodsAreNotRetried(t *testing.T) {
	t.Parallel()
	f, c := start(t)
	_, err := c.GetAccount(context.Background(), &balancev1.GetAccountRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("code = %v, want UNAVAILABLE passed through", status.Code(err))
	}
	if n := f.accountCalls.Load(); n != 1 {
		t.Errorf("server saw %d calls, want 1", n)
	}
}

func TestDialRejectsBadRetryConfig(t *testing.T) {
	t.Parallel()
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "client-test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []client.Options{
		{RetryMethods: []string{"GetBalance"}},
		{MaxAttempts: 9},
	} {
		if _, err := client.Dial("127.0.0.1:1", tel, o); err == nil {
			t.Errorf("Dial accepted %+v", o)
		}
	}
}
