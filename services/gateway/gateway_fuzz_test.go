package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"buf.build/go/protovalidate"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// echoBackend serves every gRPC method of every backend: it decodes the
// request the gateway sent into the method's own message, refuses it as
// the server kit's validation would (INVALID_ARGUMENT with field
// violations) when it breaks the contract's rules, and otherwise answers
// an empty response (a server stream ends with no event). It stands for
// the services so that the fuzzer exercises the gateway's decoding, not
// the services' logic.
type echoBackend struct {
	validator protovalidate.Validator
	calls     atomic.Int64
	// md is the metadata of the last call.
	md atomic.Pointer[metadata.MD]
}

func (b *echoBackend) handle(_ any, stream grpc.ServerStream) error {
	b.calls.Add(1)
	in, _ := metadata.FromIncomingContext(stream.Context())
	b.md.Store(&in)
	full, _ := grpc.MethodFromServerStream(stream)
	service, method, _ := strings.Cut(strings.TrimPrefix(full, "/"), "/")
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		return status.Errorf(codes.Unimplemented, "no service %s", service)
	}
	md := d.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(method))
	if md == nil {
		return status.Errorf(codes.Unimplemented, "no method %s", full)
	}
	reqType, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
	if err != nil {
		return err
	}
	req := reqType.New().Interface()
	if err := stream.RecvMsg(req); err != nil {
		return err
	}
	if err := b.validator.Validate(req); err != nil {
		return apierr.FromValidation(err)
	}
	if md.IsStreamingServer() {
		return nil
	}
	out, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
	if err != nil {
		return err
	}
	return stream.SendMsg(out.New().Interface())
}

// fuzzGateway is the real gateway, every backend routed to one
// echoBackend on 127.0.0.1.
func fuzzGateway(f testing.TB) (http.Handler, *echoBackend) {
	f.Helper()
	v, err := protovalidate.New()
	if err != nil {
		f.Fatal(err)
	}
	be := &echoBackend{validator: v}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnknownServiceHandler(be.handle))
	go func() { _ = srv.Serve(lis) }()
	f.Cleanup(srv.Stop)

	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	tel, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: "gateway-fuzz", LogOutput: io.Discard})
	if err != nil {
		f.Fatal(err)
	}
	backends := map[string]string{}
	for _, name := range Backends() {
		backends[name] = lis.Addr().String()
	}
	g, err := New(ctx, Config{Backends: backends, MaxBodyBytes: 4096, RequestTimeout: 5 * time.Second}, tel, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(g.Close)
	return g.Handler(), be
}

// wireRequest reads the request an HTTP client sends as these bytes, the
// way net/http's server reads it. ok is false for bytes the server itself
// refuses (400) before any handler runs.
func wireRequest(method, target, purpose, idempotencyKey string, body []byte) (*http.Request, bool) {
	raw := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer fuzz\r\n"+
		"Bankbridge-Purpose: %s\r\nIdempotency-Key: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
		method, target, purpose, idempotencyKey, len(body))
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw + string(body))))
	if err != nil || r.Method != method {
		return nil, false
	}
	for _, vs := range r.Header {
		for _, v := range vs {
			if !validFieldValue(v) {
				return nil, false
			}
		}
	}
	return r, true
}

// validFieldValue is what net/http's server takes as a header value
// (httpguts.ValidHeaderFieldValue): no control bytes but tab.
func validFieldValue(v string) bool {
	for i := range len(v) {
		if b := v[i]; b < ' ' && b != '\t' || b == 0x7f {
			return false
		}
	}
	return true
}

