package server_test

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	receiptsv1 "github.com/bankbridge/bankbridge/gen/bankbridge/receipts/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	webhooksv1 "github.com/bankbridge/bankbridge/gen/bankbridge/webhooks/v1"
	"github.com/bankbridge/bankbridge/services/platform/limits"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// tight is 2 calls per 10 s, bursts of 2: once used up, a bucket stays
// empty for the length of a test.
var tight = limits.Rate{Count: 2, Per: 10 * time.Second, Burst: 2}

// loose never refuses in a test.
var loose = limits.Rate{Count: 10_000, Per: time.Second, Burst: 10_000}

// withLimits sets every limit to loose, then the buckets named to tight.
func withLimits(tightened ...limits.Bucket) func(*server.Config) {
	return func(c *server.Config) {
		for _, b := range limits.Buckets() {
			r := loose
			for _, t := range tightened {
				if t == b {
					r = tight
				}
			}
			setRate(&c.Limits, b, r)
		}
		c.InternalClients = "consent"
	}
}

// setRate sets the field of c that holds b.
func setRate(c *limits.Config, b limits.Bucket, r limits.Rate) {
	fields := map[limits.Bucket]*limits.Rate{
		{Class: limits.ClassRead, Scope: limits.ScopeUser}: &c.ReadUser, {Class: limits.ClassRead, Scope: limits.ScopeClient}: &c.ReadClient,
		{Class: limits.ClassWrite, Scope: limits.ScopeUser}: &c.WriteUser, {Class: limits.ClassWrite, Scope: limits.ScopeClient}: &c.WriteClient,
		{Class: limits.ClassStream, Scope: limits.ScopeUser}: &c.StreamUser, {Class: limits.ClassStream, Scope: limits.ScopeClient}: &c.StreamClient,
		{Class: limits.ClassPartner, Scope: limits.ScopeClient}: &c.PartnerClient,
	}
	*fields[b] = r
}

type limitExample struct {
	srv      *servertest.Server
	hooks    *recorder
	logs     *testkit.SyncBuffer
	balance  balancev1.BalanceServiceClient
	shipping shippingv1.ShippingServiceClient
	webhooks webhooksv1.WebhooksServiceClient
	internal consentv1.ConsentCheckServiceClient
}

// startLimitExample serves public (balance, shipping), partner, client and
// internal services through the real chain, with the buckets named tight.
func startLimitExample(t *testing.T, tightened ...limits.Bucket) *limitExample {
	t.Helper()
	logs := &testkit.SyncBuffer{}
	hooks := &recorder{}
	s := servertest.Start(t, server.Deps{Consent: hooks, Recorder: hooks, Banks: knownBanks{"sandbox": true}},
		func(r grpc.ServiceRegistrar) {
			balancev1.RegisterBalanceServiceServer(r, exampleBalance{})
			shippingv1.RegisterShippingServiceServer(r, exampleShipping{})
			webhooksv1.RegisterWebhooksServiceServer(r, exampleWebhooks{})
			consentv1.RegisterConsentCheckServiceServer(r, exampleConsentCheck{})
		},
		servertest.Options{Name: "limits", Telemetry: telemetry.Config{LogOutput: logs}, Config: withLimits(tightened...)})
	return &limitExample{
		srv: s, hooks: hooks, logs: logs,
		balance:  balancev1.NewBalanceServiceClient(s.Conn),
		shipping: shippingv1.NewShippingServiceClient(s.Conn),
		webhooks: webhooksv1.NewWebhooksServiceClient(s.Conn),
		internal: consentv1.NewConsentCheckServiceClient(s.Conn),
	}
}

func (e *limitExample) as(t *testing.T, sub, client, purpose string) context.Context {
	t.Helper()
	tok, err := e.srv.Issuer.Mint(sub, client, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return withPurpose(withToken(context.Background(), tok), purpose)
}

func balanceOf(user string) *balancev1.GetBalanceRequest {
	return &balancev1.GetBalanceRequest{Name: "users/" + user + "/accounts/sandbox~a1/balance"}
}

// requireRateLimited checks what a caller over its limit sees:
// RESOURCE_EXHAUSTED, RATE_LIMITED, a RetryInfo within the window, and the
// policy that refused it.
func requireRateLimited(t *testing.T, err error, policy limits.Scope, class limits.Class) {
	t.Helper()
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("code = %s (%v), want RESOURCE_EXHAUSTED", status.Code(err), err)
	}
	md := testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_RATE_LIMITED)
	ri := testkit.RetryInfo(err)
	if d := ri.GetRetryDelay().AsDuration(); ri == nil || d <= 0 || d > tight.Per {
		t.Errorf("RetryInfo = %v, want a delay within the window %s", ri, tight.Per)
	}
	want := map[string]string{limits.MetaPolicy: string(policy), limits.MetaClass: string(class), limits.MetaQuota: "2", limits.MetaWindowSeconds: "10"}
	for k, v := range want {
		if md[k] != v {
			t.Errorf("ErrorInfo.metadata[%s] = %q, want %q (all: %v)", k, md[k], v, md)
		}
	}
}

