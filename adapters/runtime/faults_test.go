package runtime_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/internal/adaptertest"
	"github.com/bankbridge/bankbridge/adapters/runtime"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// faultBank is an adapter whose faults a test sets: which calls fail
// BANK_UNAVAILABLE, how long ListAccounts takes, and whether it blocks. It
// counts the calls that reach it, per method. Its writes (the SCA calls)
// always fail BANK_UNAVAILABLE: a test only counts them.
type faultBank struct {
	// fail says whether ListAccounts call n (from 0) fails.
	fail func(n int) bool
	// delay is how long ListAccounts takes before it answers.
	delay time.Duration
	// block, when set, holds every ListAccounts until it is closed or the
	// call ends.
	block chan struct{}
	// failConsent is a consent whose ListAccounts calls all fail, as a
	// customer whose bank-side records are broken.
	failConsent string
	// started gets one value per ListAccounts that reached the bank.
	started chan struct{}

	mu    sync.Mutex
	calls map[string]int
}

func newFaultBank() *faultBank {
	return &faultBank{calls: map[string]int{}, started: make(chan struct{}, 1000)}
}

// count records a call of method and returns its number, from 0.
func (b *faultBank) count(method string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.calls[method]
	b.calls[method]++
	return n
}

// callsOf returns how many calls of method reached the bank.
func (b *faultBank) callsOf(method string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[method]
}

func (b *faultBank) Info(context.Context) (*adapterv1.GetAdapterInfoResponse, error) {
	return &adapterv1.GetAdapterInfoResponse{BankId: "test", DisplayName: "Test Bank", ProtocolVersion: adapters.ProtocolVersion,
		Capabilities: adapters.Capabilities(b), ScaMethods: []adapterv1.ScaMethod{adapterv1.ScaMethod_SCA_METHOD_OTP}}, nil
}

func (b *faultBank) CheckHealth(context.Context, *adapterv1.CheckHealthRequest) (*adapterv1.CheckHealthResponse, error) {
	return &adapterv1.CheckHealthResponse{Status: adapterv1.HealthStatus_HEALTH_STATUS_SERVING}, nil
}

func bankDown() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, "bank down", apierr.WithRetryAfter(time.Second))
}

func (b *faultBank) ListAccounts(ctx context.Context, req *adapterv1.ListAccountsRequest) (*adapterv1.ListAccountsResponse, error) {
	n := b.count("ListAccounts")
	b.started <- struct{}{}
	if b.block != nil {
		select {
		case <-b.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if b.delay > 0 {
		time.Sleep(b.delay)
	}
	if (b.fail != nil && b.fail(n)) || (b.failConsent != "" && req.GetBankConsentId() == b.failConsent) {
		return nil, bankDown()
	}
	return &adapterv1.ListAccountsResponse{Accounts: []*adapterv1.Account{{
		BankAccountId: "acc-1", DisplayName: "Everyday account", Type: adapterv1.AccountType_ACCOUNT_TYPE_CURRENT, CurrencyCode: "EUR",
		MaskedNumber: &commonv1.MaskedAccountNumber{Last4: "4821", Display: "•••• 4821"},
	}}}, nil
}

func (b *faultBank) GetBalances(context.Context, *adapterv1.GetBalancesRequest) (*adapterv1.GetBalancesResponse, error) {
	b.count("GetBalances")
	return nil, bankDown()
}

func (b *faultBank) StartSca(context.Context, *adapterv1.StartScaRequest) (*adapterv1.StartScaResponse, error) {
	b.count("StartSca")
	return nil, bankDown()
}

func (b *faultBank) VerifySca(context.Context, *adapterv1.VerifyScaRequest) (*adapterv1.VerifyScaResponse, error) {
	b.count("VerifySca")
	return nil, bankDown()
}

func (b *faultBank) RevokeConsent(context.Context, *adapterv1.RevokeConsentRequest) (*adapterv1.RevokeConsentResponse, error) {
	b.count("RevokeConsent")
	return nil, bankDown()
}

func listAccounts(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
	_, err := c.ListAccounts(ctx, &adapterv1.ListAccountsRequest{BankConsentId: "consent-1"})
	return err
}

// remoteBank serves a on 127.0.0.1:0 with the SDK's keepalive policy, as
// an integrator's Go server would, optionally behind a proxy, and returns
// the registry's client of it.
func remoteBank(t *testing.T, a adapters.Adapter, bank runtime.Bank, wrap func(addr string) string) adapterv1.BankAdapterServiceClient {
	t.Helper()
	addr := adaptertest.ServeWith(t, a, []grpc.ServerOption{adapters.KeepaliveServerOption()}, adapters.WithAPIKeys(func() []string { return []string{adaptertest.TestAPIKey} }))
	if wrap != nil {
		addr = wrap(addr)
	}
	bank.Kind, bank.Endpoint = runtime.KindRemote, addr
	return adaptertest.Client(t, adaptertest.NewRegistry(t, []runtime.Bank{bank}, runtime.WithCredentials(adaptertest.NewCredentials(map[string]string{"api_key": adaptertest.TestAPIKey}))), bank.ID)
}

// tcpProxy forwards TCP connections to a target, and can turn the
// connections it holds into a blackhole: it stops forwarding either way
// without closing anything, as a NAT or firewall that forgot a flow does.
// New connections are forwarded. It counts the connections it accepted
// and the HTTP/2 PING frames clients sent (not their acks).
type tcpProxy struct {
	lis    net.Listener
	target string
	pings  atomic.Int64

	mu       sync.Mutex
	accepted int
	holes    []*atomic.Bool
	conns    []net.Conn
}

func newProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{lis: lis, target: target}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *tcpProxy) addr() string { return p.lis.Addr().String() }

func (p *tcpProxy) serve() {
	for {
		down, err := p.lis.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			down.Close()
			continue
		}
		hole := new(atomic.Bool)
		p.mu.Lock()
		p.accepted++
		p.holes = append(p.holes, hole)
		p.conns = append(p.conns, down, up)
		p.mu.Unlock()
		go p.pipe(up, down, hole, true)
		go p.pipe(down, up, hole, false)
	}
}