// FuzzREST sends the gateway any REST call a client could put on the wire:
// any method and request target (path and query) under /v1/, any JSON
// body, any purpose and idempotency key headers. grpc-gateway's mux, its
// JSON marshaler and path and query decoding, and the gateway's own checks
// (unknown query parameters, body limit) decode it into the proto request
// of the matched route, as configured in New, and an echoBackend answers.
//
// Nothing may panic, and nothing a caller sends may earn a 5xx: what the
// gateway cannot decode is the caller's mistake, a 4xx. Every error is the
// usual body, a JSON google.rpc.Status whose code gives the HTTP status,
// with a message and an ErrorInfo naming a reason of bankbridge's. A 200
// is the backend's answer, never the gateway's own.
func FuzzREST(f *testing.F) {
	h, be := fuzzGateway(f)
	add := func(method, target, body string) {
		f.Add(method, target, body, "ACCOUNT_INFORMATION", "idem-0001")
	}
	// One call of every REST route of the contracts, with ids for its
	// path variables and an empty body.
	q := queryRoutes{}
	for _, r := range routes {
		for _, svc := range r.services {
			if err := q.add(svc.name); err != nil {
				f.Fatal(err)
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(q)) {
		method, template, _ := strings.Cut(key, " ")
		add(method, samplePath(template), "{}")
	}
	// Calls as the quick start makes them.
	add(http.MethodPost, "/v1/users/alice/links",
		`{"bank_id":"sandbox","scopes":["SCOPE_ACCOUNTS","SCOPE_BALANCES"],"purposes":["PURPOSE_ACCOUNT_INFORMATION"],"bank_login_hint":"alice"}`)
	add(http.MethodPost, "/v1/users/alice/links/lnk-1:verify", `{"code":"123456"}`)
	add(http.MethodGet, "/v1/users/alice/accounts?page_size=3&pageToken=abc&bank_id=sandbox", "")
	add(http.MethodGet, "/v1/users/alice/accounts/sandbox~acc-1/balance", "")
	add(http.MethodGet, "/v1/users/alice/accounts/sandbox~acc-1/transactions?page_size=10", "")
	add(http.MethodGet, "/v1/users/alice/receipts?page_size=3", "")
	add(http.MethodPost, "/v1/users/alice/shipments", `{"tracking_number":"SBX0000000018"}`)
	add(http.MethodGet, "/v1/users/alice/shipments:watch?resume_cursor=MTpCQU5LQlJJREdFOjE6MQ", "")
	add(http.MethodPost, "/v1/users/alice/conversations/sandbox~c1/messages", `{"text":"what's my balance?","client_message_id":"msg-1"}`)
	add(http.MethodPost, "/v1/clients/demo-partner/receipts:ingest",
		`{"partner_user_id":"pu_12345678","receipt_id":"NO-100234","receipt":{"merchant_name":"Nordic Outdoor","purchase_time":"2026-03-04T05:06:07Z",`+
			`"summary":{"total_cost":{"currency_code":"EUR","units":"59","nanos":990000000}}}}`)
	// What a caller gets wrong.
	add(http.MethodGet, "/v1/users/alice/accounts?page_sise=2&parent=users/bob&bank_id[x]=1&page_size.value=2", "")
	add(http.MethodGet, "/v1/users/alice/accounts?page_size=abc", "")
	add(http.MethodGet, "/v1/users/%FF/accounts?bank_id=%C3%28", "")
	add(http.MethodPost, "/v1/users/alice/links", `{"bank_id":1,"scopes":"SCOPE_ACCOUNTS","x":null`)
	add(http.MethodPost, "/v1/users/alice/links", `{"bank_id":"\ud800","scopes":["SCOPE_NOPE"]}`)
	add(http.MethodPost, "/v1/users/alice/links?bank_id=sandbox", `[]`)
	add(http.MethodDelete, "/v1/users/alice/accounts", "")
	add(http.MethodGet, "/v1/users/alice/accounts/sandbox~acc-1/balance:verify", "")
	add(http.MethodGet, "/v1/nothing/here", "")
	add(http.MethodPost, "/v1/users/alice/links", strings.Repeat(" ", 5000))
	f.Add(http.MethodGet, "/v1/users/alice/accounts", "", "ACCOUNT_INFORMATIÖN", "idem-\xff")

	f.Fuzz(func(t *testing.T, method, target, body, purpose, idempotencyKey string) {
		r, ok := wireRequest(method, target, purpose, idempotencyKey, []byte(body))
		if !ok || !strings.HasPrefix(r.URL.Path, "/v1/") || r.URL.Path == "/v1/dev/tokens" {
			// No request a server hands over, or not a REST route: the
			// dev token issuer is not there outside dev mode.
			t.Skip()
		}
		before := be.calls.Load()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		called := be.calls.Load() > before

		switch {
		case w.Code >= 500:
			t.Fatalf("%s %s with body %q: %d: %s", method, target, body, w.Code, w.Body)
		case (w.Code == http.StatusMovedPermanently || w.Code == http.StatusTemporaryRedirect) && w.Header().Get("Location") != "":
			return // http.ServeMux cleaning the path (/v1/a/../b, /v1//b), before any route
		case w.Code < 400:
			if w.Code != http.StatusOK || !called {
				t.Fatalf("%s %s: %d without the backend's answer (called %v): %s", method, target, w.Code, called, w.Body)
			}
			// What the caller said in the headers the gateway forwards
			// reached the service, none dropped on the way.
			md := *be.md.Load()
			forwarded := maps.Clone(forwardedHeaders)
			forwarded["authorization"] = "authorization" // grpc-gateway's own
			for header, key := range forwarded {
				if got, want := md.Get(key), r.Header.Values(header); !slices.Equal(got, want) {
					t.Fatalf("header %s: the service got %q, the caller sent %q", header, got, want)
				}
			}
			return
		}
		requireErrorBody(t, w, isStream(r))
	})
}

// isStream tells a call of a server stream, as the gateway does (limits).
func isStream(r *http.Request) bool {
	return strings.HasSuffix(r.URL.Path, ":watch") || strings.HasSuffix(r.URL.Path, ":stream")
}

// requireErrorBody holds a refusal to the usual error body: a JSON
// google.rpc.Status, which a stream the service refused when it opened
// sends as its one line, {"error": ...} (openStream).
func requireErrorBody(t *testing.T, w *httptest.ResponseRecorder, stream bool) {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%d with Content-Type %q: %s", w.Code, ct, w.Body)
	}
	body := w.Body.Bytes()
	var line struct {
		Error json.RawMessage `json:"error"`
	}
	if stream && json.Unmarshal(body, &line) == nil && line.Error != nil {
		body = line.Error
	}
	var sp spb.Status
	if err := protojson.Unmarshal(body, &sp); err != nil {
		t.Fatalf("%d with a body that is no google.rpc.Status (%v): %s", w.Code, err, w.Body)
	}
	if c := codes.Code(sp.GetCode()); c == codes.OK || sp.GetMessage() == "" {
		t.Fatalf("%d with code %s and message %q: %s", w.Code, c, sp.GetMessage(), w.Body)
	}
	// The HTTP status follows the code, but for the statuses HTTP has and
	// gRPC has not: a body or headers too large.
	if want := runtime.HTTPStatusFromCode(codes.Code(sp.GetCode())); w.Code != want &&
		w.Code != http.StatusRequestEntityTooLarge && w.Code != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("code %s answered %d, want %d: %s", codes.Code(sp.GetCode()), w.Code, want, w.Body)
	}
	var info *errdetails.ErrorInfo
	for _, d := range sp.GetDetails() {
		var ei errdetails.ErrorInfo
		if d.UnmarshalTo(&ei) == nil {
			info = &ei
		}
	}
	if apierr.ParseReason(info.GetReason()) == commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED || info.GetDomain() != apierr.Domain {
		t.Fatalf("%d without an ErrorInfo reason of %s: %s", w.Code, apierr.Domain, w.Body)
	}
}
