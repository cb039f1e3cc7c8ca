// Package servertest serves a service's handlers through the server kit
// (server.New, the real interceptor chain) on 127.0.0.1:0, with a dev token
// issuer whose keys the chain fetches from a real JWKS endpoint: the
// harness of handler-level tests, with fakes for consent and banks in
// server.Deps. Import it from _test.go files only.
package servertest

import (
	"context"
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// The tokens the server accepts: issued by Issuer for Audience (internal
// methods: for the config's InternalAudience, Server.Issuer.MintInternal);
// Client is
// the client the user tokens of Server.Issuer.Mint name, allowed the
// purposes ACCOUNT_INFORMATION and ORDER_TRACKING. Partner is configured as
// a partner (--partner-clients): its client-credentials token,
// Server.Issuer.Mint(Partner, Partner, ttl), calls partner methods
// (AUDIENCE_PARTNER) under clients/test-partner, and nothing else.
// Operator is configured as an operator (--operator-clients): its
// client-credentials token, Server.Issuer.Mint(Operator, Operator, ttl),
// calls operator methods (AUDIENCE_OPERATOR), and nothing else.
const (
	Issuer   = "https://issuer.test"
	Audience = "bankbridge"
	Client   = "chat-app"
	Partner  = "test-partner"
	Operator = "test-operator"
)

// stopTimeout bounds how long the cleanup waits for Serve to return.
const stopTimeout = 10 * time.Second

// Options change the server a test gets.
type Options struct {
	// Name is the service name; default "test".
	Name string
	// Telemetry is the telemetry setup; by default logs are discarded and
	// nothing is exported. ServiceName defaults to Name.
	Telemetry telemetry.Config
	// Config edits the server config, which starts in dev mode on
	// 127.0.0.1:0 (gRPC and admin), with no drain delay and a 2 s grace,
	// Client's purposes, Partner as the one partner and Operator as the
	// one operator.
	Config func(*server.Config)
}

// Server is a running test server and a client connection to it.
type Server struct {
	*server.Server
	Conn      *grpc.ClientConn
	Issuer    *auth.DevIssuer
	Telemetry *telemetry.Telemetry
	Verifier  *auth.Verifier
	// Stop ends the context Serve runs on, as SIGTERM does; Done then
	// receives what Serve returned. The cleanup receives from Done too: a
	// test that took Serve's result sends one back.
	Stop context.CancelFunc
	Done chan error
}

// Start serves what register registers, with deps (Telemetry and Verifier
// are filled in), until the test ends.
func Start(t testing.TB, deps server.Deps, register func(grpc.ServiceRegistrar), o Options) *Server {
	t.Helper()
	if o.Name == "" {
		o.Name = "test"
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cfg := server.Defaults(o.Name, "127.0.0.1:0", "127.0.0.1:0")
	cfg.DevMode = true
	cfg.DrainDelay = 0
	cfg.ShutdownGrace = 2 * time.Second
	cfg.ClientPurposes = Client + "=ACCOUNT_INFORMATION,ORDER_TRACKING"
	cfg.PartnerClients = Partner
	cfg.OperatorClients = Operator
	if o.Config != nil {
		o.Config(&cfg)
	}
	issuer, err := auth.NewDevIssuer(true, Issuer, Audience, auth.WithInternalAudience(cfg.InternalAudience))
	if err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(issuer.JWKSHandler())
	t.Cleanup(jwks.Close)
	tcfg := o.Telemetry
	if tcfg.ServiceName == "" {
		tcfg.ServiceName = o.Name
	}
	if tcfg.LogOutput == nil {
		tcfg.LogOutput = io.Discard
	}
	tel, err := telemetry.Setup(ctx, tcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	// A short MinRefresh: a test with a key the JWKS does not have yet
	// need not wait.
	verifier, err := auth.NewVerifier(ctx, auth.Config{Issuer: Issuer, Audience: Audience, InternalAudience: cfg.InternalAudience,
		JWKSURL: jwks.URL, MinRefresh: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = verifier.Close(context.Background()) })
	deps.Telemetry, deps.Verifier = tel, verifier
	srv, err := server.New(cfg, deps, register)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		cancel()
		select {
		case <-done:
		case <-time.After(stopTimeout):
			t.Error("server did not stop")
		}
	})
	return &Server{Server: srv, Conn: conn, Issuer: issuer, Telemetry: tel, Verifier: verifier, Stop: cancel, Done: done}
}
