// Package main is the bankbridge REST gateway: grpc-gateway handlers over
// real gRPC client connections to each service, so every call made over
// REST passes the same interceptor chain (auth, validation, purpose,
// consent, audit) as a gRPC call. It adds the HTTP edges: body limit,
// timeouts, unknown query parameters refused (400 naming each), JSON
// google.rpc.Status errors with the right HTTP status, the
// x-trace-id header on every response, Bankbridge-Purpose and
// Idempotency-Key headers passed on as gRPC metadata, the OpenAPI document,
// a /healthz that reflects the backends, carriers' signed pushes passed
// through to the shipping service's HTTP listener (carriers.go), and — in
// dev mode only — a token issuer for trying the API.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/bankbridge/bankbridge/gen/apierr"
	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	receiptsv1 "github.com/bankbridge/bankbridge/gen/bankbridge/receipts/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	supportv1 "github.com/bankbridge/bankbridge/gen/bankbridge/support/v1"
	webhooksv1 "github.com/bankbridge/bankbridge/gen/bankbridge/webhooks/v1"
	"github.com/bankbridge/bankbridge/services/gateway/apidocs"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/client"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// Config is the gateway's configuration (flags or BANKBRIDGE_* env).
type Config struct {
	// Backends are the services' gRPC addresses by name (Backends(), flag
	// --<name>-addr); a backend without one is not routed.
	Backends map[string]string
	// ShippingHTTPAddr is the shipping service's public HTTP listener
	// (host:port, flag --shipping-http-addr), where carriers' signed
	// pushes to /v1/carriers/{carrier}/trackingEvents are passed through
	// untouched; empty, that path is not served (404).
	ShippingHTTPAddr string

	MaxBodyBytes int64
	// MaxHeaderBytes bounds a request's header fields, all of them
	// (edge.go); a request over it is answered 431.
	MaxHeaderBytes int
	RequestTimeout time.Duration

	// BackendCredentials, when set, secures the gRPC connection to the
	// backend named (bootstrap.Deps.TransportCredentials: mutual TLS with
	// the gateway's certificate); nil dials in plaintext (tests, and
	// --plaintext in dev mode).
	BackendCredentials func(backend string) credentials.TransportCredentials
	// BackendTLS, when set, is the TLS config to reach the backend named
	// over HTTP (the shipping service's public listener); nil, or a nil
	// config, is plain HTTP.
	BackendTLS func(backend string) *tls.Config

	DevMode bool
	// Dev issuer (dev mode only): the gateway mints user tokens at
	// POST /v1/dev/tokens and service and partner tokens at /oauth/token
	// (the client credentials grant), and publishes the keys at
	// /.well-known/jwks.json, for the services to verify.
	DevIssuer   string
	DevAudience string
	// DevInternalAudience is the aud of the tokens bankbridge's services
	// get at /oauth/token when they ask for it, for internal methods.
	DevInternalAudience string
	DevClient           string
	DevServiceClients   string
	DevServiceSecret    string
	// DevPartnerClients are partners (comma-separated) whose client
	// credentials /oauth/token also takes, with DevPartnerSecret, so that
	// a partner's push can be tried in dev; the services must list them in
	// --partner-clients.
	DevPartnerClients string
	DevPartnerSecret  string
	// DevOperatorClient is the on-call operator client whose own token
	// POST /v1/dev/tokens mints with {"operator": true}, for the operator
	// look-up by trace id; the services must list it in --operator-clients.
	DevOperatorClient string
}

// route is one backend the gateway can route to: a service binary, with
// the gRPC services it serves over REST.
type route struct {
	name     string
	services []restService
}

// restService is one gRPC service of a backend and the registration of its
// REST handlers.
type restService struct {
	name     string // the gRPC service's full name
	register func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error
}

func rest(desc *grpc.ServiceDesc, register func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error) restService {
	return restService{name: desc.ServiceName, register: register}
}