func TestReadsAreLimitedPerUserThenPerClient(t *testing.T) {
	t.Parallel()
	e := startLimitExample(t, limits.Bucket{Class: limits.ClassRead, Scope: limits.ScopeUser})
	alice := e.as(t, "alice", testClient, "ACCOUNT_INFORMATION")
	for i := range 2 {
		if _, err := e.balance.GetBalance(alice, balanceOf("alice")); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	_, err := e.balance.GetBalance(alice, balanceOf("alice"))
	requireRateLimited(t, err, limits.ScopeUser, limits.ClassRead)

	t.Run("the refusal reaches neither the handler nor the access log", func(t *testing.T) {
		if got := len(e.hooks.recorded()); got != 2 {
			t.Errorf("%d access-log entries, want the 2 calls served", got)
		}
	})
	t.Run("other users and other classes are counted apart", func(t *testing.T) {
		if _, err := e.balance.GetBalance(e.as(t, "bob", testClient, "ACCOUNT_INFORMATION"), balanceOf("bob")); err != nil {
			t.Errorf("bob: %v", err)
		}
		if _, err := e.shipping.CreateShipment(e.as(t, "alice", testClient, "ORDER_TRACKING"), &shippingv1.CreateShipmentRequest{
			Parent: "users/alice", Shipment: &shippingv1.Shipment{TrackingNumber: "1Z999AA10123456784"}, IdempotencyKey: "k-0000000001",
		}); err != nil {
			t.Errorf("alice's write after her reads ran out: %v", err)
		}
	})
	t.Run("authn comes first", func(t *testing.T) {
		_, err := e.balance.GetBalance(withPurpose(context.Background(), "ACCOUNT_INFORMATION"), balanceOf("alice"))
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID)
		_, err = e.balance.GetBalance(alice, balanceOf("bob"))
		testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_USER_MISMATCH)
	})
	t.Run("before validation", func(t *testing.T) {
		_, err := e.balance.GetBalance(alice, &balancev1.GetBalanceRequest{Name: "users/alice/accounts/x"})
		requireRateLimited(t, err, limits.ScopeUser, limits.ClassRead)
	})
	t.Run("in the security log, without the user", func(t *testing.T) {
		var line string
		for l := range strings.SplitSeq(e.logs.String(), "\n") {
			if strings.Contains(l, `"bankbridge.reason":"RATE_LIMITED"`) && strings.Contains(l, `"bankbridge.log_type":"security"`) {
				line = l
			}
		}
		if !strings.Contains(line, `"bankbridge.client_id":"`+testClient+`"`) ||
			!strings.Contains(line, `"level":"WARN"`) || !strings.Contains(line, "GetBalance") {
			t.Errorf("security log line = %s", line)
		}
		if strings.Contains(line, "alice") {
			t.Errorf("the security log names the user: %s", line)
		}
		resp, err := http.Get("http://" + e.srv.AdminAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if !regexp.MustCompile(`bankbridge_security_refusals_total\{[^}]*bankbridge_reason="RATE_LIMITED"[^}]*\} 2`).Match(body) {
			t.Errorf("refusals not counted in /metrics:\n%s", body)
		}
	})
}