// pipe copies src to dst until either ends, dropping what it reads once
// hole is set; fromClient counts the client's PING frames.
func (p *tcpProxy) pipe(dst, src net.Conn, hole *atomic.Bool, fromClient bool) {
	defer dst.Close()
	defer src.Close()
	var frames frameCounter
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if fromClient {
				p.pings.Add(int64(frames.pings(buf[:n])))
			}
			if !hole.Load() {
				if _, err := dst.Write(buf[:n]); err != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// blackhole stops forwarding on every connection accepted so far.
func (p *tcpProxy) blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, h := range p.holes {
		h.Store(true)
	}
}

func (p *tcpProxy) connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

func (p *tcpProxy) close() {
	p.lis.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// frameCounter reads the client side of an HTTP/2 connection: the
// 24-byte preface, then frames of a 9-byte header and a payload.
type frameCounter struct {
	preface int
	header  []byte
	skip    int
}

// pings returns how many PING frames (not acks) b completes.
func (f *frameCounter) pings(b []byte) int {
	const prefaceLen, headerLen, typePing, flagAck = 24, 9, 0x6, 0x1
	n := 0
	for len(b) > 0 {
		switch {
		case f.preface < prefaceLen:
			k := min(prefaceLen-f.preface, len(b))
			f.preface += k
			b = b[k:]
		case f.skip > 0:
			k := min(f.skip, len(b))
			f.skip -= k
			b = b[k:]
		default:
			k := min(headerLen-len(f.header), len(b))
			f.header = append(f.header, b[:k]...)
			b = b[k:]
			if len(f.header) == headerLen {
				if f.header[3] == typePing && f.header[4]&flagAck == 0 {
					n++
				}
				f.skip = int(f.header[0])<<16 | int(f.header[1])<<8 | int(f.header[2])
				f.header = f.header[:0]
			}
		}
	}
	return n
}

func TestKeepaliveFindsABlackholedConnection(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for gRPC's shortest keepalive time, 10s")
	}
	t.Parallel()
	const pingTimeout = time.Second
	tests := []struct {
		name       string
		retry      runtime.Retry
		wantAnswer bool
	}{
		// The read in flight when the ping goes unanswered is sent again
		// on a new connection, within its deadline.
		{name: "the read in flight is retried on a new connection", wantAnswer: true},
		{name: "without the retry it fails fast, the next call reconnects", retry: runtime.Retry{Disabled: true}},
	}
	// The cases wait side by side in the parent's one parallel slot.
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, tt := range tests {
		wg.Go(func() {
			t.Run(tt.name, func(t *testing.T) {
				var proxy *tcpProxy
				bank := runtime.Bank{ID: "test", DisplayName: "Test Bank",
					Timeout:   30 * time.Second, // a hang would last this long
					Keepalive: runtime.Keepalive{Time: adapters.MinKeepaliveTime, Timeout: pingTimeout},
					Retry:     tt.retry}
				c := remoteBank(t, newFaultBank(), bank, func(addr string) string { proxy = newProxy(t, addr); return proxy.addr() })
				if err := listAccounts(t.Context(), c); err != nil {
					t.Fatal(err)
				}

				proxy.blackhole()
				start := time.Now()
				err := listAccounts(t.Context(), c)
				took := time.Since(start)
				// The last read was the answer above: a ping goes keepalive.time
				// after it, and its missing ack closes the connection.
				if limit := adapters.MinKeepaliveTime + pingTimeout + 3*time.Second; took > limit {
					t.Errorf("the call on the blackholed connection took %s, want under %s (keepalive), not the 30s timeout", took.Round(time.Millisecond), limit)
				}
				if tt.wantAnswer {
					if err != nil {
						t.Fatalf("want the answer over a new connection, got %v", err)
					}
				} else {
					adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE)
					if retryDelay(err) <= 0 {
						t.Error("BANK_UNAVAILABLE without RetryInfo")
					}
					if err := listAccounts(t.Context(), c); err != nil {
						t.Fatalf("the next call: %v", err)
					}
				}
				if n := proxy.connections(); n != 2 {
					t.Errorf("the proxy saw %d connections, want 2: the dead one and its replacement", n)
				}
				t.Logf("call on the blackholed connection: %s", took.Round(time.Millisecond))
			})
		})
	}
}