// routes are every backend the gateway knows; adding a service to the REST
// surface is one entry here (its --<name>-addr flag follows), or one more
// service in the entry of the binary that serves it.
var routes = []route{
	{name: "consent", services: []restService{rest(&consentv1.ConsentService_ServiceDesc, consentv1.RegisterConsentServiceHandler)}},
	{name: "balance", services: []restService{rest(&balancev1.BalanceService_ServiceDesc, balancev1.RegisterBalanceServiceHandler)}},
	{name: "receipts", services: []restService{
		rest(&receiptsv1.ReceiptsService_ServiceDesc, receiptsv1.RegisterReceiptsServiceHandler),
		// Partners push receipts to the same binary.
		rest(&receiptsv1.PartnerReceiptsService_ServiceDesc, receiptsv1.RegisterPartnerReceiptsServiceHandler),
	}},
	{name: "shipping", services: []restService{
		rest(&shippingv1.ShippingService_ServiceDesc, shippingv1.RegisterShippingServiceHandler),
		// Partners register parcels with the same binary.
		rest(&shippingv1.PartnerShippingService_ServiceDesc, shippingv1.RegisterPartnerShippingServiceHandler),
	}},
	{name: "support", services: []restService{rest(&supportv1.SupportService_ServiceDesc, supportv1.RegisterSupportServiceHandler)}},
	{name: "webhooks", services: []restService{rest(&webhooksv1.WebhooksService_ServiceDesc, webhooksv1.RegisterWebhooksServiceHandler)}},
}

// Backends are the names of the services the gateway can route to, the
// keys of Config.Backends.
func Backends() []string {
	out := make([]string, len(routes))
	for i, r := range routes {
		out[i] = r.name
	}
	return out
}

// backend is one routed service and its connection.
type backend struct {
	route
	addr string
	conn *grpc.ClientConn
}

// Gateway is the HTTP handler and the connections behind it.
type Gateway struct {
	cfg      Config
	tel      *telemetry.Telemetry
	log      *slog.Logger
	backends []*backend
	issuer   *auth.DevIssuer
	handler  http.Handler
	// mux is the REST mux, whose error handler writes every gateway error.
	mux *runtime.ServeMux
}

// DefaultMaxHeaderBytes bounds a request's header fields: a bearer token,
// a purpose, an idempotency key and trace context take a few KiB. The
// services take 64 KiB of metadata (server.Config.MaxHeaderListBytes), so
// what passes here passes there.
const DefaultMaxHeaderBytes = 32 << 10

// headers the gateway passes to gRPC as metadata, beyond Authorization,
// which grpc-gateway passes on itself (listed here too, the service got
// it twice).
var forwardedHeaders = map[string]string{
	"bankbridge-purpose":        access.PurposeHeader,
	server.IdempotencyKeyHeader: server.IdempotencyKeyHeader,
}

