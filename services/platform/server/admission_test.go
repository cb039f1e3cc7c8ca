package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/bankbridge/bankbridge/gen/apierr"
	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/gen/descriptor"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// blockingBalance holds every GetBalance until its caller gives up or
// release is closed; entered receives one value per call that reached it.
type blockingBalance struct {
	balancev1.UnimplementedBalanceServiceServer
	entered chan struct{}
	release chan struct{}
}

func (b *blockingBalance) GetBalance(ctx context.Context, _ *balancev1.GetBalanceRequest) (*balancev1.GetBalanceResponse, error) {
	b.entered <- struct{}{}
	select {
	case <-b.release:
		return &balancev1.GetBalanceResponse{}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// openShipping sends one message on every WatchShipments, then stays open
// until its caller leaves.
type openShipping struct {
	shippingv1.UnimplementedShippingServiceServer
}

func (openShipping) WatchShipments(_ *shippingv1.WatchShipmentsRequest, stream grpc.ServerStreamingServer[shippingv1.WatchShipmentsResponse]) error {
	if err := stream.Send(&shippingv1.WatchShipmentsResponse{}); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

const maxInflight = 2

func startAdmission(t *testing.T) (*servertest.Server, *blockingBalance) {
	t.Helper()
	hooks := &recorder{}
	balance := &blockingBalance{entered: make(chan struct{}, 16), release: make(chan struct{})}
	s := servertest.Start(t, server.Deps{Consent: hooks, Recorder: hooks}, func(r grpc.ServiceRegistrar) {
		balancev1.RegisterBalanceServiceServer(r, balance)
		shippingv1.RegisterShippingServiceServer(r, openShipping{})
	}, servertest.Options{Name: "admission", Config: func(c *server.Config) { c.MaxInflight = maxInflight }})
	return s, balance
}

func userCtx(t *testing.T, s *servertest.Server, purpose string) context.Context {
	t.Helper()
	tok, err := s.Issuer.Mint("alice", testClient, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return withPurpose(withToken(context.Background(), tok), purpose)
}

// callBalance starts a GetBalance; its result arrives on the channel.
func callBalance(ctx context.Context, s *servertest.Server) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := balancev1.NewBalanceServiceClient(s.Conn).GetBalance(ctx, aliceBalance)
		done <- err
	}()
	return done
}

func requireOverloaded(t *testing.T, err error) {
	t.Helper()
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("code = %v (%v), want UNAVAILABLE", status.Code(err), err)
	}
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_OVERLOADED)
	if apierr.RetryDelay(err) <= 0 {
		t.Error("OVERLOADED without a retry hint")
	}
}