func TestAClientsLimitCountsAllItsUsers(t *testing.T) {
	t.Parallel()
	e := startLimitExample(t, limits.Bucket{Class: limits.ClassRead, Scope: limits.ScopeClient})
	for _, user := range []string{"alice", "bob"} {
		if _, err := e.balance.GetBalance(e.as(t, user, testClient, "ACCOUNT_INFORMATION"), balanceOf(user)); err != nil {
			t.Fatalf("%s: %v", user, err)
		}
	}
	_, err := e.balance.GetBalance(e.as(t, "carol", testClient, "ACCOUNT_INFORMATION"), balanceOf("carol"))
	requireRateLimited(t, err, limits.ScopeClient, limits.ClassRead)
	// Client methods (AUDIENCE_CLIENT) count against the client too.
	cc := e.as(t, testClient, testClient, "")
	_, err = e.webhooks.GetEndpoint(cc, &webhooksv1.GetEndpointRequest{Name: "clients/" + testClient + "/endpoints/ep1"})
	requireRateLimited(t, err, limits.ScopeClient, limits.ClassRead)
	// Another client has its own.
	if _, err := e.balance.GetBalance(e.as(t, "carol", "other-app", "ACCOUNT_INFORMATION"), balanceOf("carol")); status.Code(err) == codes.ResourceExhausted {
		t.Errorf("another client: %v", err)
	}
}

func TestStreamOpensAreLimited(t *testing.T) {
	t.Parallel()
	e := startLimitExample(t, limits.Bucket{Class: limits.ClassStream, Scope: limits.ScopeUser})
	alice := e.as(t, "alice", testClient, "ORDER_TRACKING")
	watch := func() (grpc.ServerStreamingClient[shippingv1.WatchShipmentsResponse], error) {
		return e.shipping.WatchShipments(alice, &shippingv1.WatchShipmentsRequest{Parent: "users/alice"})
	}
	for i := range 2 {
		st, err := watch()
		if err == nil {
			_, err = st.Recv()
		}
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
	}
	st, err := watch()
	if err != nil {
		t.Fatal(err)
	}
	// Refused before it opened: no header (trailers-only, as the gateway
	// needs to answer 429), the trace id in the trailer.
	md, err := st.Header()
	if err != nil || md != nil {
		t.Errorf("Header() = %v, %v; want nil, nil (trailers-only)", md, err)
	}
	_, err = st.Recv()
	requireRateLimited(t, err, limits.ScopeUser, limits.ClassStream)
	if got := st.Trailer().Get(server.TraceIDHeader); len(got) != 1 || len(got[0]) != 32 {
		t.Errorf("trailer %s = %v", server.TraceIDHeader, got)
	}
	// An open stream still gets its trace id in the header.
	bob := e.as(t, "bob", testClient, "ORDER_TRACKING")
	open, err := e.shipping.WatchShipments(bob, &shippingv1.WatchShipmentsRequest{Parent: "users/bob"})
	if err != nil {
		t.Fatal(err)
	}
	if md, err := open.Header(); err != nil || len(md.Get(server.TraceIDHeader)) != 1 {
		t.Errorf("an open stream's header = %v, %v", md, err)
	}
}