// New dials every configured backend and builds the handler.
func New(ctx context.Context, cfg Config, tel *telemetry.Telemetry, issuer *auth.DevIssuer) (*Gateway, error) {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	g := &Gateway{cfg: cfg, tel: tel, log: tel.Logger, issuer: issuer}
	all := make([]*backend, len(routes))
	for i, r := range routes {
		all[i] = &backend{route: r, addr: cfg.Backends[r.name]}
	}
	query := queryRoutes{}
	for _, b := range all {
		for _, svc := range b.services {
			if err := query.add(svc.name); err != nil {
				return nil, err
			}
		}
	}
	var mux *runtime.ServeMux
	mux = runtime.NewServeMux(
		runtime.WithMiddlewares(func(next runtime.HandlerFunc) runtime.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request, pathParams map[string]string) {
				if pat, ok := runtime.HTTPPattern(r.Context()); ok {
					// The route's template, never the path: paths name
					// users and accounts.
					span := trace.SpanFromContext(r.Context())
					span.SetName("HTTP " + r.Method + " " + pat.String())
					span.SetAttributes(semconv.HTTPRoute(pat.String()))
					matchedRoute(r.Context(), routeTemplate(pat.String()))
				}
				err := undecodable(r, pathParams) // decode.go
				if err == nil {
					err = query.check(r, pathParams)
				}
				if err != nil {
					if errors.Is(err, errNoRoute) {
						id, masked := apierr.Internal()
						g.log.ErrorContext(r.Context(), "REST route without an indexed HTTP binding", slog.String(telemetry.AttrIncidentID, id), slog.String("error", err.Error()))
						err = masked
					}
					_, out := runtime.MarshalerForRequest(mux, r)
					runtime.HTTPError(r.Context(), mux, out, w, r, err)
					return
				}
				next(w, withResponseHeader(r, w.Header()), pathParams)
			}
		}),
		runtime.WithIncomingHeaderMatcher(func(h string) (string, bool) {
			md, ok := forwardedHeaders[strings.ToLower(h)]
			return md, ok
		}),
		// No Grpc-Metadata-* passthrough either: a caller's metadata,
		// its baggage among it, never reaches a service.
		// Only the trace id goes back out; other response metadata stays inside.
		runtime.WithOutgoingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithForwardResponseOption(openStream),
		// A refusal with RetryInfo adds Retry-After (and, over a rate
		// limit, RateLimit) headers.
		runtime.WithErrorHandler(httpError),
		runtime.WithRoutingErrorHandler(routingError), // decode.go
		runtime.WithStreamErrorHandler(streamError),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: false},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}),
	)
	for _, b := range all {
		if b.addr == "" {
			continue
		}
		var creds credentials.TransportCredentials // nil: plaintext
		if cfg.BackendCredentials != nil {
			creds = cfg.BackendCredentials(b.name)
		}
		conn, err := client.Dial(b.addr, tel, client.Options{DefaultTimeout: cfg.RequestTimeout, TransportCredentials: creds})
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("backend %s: %w", b.name, err)
		}
		b.conn = conn
		g.backends = append(g.backends, b)
		for _, svc := range b.services {
			if err := svc.register(ctx, mux, conn); err != nil {
				g.Close()
				return nil, fmt.Errorf("register %s handlers: %w", svc.name, err)
			}
		}
	}

	root := http.NewServeMux()
	root.Handle("/v1/", g.limits(mux))
	if cfg.ShippingHTTPAddr != "" {
		// Every method: the shipping service answers what it does not take.
		root.Handle(carrierPushRoute, g.carrierProxy(cfg.ShippingHTTPAddr, mux))
	}
	doc, err := openAPIDocument(issuer != nil) // openapidoc.go
	if err != nil {
		g.Close()
		return nil, err
	}
	root.HandleFunc("GET /openapi.json", serveOpenAPI(doc))
	root.Handle("GET /docs", apidocs.Handler(g.notFound()))
	root.Handle("GET "+apidocs.Prefix, apidocs.Handler(g.notFound()))
	root.Handle("/", g.notFound()) // notfound.go
	root.HandleFunc("GET /healthz", g.healthz)
	root.HandleFunc("POST /v1/dev/tokens", g.devToken)
	if issuer != nil {
		clients, err := devClients(cfg)
		if err != nil {
			g.Close()
			return nil, err
		}
		root.Handle("GET /.well-known/jwks.json", issuer.JWKSHandler())
		root.Handle("POST /oauth/token", issuer.TokenHandler(clients, time.Hour))
	}
	g.mux = mux
	// A span is named by its method until a route matches, then by the
	// route's pattern (namedByRoute, and the REST mux's middleware).
	g.handler = otelhttp.NewHandler(traceIDHeader(g.accessLog(g.edge(namedByRoute(root)))), "gateway",
		otelhttp.WithTracerProvider(tel.TracerProvider),
		otelhttp.WithMeterProvider(tel.MeterProvider),
		otelhttp.WithPropagators(tel.EdgePropagator), // callers' trace context, never their baggage
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return "HTTP " + r.Method }),
	)
	return g, nil
}