func TestAdmissionRefusesTheExcessAtOnce(t *testing.T) {
	t.Parallel()
	s, balance := startAdmission(t)
	ctx := userCtx(t, s, "ACCOUNT_INFORMATION")
	first, cancelFirst := context.WithCancel(ctx)
	defer cancelFirst()
	firstDone := callBalance(first, s)
	secondDone := callBalance(ctx, s)
	for range maxInflight {
		<-balance.entered
	}

	// Over the bound: refused without waiting for a slot (the call's own
	// deadline is far off), and the handler never sees it.
	over, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err := balancev1.NewBalanceServiceClient(s.Conn).GetBalance(over, aliceBalance)
	requireOverloaded(t, err)
	select {
	case <-balance.entered:
		t.Fatal("the refused call reached the handler")
	default:
	}

	// A probe is never refused.
	if _, err := healthpb.NewHealthClient(s.Conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("health check at the bound: %v", err)
	}

	// A caller that gives up frees its slot.
	cancelFirst()
	<-firstDone
	// The server frees it as the handler returns, just after the caller
	// heard: until then a new call is still refused.
	var third <-chan error
	testkit.Eventually(t, func() bool {
		third = callBalance(ctx, s)
		select {
		case <-balance.entered:
			return true
		case err := <-third:
			requireOverloaded(t, err)
			return false
		}
	}, 5*time.Second)

	// Calls that complete free theirs.
	close(balance.release)
	for _, done := range []<-chan error{secondDone, third} {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	for range maxInflight + 1 {
		if err := <-callBalance(ctx, s); err != nil {
			t.Fatalf("a call after the others completed: %v", err)
		}
	}

	resp, err := http.Get("http://" + s.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !regexp.MustCompile(`bankbridge_server_overload_refusals_total\{[^}]*bankbridge_internal_budget="false"[^}]*\} [1-9]`).Match(body) {
		t.Errorf("refusals not counted in /metrics:\n%s", body)
	}
}

// TestAnOpenStreamHoldsNoAdmissionSlot: streams count while they open,
// then give their slot back, or a few watchers would refuse every call.
func TestAnOpenStreamHoldsNoAdmissionSlot(t *testing.T) {
	t.Parallel()
	s, balance := startAdmission(t)
	close(balance.release)
	ctx, cancel := context.WithCancel(userCtx(t, s, "ORDER_TRACKING"))
	defer cancel()
	for range 2 * maxInflight {
		stream, err := shippingv1.NewShippingServiceClient(s.Conn).WatchShipments(ctx, &shippingv1.WatchShipmentsRequest{Parent: "users/alice"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err != nil {
			t.Fatalf("opening a stream while %d are open: %v", maxInflight, err)
		}
	}
	if _, err := balancev1.NewBalanceServiceClient(s.Conn).GetBalance(userCtx(t, s, "ACCOUNT_INFORMATION"), aliceBalance); err != nil {
		t.Fatalf("a call while %d streams are open: %v", 2*maxInflight, err)
	}
}

var overloaded = regexp.MustCompile(`UNAVAILABLE \(OVERLOADED\)`)

// overloadedProblems lists the services the kit serves (every audience but
// the adapter protocol, which banks serve) whose comment does not promise
// OVERLOADED, and the adapter services whose comment does.
func overloadedProblems(methods []protoreflect.MethodDescriptor) []string {
	var problems []string
	seen := map[protoreflect.FullName]bool{}
	for _, m := range methods {
		s := m.Parent().(protoreflect.ServiceDescriptor)
		if seen[s.FullName()] {
			continue
		}
		seen[s.FullName()] = true
		kit := proto.GetExtension(s.Options(), commonv1.E_Audience).(commonv1.Audience) != commonv1.Audience_AUDIENCE_ADAPTER
		switch promised := overloaded.MatchString(leadingComment(s)); {
		case kit && !promised:
			problems = append(problems, fmt.Sprintf("%s: the kit refuses its calls with UNAVAILABLE (OVERLOADED) past --max-inflight, but its comment does not say so", s.FullName()))
		case !kit && promised:
			problems = append(problems, fmt.Sprintf("%s: its comment promises UNAVAILABLE (OVERLOADED), but the kit does not serve it", s.FullName()))
		}
	}
	return problems
}

func TestEveryKitServicePromisesOverloaded(t *testing.T) {
	t.Parallel()
	fds, err := descriptor.Set()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range overloadedProblems(contractMethods(t, fds)) {
		t.Error(p)
	}
	t.Run("notices", func(t *testing.T) {
		fds, err := descriptor.Set()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fds.GetFile() {
			for _, loc := range f.GetSourceCodeInfo().GetLocation() {
				loc.LeadingComments = proto.String(overloaded.ReplaceAllString(loc.GetLeadingComments(), "UNAVAILABLE (AUDIT_UNAVAILABLE)"))
			}
		}
		if problems := overloadedProblems(contractMethods(t, fds)); !mentions(problems, "BalanceService: the kit refuses") {
			t.Errorf("problems = %q", problems)
		}
	})
}

// congestedBalance answers GetBalance as a balance whose consent service
// is slow or down would: CONSENT_UNAVAILABLE, after wait; while hold is
// set it holds the call instead until release is closed, as blockingBalance.
type congestedBalance struct {
	balancev1.UnimplementedBalanceServiceServer
	wait    atomic.Int64 // nanoseconds
	hold    atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (b *congestedBalance) GetBalance(ctx context.Context, _ *balancev1.GetBalanceRequest) (*balancev1.GetBalanceResponse, error) {
	if b.hold.Load() {
		b.entered <- struct{}{}
		select {
		case <-b.release:
			return &balancev1.GetBalanceResponse{}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	time.Sleep(time.Duration(b.wait.Load()))
	return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_CONSENT_UNAVAILABLE, "test: consent did not answer", apierr.WithRetryAfter(time.Second))
}

// TestAdmissionShrinksWhenItsDependenciesTimeOut: a call that waited long
// and then failed on the consent service cuts the admission limit (by a
// quarter), so the calls past the new limit are refused at once instead
// of joining the queue at consent; a fast failure (consent down, not
// slow) cuts nothing.
func TestAdmissionShrinksWhenItsDependenciesTimeOut(t *testing.T) {
	t.Parallel()
	const ceiling = 16
	tests := []struct {
		name      string
		wait      time.Duration
		wantLimit int
	}{
		{"slow failure: cut to 3/4", 300 * time.Millisecond, ceiling * 3 / 4},
		{"fast failure: no cut", 0, ceiling},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hooks := &recorder{}
			balance := &congestedBalance{entered: make(chan struct{}, ceiling+1), release: make(chan struct{})}
			balance.wait.Store(int64(tt.wait))
			s := servertest.Start(t, server.Deps{Consent: hooks, Recorder: hooks}, func(r grpc.ServiceRegistrar) {
				balancev1.RegisterBalanceServiceServer(r, balance)
			}, servertest.Options{Name: "adaptive", Config: func(c *server.Config) { c.MaxInflight = ceiling }})
			ctx, cancel := context.WithCancel(userCtx(t, s, "ACCOUNT_INFORMATION"))
			defer cancel()
			if err := <-callBalance(ctx, s); apierr.Reason(err) != commonv1.ErrorReason_ERROR_REASON_CONSENT_UNAVAILABLE {
				t.Fatalf("first call: %v, want CONSENT_UNAVAILABLE", err)
			}

			balance.hold.Store(true)
			var held []<-chan error
			for range tt.wantLimit {
				held = append(held, callBalance(ctx, s))
				select {
				case <-balance.entered:
				case err := <-held[len(held)-1]:
					t.Fatalf("call %d of a limit of %d: %v", len(held), tt.wantLimit, err)
				}
			}
			if tt.wantLimit < ceiling {
				// Admitted, it would be held until the deadline.
				over, cancelOver := context.WithTimeout(ctx, 5*time.Second)
				defer cancelOver()
				_, err := balancev1.NewBalanceServiceClient(s.Conn).GetBalance(over, aliceBalance)
				requireOverloaded(t, err)
			}
			close(balance.release)
			for _, done := range held {
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