func TestKeepalivePingsDoNotGetTheClientKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("holds a call for 45s, long enough for four pings")
	}
	t.Parallel()
	// A server with gRPC's default policy (one ping per 5 minutes) closes
	// the connection at the third ping too early, the fourth in all: the
	// call it carries fails. The SDK's policy lets the pings through.
	const hold = 45 * time.Second
	tests := []struct {
		name       string
		serverOpts []grpc.ServerOption
		wantOK     bool
	}{
		{name: "KeepaliveServerOption", serverOpts: []grpc.ServerOption{adapters.KeepaliveServerOption()}, wantOK: true},
		{name: "gRPC's default policy", wantOK: false},
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, tt := range tests {
		wg.Go(func() {
			t.Run(tt.name, func(t *testing.T) {
				a := newFaultBank()
				a.delay = hold
				addr := adaptertest.ServeWith(t, a, tt.serverOpts, adapters.WithAPIKeys(func() []string { return []string{adaptertest.TestAPIKey} }))
				proxy := newProxy(t, addr)
				bank := runtime.Bank{ID: "test", DisplayName: "Test Bank", Kind: runtime.KindRemote, Endpoint: proxy.addr(),
					Timeout: time.Minute, Retry: runtime.Retry{Disabled: true}}
				c := adaptertest.Client(t, adaptertest.NewRegistry(t, []runtime.Bank{bank}, runtime.WithCredentials(adaptertest.NewCredentials(map[string]string{"api_key": adaptertest.TestAPIKey}))), "test")

				start := time.Now()
				err := listAccounts(t.Context(), c)
				pings := proxy.pings.Load()
				t.Logf("%s: %d pings in %s, %v", tt.name, pings, time.Since(start).Round(time.Millisecond), err)
				if !tt.wantOK {
					// The control: what KeepaliveServerOption spares callers.
					adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE)
					return
				}
				if err != nil {
					t.Fatalf("the call was killed under the pings: %v", err)
				}
				if pings < 4 {
					t.Errorf("%d pings during the call, want at least 4 (one per keepalive.time)", pings)
				}
				if n := proxy.connections(); n != 1 {
					t.Errorf("%d connections, want 1: the pinged one was closed", n)
				}
			})
		})
	}
}