// devClients maps each client the dev /oauth/token endpoint serves to its
// secret: bankbridge's services with the service secret, partners with the
// partner secret. A client in both lists, or a list without its secret
// (which would let anyone in with an empty one), is a mistake.
// bankbridge's services may also ask for the internal audience.
func devClients(cfg Config) (auth.TokenClients, error) {
	clients := map[string]string{}
	internal := map[string]bool{}
	for _, list := range []struct {
		ids, secret, flag string
		internal          bool
	}{
		{cfg.DevServiceClients, cfg.DevServiceSecret, "--dev-service-secret", true},
		{cfg.DevPartnerClients, cfg.DevPartnerSecret, "--dev-partner-secret", false},
	} {
		for c := range strings.SplitSeq(list.ids, ",") {
			c = strings.TrimSpace(c)
			switch _, dup := clients[c]; {
			case c == "":
				continue
			case dup:
				return auth.TokenClients{}, fmt.Errorf("dev client %s is both a service and a partner", c)
			case list.secret == "":
				return auth.TokenClients{}, fmt.Errorf("dev client %s has no secret: set %s", c, list.flag)
			}
			clients[c], internal[c] = list.secret, list.internal
		}
	}
	return auth.TokenClients{Secrets: clients, Internal: internal}, nil
}

// queryRoutes knows, for every REST route of the contracts, which query
// parameters it takes, so that the gateway refuses the others (AIP-158
// contracts promise it) instead of grpc-gateway's silent drop: a misspelt
// ?page_sise=2 must not look like it worked. Keyed by HTTP method and path
// template as grpc-gateway's runtime.Pattern prints it.
type queryRoutes map[string]queryRoute

// queryRoute is one HTTP binding of an RPC.
type queryRoute struct {
	input protoreflect.MessageDescriptor
	// body is the binding's body: "" (query only), "*" (every field from
	// the body, none from the query) or the field taken from the body.
	body string
}

// add indexes every HTTP binding of the service's methods.
func (q queryRoutes) add(service string) error {
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		return fmt.Errorf("routes of %s: %w", service, err)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return fmt.Errorf("routes of %s: not a service", service)
	}
	for i := range sd.Methods().Len() {
		m := sd.Methods().Get(i)
		rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
		if rule == nil {
			continue // gRPC only
		}
		for _, b := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
			method, path := httpBinding(b)
			if method == "" {
				return fmt.Errorf("routes of %s: %s has an HTTP rule without a path", service, m.Name())
			}
			q[method+" "+canonicalTemplate(path)] = queryRoute{input: m.Input(), body: b.GetBody()}
		}
	}
	return nil
}

func httpBinding(r *annotations.HttpRule) (method, path string) {
	switch p := r.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return http.MethodGet, p.Get
	case *annotations.HttpRule_Post:
		return http.MethodPost, p.Post
	case *annotations.HttpRule_Put:
		return http.MethodPut, p.Put
	case *annotations.HttpRule_Patch:
		return http.MethodPatch, p.Patch
	case *annotations.HttpRule_Delete:
		return http.MethodDelete, p.Delete
	case *annotations.HttpRule_Custom:
		return p.Custom.GetKind(), p.Custom.GetPath()
	}
	return "", ""
}

// bareVariable is a path variable without a template, {name}, which
// runtime.Pattern prints as {name=*}.
var bareVariable = regexp.MustCompile(`\{([^=}]+)\}`)

func canonicalTemplate(path string) string {
	return bareVariable.ReplaceAllString(path, "{$1=*}")
}

// errNoRoute is a mux route without an indexed HTTP binding: a bug, not
// the caller's mistake.
var errNoRoute = errors.New("no HTTP binding indexed for this route")

// mapKeySuffix is grpc-gateway's syntax for a map entry, field[key]=value.
var mapKeySuffix = regexp.MustCompile(`^(.*)\[(.*)\]$`)