func TestPartnerPushesAreLimitedPerPartner(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, server.Deps{}, func(r grpc.ServiceRegistrar) {
		receiptsv1.RegisterPartnerReceiptsServiceServer(r, examplePartnerReceipts{})
	}, servertest.Options{Name: "partner-limits", Config: withLimits(limits.Bucket{Class: limits.ClassPartner, Scope: limits.ScopeClient})})
	tok, err := s.Issuer.Mint(servertest.Partner, servertest.Partner, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ctx := withToken(context.Background(), tok)
	c := receiptsv1.NewPartnerReceiptsServiceClient(s.Conn)
	parent := "clients/" + servertest.Partner
	for i, key := range []string{"k-0000000001", "k-0000000002"} {
		if _, err := c.IngestReceipt(ctx, ingest(parent, key)); err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	_, err = c.IngestReceipt(ctx, ingest(parent, "k-0000000003"))
	requireRateLimited(t, err, limits.ScopeClient, limits.ClassPartner)
}

func TestInternalMethodsAreNotLimited(t *testing.T) {
	t.Parallel()
	all := limits.Buckets()
	e := startLimitExample(t, all...)
	tok, err := e.srv.Issuer.MintInternal("consent", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ctx := withToken(context.Background(), tok)
	for i := range 5 {
		// The example's CheckConsent is unimplemented: reaching it is
		// passing every check before it.
		_, err := e.internal.CheckConsent(ctx, &consentv1.CheckConsentRequest{User: "users/alice",
			Scope: commonv1.Scope_SCOPE_BALANCES, Purpose: commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION})
		if status.Code(err) != codes.Unimplemented {
			t.Fatalf("internal call %d: %v, want it to reach the handler", i, err)
		}
	}
}

// With Redis, replicas share the buckets, and Redis never holds a user id.
func TestRedisSharesTheLimitsWithoutUserIDs(t *testing.T) {
	t.Parallel()
	url := testkit.RealRedis(t)
	name := "limits-" + strconv.FormatInt(time.Now().UnixNano(), 36) // the keys' service part: this test's own
	replica := func() *limitExample {
		s := servertest.Start(t, server.Deps{Consent: &recorder{}, Recorder: &recorder{}, Banks: knownBanks{"sandbox": true}},
			func(r grpc.ServiceRegistrar) { balancev1.RegisterBalanceServiceServer(r, exampleBalance{}) },
			servertest.Options{Name: name, Config: func(c *server.Config) {
				withLimits(limits.Bucket{Class: limits.ClassRead, Scope: limits.ScopeUser})(c)
				c.Limits.RedisURL = url
				c.SubjectKey = "a-subject-key-every-replica-shares"
			}})
		return &limitExample{srv: s, balance: balancev1.NewBalanceServiceClient(s.Conn)}
	}
	a, b := replica(), replica()
	for i, e := range []*limitExample{a, b} {
		if _, err := e.balance.GetBalance(e.as(t, "alice", testClient, "ACCOUNT_INFORMATION"), balanceOf("alice")); err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	_, err := a.balance.GetBalance(a.as(t, "alice", testClient, "ACCOUNT_INFORMATION"), balanceOf("alice"))
	requireRateLimited(t, err, limits.ScopeUser, limits.ClassRead)

	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	keys, err := rdb.Keys(context.Background(), "*"+name+"*").Result()
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys = %q, %v; want alice's and the client's", keys, err)
	}
	for _, k := range keys {
		if strings.Contains(k, "alice") {
			t.Errorf("Redis key %q names the user", k)
		}
	}
	if !slices.ContainsFunc(keys, regexp.MustCompile(`:read:user:[0-9a-f]{32}$`).MatchString) {
		t.Errorf("keys = %q, want the user's named by the pseudonymous subject id", keys)
	}
}

// init registers noclass/v1/noclass.proto, a public method with an access
// rule but no google.api.http rule, hence no rate-limit class (see the
// init of access_test.go for why at init).
func init() {
	opts := &descriptorpb.MethodOptions{}
	proto.SetExtension(opts, commonv1.E_Access, &commonv1.AccessRule{
		Purposes: []commonv1.Purpose{commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION}, ConsentNotRequired: true,
	})
	fdp := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("noclass/v1/noclass.proto"),
		Package: proto.String("noclass.v1"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{
			Name:  proto.String("PingRequest"),
			Field: []*descriptorpb.FieldDescriptorProto{{Name: proto.String("name"), Number: proto.Int32(1), Type: descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(), JsonName: proto.String("name")}},
		}},
		Service: []*descriptorpb.ServiceDescriptorProto{{
			Name:   proto.String("NoClassService"),
			Method: []*descriptorpb.MethodDescriptorProto{{Name: proto.String("Ping"), InputType: proto.String(".noclass.v1.PingRequest"), OutputType: proto.String(".noclass.v1.PingRequest"), Options: opts}},
		}},
	}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		panic(err)
	}
	if err := protoregistry.GlobalFiles.RegisterFile(fd); err != nil {
		panic(err)
	}
}

// A public method no limit would apply to is never served.
func TestAPublicMethodWithoutARateLimitClassStopsTheStart(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{}) // for its telemetry and verifier
	cfg := server.Defaults("noclass", "127.0.0.1:0", "")
	cfg.DevMode = true
	_, err := server.New(cfg, server.Deps{Telemetry: e.tel, Verifier: e.verifier, Recorder: e.hooks}, func(r grpc.ServiceRegistrar) {
		r.RegisterService(&grpc.ServiceDesc{ServiceName: "noclass.v1.NoClassService", HandlerType: (*any)(nil),
			Methods: []grpc.MethodDesc{{MethodName: "Ping", Handler: func(any, context.Context, func(any) error, grpc.UnaryServerInterceptor) (any, error) {
				return nil, nil
			}}}}, struct{}{})
	})
	if err == nil || !strings.Contains(err.Error(), "public method noclass.v1.NoClassService.Ping has no rate-limit class") {
		t.Fatalf("New = %v, want a refusal naming the method without a class", err)
	}
}