func TestRetryOfSafeReads(t *testing.T) {
	t.Parallel()
	sca := &adapterv1.StartScaRequest{
		UserReference: "user-1", LoginHint: "alice",
		Scopes:     []commonv1.Scope{commonv1.Scope_SCOPE_ACCOUNTS},
		ValidUntil: timestamppb.New(time.Now().Add(time.Hour)), IdempotencyKey: "link-0001",
	}
	tests := []struct {
		name string
		// fail says which ListAccounts calls fail BANK_UNAVAILABLE.
		fail  func(n int) bool
		delay time.Duration
		retry runtime.Retry
		// budget is the caller's deadline; 0 is none (the bank's 5s).
		budget    time.Duration
		call      func(context.Context, adapterv1.BankAdapterServiceClient) error
		method    string
		wantCalls int
		wantErr   bool
	}{
		{name: "a read that fails once is answered", fail: func(n int) bool { return n == 0 },
			call: listAccounts, method: "ListAccounts", wantCalls: 2},
		{name: "a read is retried once only", fail: func(int) bool { return true },
			call: listAccounts, method: "ListAccounts", wantCalls: 2, wantErr: true},
		{name: "a read is not retried when its deadline is nearly spent", fail: func(int) bool { return true },
			delay: 150 * time.Millisecond, budget: 250 * time.Millisecond,
			call: listAccounts, method: "ListAccounts", wantCalls: 1, wantErr: true},
		{name: "a read is retried when its deadline leaves room", fail: func(n int) bool { return n == 0 },
			delay: 50 * time.Millisecond, budget: time.Second,
			call: listAccounts, method: "ListAccounts", wantCalls: 2},
		{name: "no retry when disabled", fail: func(int) bool { return true }, retry: runtime.Retry{Disabled: true},
			call: listAccounts, method: "ListAccounts", wantCalls: 1, wantErr: true},
		{name: "StartSca is a write: never retried",
			call: func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
				_, err := c.StartSca(ctx, sca)
				return err
			}, method: "StartSca", wantCalls: 1, wantErr: true},
		{name: "VerifySca is a write: never retried",
			call: func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
				_, err := c.VerifySca(ctx, &adapterv1.VerifyScaRequest{BankConsentId: "consent-1", Code: "123456", IdempotencyKey: "verify-0001"})
				return err
			}, method: "VerifySca", wantCalls: 1, wantErr: true},
		{name: "GetBalances is a read",
			call: func(ctx context.Context, c adapterv1.BankAdapterServiceClient) error {
				_, err := c.GetBalances(ctx, &adapterv1.GetBalancesRequest{BankConsentId: "consent-1", BankAccountId: "acc-1"})
				return err
			}, method: "GetBalances", wantCalls: 2, wantErr: true},
	}
	for _, tt := range tests {
		for _, tr := range []string{"in-process", "remote"} {
			t.Run(tt.name+"/"+tr, func(t *testing.T) {
				t.Parallel()
				a := newFaultBank()
				a.fail, a.delay = tt.fail, tt.delay
				bank := runtime.Bank{ID: "test", DisplayName: "Test Bank", Retry: tt.retry, Breaker: runtime.Breaker{MinRequests: 1000}}
				var c adapterv1.BankAdapterServiceClient
				if tr == "remote" {
					c = remoteBank(t, a, bank, nil)
				} else {
					bank.Kind, bank.InProcess = runtime.KindInProcess, "fault"
					c = adaptertest.Client(t, adaptertest.NewRegistry(t, []runtime.Bank{bank}, runtime.WithInProcess("fault", a)), bank.ID)
				}
				ctx := t.Context()
				if tt.budget > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.budget)
					defer cancel()
				}
				err := tt.call(ctx, c)
				if tt.wantErr {
					adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE)
				} else if err != nil {
					t.Fatalf("want the answer, got %v", err)
				}
				if got := a.callsOf(tt.method); got != tt.wantCalls {
					t.Errorf("the bank got %d %s calls, want %d", got, tt.method, tt.wantCalls)
				}
			})
		}
	}
}

func TestRetryOfATransportFailure(t *testing.T) {
	t.Parallel()
	// The first connection is reset under the call: the read goes again
	// on a new one.
	a := newFaultBank()
	a.block = make(chan struct{})
	var proxy *tcpProxy
	c := remoteBank(t, a, runtime.Bank{ID: "test", DisplayName: "Test Bank"}, func(addr string) string { proxy = newProxy(t, addr); return proxy.addr() })
	go func() {
		<-a.started
		proxy.mu.Lock()
		for _, conn := range proxy.conns {
			conn.Close()
		}
		proxy.mu.Unlock()
		close(a.block)
	}()
	if err := listAccounts(t.Context(), c); err != nil {
		t.Fatalf("want the answer over a new connection, got %v", err)
	}
	if got := a.callsOf("ListAccounts"); got != 2 {
		t.Errorf("the bank got %d calls, want 2", got)
	}
}