// check refuses the request's query parameters that the matched binding
// does not read into its request message: names of no field (snake_case or
// lowerCamelCase, dotted into nested messages), fields bound from the path
// or the body, and any parameter of a binding whose body is "*". A field
// bound from the path is refused rather than ignored, so that
// /v1/users/alice/accounts?parent=users/bob cannot look like it read bob's.
func (q queryRoutes) check(r *http.Request, pathParams map[string]string) error {
	// The mux parsed a POST form body into r.Form when it fell back to a
	// GET binding; the handler then reads parameters from there.
	values := r.Form
	if values == nil {
		values = r.URL.Query()
	}
	if len(values) == 0 {
		return nil
	}
	pat, _ := runtime.HTTPPattern(r.Context())
	route, ok := q[r.Method+" "+pat.String()]
	if !ok && r.Form != nil {
		route, ok = q[http.MethodGet+" "+pat.String()]
	}
	if !ok {
		return fmt.Errorf("%w: %s %s", errNoRoute, r.Method, pat)
	}
	var vs []apierr.FieldViolation
	for _, key := range slices.Sorted(maps.Keys(values)) {
		if v, ok := route.refuse(key, pathParams); !ok {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return nil
	}
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT,
		fmt.Sprintf("invalid request: %s: %s", vs[0].Field, vs[0].Description),
		apierr.WithFieldViolations(vs...))
}

// refuse says whether the binding reads key into its request, and if not,
// why, as a field violation naming key as the caller wrote it.
func (route queryRoute) refuse(key string, pathParams map[string]string) (apierr.FieldViolation, bool) {
	const maxEcho = 64 // the caller's text; keep errors small
	field := key
	if len(field) > maxEcho {
		// Cut whole characters: half a one is no UTF-8, and the error
		// could not carry it.
		field = strings.ToValidUTF8(field[:maxEcho], "") + "..."
	}
	unknown := apierr.FieldViolation{Field: field, Reason: "query_parameter.unknown",
		Description: "not a query parameter of this call; it takes " + route.takes(pathParams)}
	if route.body == "*" {
		unknown.Description = "this call takes its fields in the body, not the query"
		return unknown, false
	}
	name, isMapEntry := key, false
	if m := mapKeySuffix.FindStringSubmatch(key); m != nil {
		name, isMapEntry = m[1], true
	}
	md := route.input
	var path []string
	var fd protoreflect.FieldDescriptor
	for i, seg := range strings.Split(name, ".") {
		if i > 0 {
			if fd.Message() == nil || fd.IsList() || fd.IsMap() {
				return unknown, false
			}
			md = fd.Message()
		}
		if fd = md.Fields().ByTextName(seg); fd == nil {
			if fd = md.Fields().ByJSONName(seg); fd == nil {
				return unknown, false
			}
		}
		path = append(path, string(fd.Name()))
	}
	if isMapEntry != fd.IsMap() {
		return unknown, false
	}
	full := strings.Join(path, ".")
	for bound := range pathParams {
		if overlaps(full, bound) {
			return apierr.FieldViolation{Field: field, Reason: "query_parameter.bound_by_path",
				Description: "set by the URL path (" + bound + "); it cannot also be a query parameter"}, false
		}
	}
	if route.body != "" && overlaps(full, route.body) {
		return apierr.FieldViolation{Field: field, Reason: "query_parameter.bound_by_body",
			Description: "set by the request body (" + route.body + "); it cannot also be a query parameter"}, false
	}
	return apierr.FieldViolation{}, true
}

// overlaps reports whether one dotted field path is the other or lies
// inside it.
func overlaps(a, b string) bool {
	return a == b || strings.HasPrefix(a, b+".") || strings.HasPrefix(b, a+".")
}