// patterned fails the calls whose place in each run of size is below
// failing: failures come in a row, as a bank's do.
func patterned(failing, size int) func(int) bool {
	return func(n int) bool { return n%size < failing }
}

func TestBreakerTripsOnFailureRatio(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		fail     func(int) bool
		wantOpen bool
	}{
		// Six failures in a row would have opened a breaker counting
		// failures in a row (five); the ratio over the window does not.
		{name: "30% failing, in runs of 6: never opens", fail: patterned(6, 20)},
		{name: "50% failing, in runs of 10: never opens with the default ratio", fail: patterned(10, 20)},
		{name: "60% failing: opens", fail: patterned(6, 10), wantOpen: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newFaultBank()
			a.fail = tt.fail
			reader := newMetricReader()
			// The defaults, but no retry: each call is one of the bank's.
			bank := runtime.Bank{ID: "test", DisplayName: "Test Bank", Kind: runtime.KindInProcess, InProcess: "fault",
				Retry: runtime.Retry{Disabled: true}, RateLimit: runtime.RateLimit{PerSecond: 10_000, Burst: 10_000}}
			c := adaptertest.Client(t, adaptertest.NewRegistry(t, []runtime.Bank{bank}, runtime.WithInProcess("fault", a), reader.option()), "test")

			var open error
			answered := 0
			for i := range 200 {
				err := listAccounts(t.Context(), c)
				if err == nil {
					answered++
					continue
				}
				adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE)
				if strings.Contains(status.Convert(err).Message(), "circuit breaker open") {
					open = err
					if i < runtime.DefaultMinRequests-1 {
						t.Errorf("opened at call %d, before min_requests (%d)", i, runtime.DefaultMinRequests)
					}
					break
				}
			}
			if !tt.wantOpen {
				if open != nil {
					t.Fatalf("the breaker opened: %v", open)
				}
				if got := a.callsOf("ListAccounts"); got != 200 {
					t.Errorf("the bank got %d calls, want all 200", got)
				}
				if got := reader.gauge(t, "bankbridge.adapter.breaker_state"); got != 0 {
					t.Errorf("breaker_state = %d, want 0 (closed)", got)
				}
				return
			}
			if open == nil {
				t.Fatalf("the breaker never opened over 200 calls (%d answered)", answered)
			}
			if d := retryDelay(open); d <= 0 || d > runtime.DefaultOpenFor {
				t.Errorf("RetryInfo %s, want the time left open, (0, %s]", d, runtime.DefaultOpenFor)
			}
			before := a.callsOf("ListAccounts")
			if err := listAccounts(t.Context(), c); !strings.Contains(fmt.Sprint(err), "circuit breaker open") {
				t.Errorf("the next call: %v, want the open breaker's answer", err)
			}
			if a.callsOf("ListAccounts") != before {
				t.Error("a call reached the bank while the breaker was open")
			}
			if got := reader.gauge(t, "bankbridge.adapter.breaker_state"); got != 2 {
				t.Errorf("breaker_state = %d, want 2 (open)", got)
			}
		})
	}
}

func TestBreakerCountsCallsNotAttempts(t *testing.T) {
	t.Parallel()
	// Half the calls are a customer's whose every call fails, each tried
	// twice: 2 failed attempts for 1 answered call. Callers see half
	// their calls fail, and so does the breaker: it stays closed.
	a := newFaultBank()
	a.failConsent = "broken"
	bank := runtime.Bank{ID: "test", DisplayName: "Test Bank", Kind: runtime.KindInProcess, InProcess: "fault",
		RateLimit: runtime.RateLimit{PerSecond: 10_000, Burst: 10_000}}
	c := adaptertest.Client(t, adaptertest.NewRegistry(t, []runtime.Bank{bank}, runtime.WithInProcess("fault", a)), "test")
	for i := range 200 {
		consent := "consent-1"
		if i%2 == 1 {
			consent = "broken"
		}
		_, err := c.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: consent})
		if consent == "broken" {
			adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE)
		}
		if strings.Contains(fmt.Sprint(err), "circuit breaker open") {
			t.Fatalf("call %d: the breaker opened on retried attempts: %v", i, err)
		}
	}
	if got := a.callsOf("ListAccounts"); got != 300 {
		t.Errorf("the bank got %d calls, want 300 (100 answered, 100 failing twice)", got)
	}
}