// takes lists the top-level parameters the binding reads, for the error.
func (route queryRoute) takes(pathParams map[string]string) string {
	var names []string
	fields := route.input.Fields()
	for i := range fields.Len() {
		name := string(fields.Get(i).Name())
		free := route.body != name
		for bound := range pathParams {
			free = free && !overlaps(name, bound)
		}
		if free {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// Handler is the gateway's root HTTP handler.
func (g *Gateway) Handler() http.Handler { return g.handler }

// Close closes the backend connections.
func (g *Gateway) Close() {
	for _, b := range g.backends {
		_ = b.conn.Close()
	}
}

// namedByRoute names the request's span after the route pattern the mux
// matched ("HTTP POST /oauth/token"), never after its path; the REST mux
// names its own routes more closely (New). The mux gets a copy of the
// request, so that otelhttp, which renames a span after the pattern it
// finds on its own request, leaves the closer name alone.
func namedByRoute(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			if _, path, hasMethod := strings.Cut(pattern, " "); hasMethod {
				pattern = path
			}
			span := trace.SpanFromContext(r.Context())
			span.SetName("HTTP " + r.Method + " " + pattern)
			span.SetAttributes(semconv.HTTPRoute(pattern))
			matchedRoute(r.Context(), pattern) // the REST mux names its routes more closely
		}
		mux.ServeHTTP(w, r.WithContext(r.Context()))
	})
}

// traceIDHeader puts the request's trace id on every response, errors and
// 404s included, before the body is written.
func traceIDHeader(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sc := trace.SpanContextFromContext(r.Context()); sc.HasTraceID() {
			w.Header().Set(server.TraceIDHeader, sc.TraceID().String())
		}
		next.ServeHTTP(w, r)
	})
}

// limits reads request bodies whole under the body limit (edge.go), and
// bounds the time of every call that is not a stream (streams end on their
// own or when the client leaves).
func (g *Gateway) limits(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.readBody(w, r) {
			return
		}
		if !strings.HasSuffix(r.URL.Path, ":watch") && !strings.HasSuffix(r.URL.Path, ":stream") {
			ctx, cancel := context.WithTimeout(r.Context(), g.cfg.RequestTimeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		next.ServeHTTP(w, r)
	})
}

// healthz answers 200 when every backend's gRPC health check says SERVING,
// 503 with the failing backends otherwise.
func (g *Gateway) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status := map[string]string{}
	healthy := true
	for _, b := range g.backends {
		resp, err := healthpb.NewHealthClient(b.conn).Check(ctx, &healthpb.HealthCheckRequest{})
		switch {
		case err != nil:
			status[b.name], healthy = "UNREACHABLE", false
		case resp.GetStatus() != healthpb.HealthCheckResponse_SERVING:
			status[b.name], healthy = resp.GetStatus().String(), false
		default:
			status[b.name] = "SERVING"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if !healthy {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"healthy": healthy, "backends": status})
}

func validUser(u string) bool {
	if len(u) < 1 || len(u) > 64 {
		return false
	}
	for _, c := range u {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// openStream answers a server stream's HTTP headers as soon as the service
// has opened it, before its first message: grpc-gateway otherwise holds
// them back until an event comes, so a REST client watching for changes
// would block in its request (and miss the chance to list, knowing the
// watch is on). grpc-gateway calls the option with a nil message once,
// after the stream's gRPC headers arrived (the service subscribed), and
// only for streams. A stream refused when it opens (PERMISSION_DENIED,
// RATE_LIMITED, ...) sends no headers, only its status (the server kit
// keeps it trailers-only): then nothing is written here, and the refusal
// is answered with its own HTTP status and one {"error": ...} line. Each
// event of an open stream follows as one line of JSON (newline-delimited
// JSON, {"result": ...} or {"error": ...}).
func openStream(ctx context.Context, w http.ResponseWriter, msg proto.Message) error {
	if msg != nil {
		return nil
	}
	if md, ok := runtime.ServerMetadataFromContext(ctx); !ok || md.HeaderMD == nil {
		return nil // no gRPC headers: the stream ended before it opened
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	return http.NewResponseController(w).Flush()
}