func TestBulkhead(t *testing.T) {
	t.Parallel()
	const limit = 4
	for _, tr := range []string{"in-process", "remote"} {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			a := newFaultBank()
			a.block = make(chan struct{})
			reader := newMetricReader()
			bank := runtime.Bank{ID: "test", DisplayName: "Test Bank", MaxInFlight: limit}
			var c adapterv1.BankAdapterServiceClient
			if tr == "remote" {
				bank.Kind, bank.Endpoint = runtime.KindRemote, adaptertest.ServeWith(t, a, []grpc.ServerOption{adapters.KeepaliveServerOption()}, adapters.WithAPIKeys(func() []string { return []string{adaptertest.TestAPIKey} }))
				c = adaptertest.Client(t, adaptertest.NewRegistry(t, []runtime.Bank{bank}, reader.option(), runtime.WithCredentials(adaptertest.NewCredentials(map[string]string{"api_key": adaptertest.TestAPIKey}))), "test")
			} else {
				bank.Kind, bank.InProcess = runtime.KindInProcess, "fault"
				c = adaptertest.Client(t, adaptertest.NewRegistry(t, []runtime.Bank{bank}, reader.option(), runtime.WithInProcess("fault", a)), "test")
			}

			// limit callers held by the slow bank.
			cancels := make([]context.CancelFunc, limit)
			results := make(chan error, limit+1)
			for i := range limit {
				ctx, cancel := context.WithCancel(t.Context())
				cancels[i] = cancel
				go func() { results <- listAccounts(ctx, c) }()
			}
			defer func() {
				for _, cancel := range cancels {
					cancel()
				}
			}()
			waitStarted(t, a, limit)
			if got := reader.gauge(t, "bankbridge.adapter.inflight"); got != limit {
				t.Errorf("inflight = %d, want %d", got, limit)
			}

			start := time.Now()
			err := listAccounts(t.Context(), c)
			took := time.Since(start)
			adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE)
			if !strings.Contains(status.Convert(err).Message(), "in flight") {
				t.Errorf("message %q does not say why", status.Convert(err).Message())
			}
			if d := retryDelay(err); d <= 0 {
				t.Error("no RetryInfo")
			}
			if took > 100*time.Millisecond {
				t.Errorf("the refusal took %s: it must come at once, not queue", took)
			}
			if got := a.callsOf("ListAccounts"); got != limit {
				t.Errorf("the bank got %d calls, want %d", got, limit)
			}

			// A caller that gives up frees its slot.
			cancels[0]()
			if err := <-results; status.Code(err) != codes.Canceled {
				t.Errorf("the cancelled caller got %v, want CANCELED", err)
			}
			go func() { results <- listAccounts(t.Context(), c) }()
			waitStarted(t, a, 1)

			// Calls that end free theirs.
			close(a.block)
			for range limit {
				if err := <-results; err != nil {
					t.Errorf("a held call: %v", err)
				}
			}
			var wg sync.WaitGroup
			errs := make(chan error, limit)
			for range limit {
				wg.Go(func() { errs <- listAccounts(t.Context(), c) })
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Errorf("after the slots were freed: %v", err)
				}
			}
			if got := reader.gauge(t, "bankbridge.adapter.inflight"); got != 0 {
				t.Errorf("inflight = %d after every call ended, want 0", got)
			}
		})
	}
}

// waitStarted waits until n more ListAccounts calls reached a.
func waitStarted(t *testing.T, a *faultBank, n int) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for range n {
		select {
		case <-a.started:
		case <-timeout:
			t.Fatalf("calls did not reach the bank")
		}
	}
}

// metricReader collects the registry's metrics on demand.
type metricReader struct{ reader *sdkmetric.ManualReader }

func newMetricReader() metricReader { return metricReader{sdkmetric.NewManualReader()} }

func (r metricReader) option() runtime.Option {
	return runtime.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader)))
}

// gauge returns the value of the gauge name for bank "test".
func (r metricReader) gauge(t *testing.T, name string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			for _, dp := range m.Data.(metricdata.Gauge[int64]).DataPoints {
				if v, ok := dp.Attributes.Value("bank_id"); ok && v.AsString() == "test" {
					return dp.Value
				}
			}
		}
	}
	t.Fatalf("no gauge %s for bank test", name)
	return 0
}
