// Command demochat is the demo chat: a small web app that shows, the way a
// product team's chat would, what bankbridge offers a user — linking a bank
// with two-factor authentication, balances and transactions, receipts,
// parcels, fraud alerts, the bank's support agent, the user's access log
// and revocation. `make dev` starts it on http://127.0.0.1:8088.
//
// The page is a client of the public REST API only: this server passes its
// /v1/ calls through to the gateway unchanged (the same origin for the
// browser: no CORS), with a dev token the page mints at /v1/dev/tokens.
// Beside that, and for development only, its /demo/ endpoints play the
// world outside the chat through the sandbox bank's admin listener and a
// dev partner's credentials: a partner's receipt, the carrier moving a
// parcel, a fraud alert, the bank's agent taking over and handing back.
//
// It listens on loopback only, in plain HTTP: a browser treats
// http://127.0.0.1 as a secure context (Web Crypto works), and there is no
// certificate to trust. Every flag is also a BANKBRIDGE_* environment
// variable (--partner-secret is BANKBRIDGE_PARTNER_SECRET).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/peterbourgon/ff/v3"

	"github.com/bankbridge/bankbridge/services/demochat/internal/demo"
	"github.com/bankbridge/bankbridge/services/demochat/web"
	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
)

func main() { bootstrap.Main("demochat", run) }

// config is the demo chat's settings.
type config struct {
	Addr          string
	GatewayURL    string
	SandboxAdmin  string
	CAFile        string
	PartnerClient string
	PartnerSecret string
}

func (c *config) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", c.Addr, "`host:port` to serve the page on; loopback only")
	fs.StringVar(&c.GatewayURL, "gateway-url", c.GatewayURL, "the REST gateway's base `URL`; /v1/ is passed through to it")
	fs.StringVar(&c.SandboxAdmin, "sandbox-admin-url", c.SandboxAdmin, "the sandbox bank's admin listener's base `URL`, which the demo triggers call")
	fs.StringVar(&c.CAFile, "ca-file", c.CAFile, "PEM `file` of the CA the gateway's and the sandbox's certificates are signed by (the dev stack's .dev/tls/ca.pem); empty: the system's roots")
	fs.StringVar(&c.PartnerClient, "partner-client", c.PartnerClient, "the dev partner the receipt trigger pushes as")
	fs.StringVar(&c.PartnerSecret, "partner-secret", c.PartnerSecret, "that partner's client secret (set BANKBRIDGE_PARTNER_SECRET rather than the flag)")
}

func run(ctx context.Context, args []string) error {
	cfg := config{
		Addr:          "127.0.0.1:8088",
		GatewayURL:    "https://127.0.0.1:8080",
		SandboxAdmin:  "https://127.0.0.1:9401",
		PartnerClient: "demo-partner",
	}
	fs := flag.NewFlagSet("demochat", flag.ContinueOnError)
	cfg.flags(fs)
	if err := ff.Parse(fs, args, ff.WithEnvVarPrefix("BANKBRIDGE")); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With(slog.String("service", "demochat"))
	handler, err := newHandler(cfg, log)
	if err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
		return fmt.Errorf("--addr %q: the demo chat serves a loopback address only (it is a dev tool, in plain HTTP)", cfg.Addr)
	}
	lis, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	log.Info("demo chat serving", slog.String("url", "http://"+lis.Addr().String()+"/"),
		slog.String("gateway", cfg.GatewayURL))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	// Open streams never end by themselves: give the rest a moment.
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	_ = srv.Close()
	return nil
}

// newHandler checks the config and builds the server's handler.
func newHandler(cfg config, log *slog.Logger) (http.Handler, error) {
	gw, err := baseURL("--gateway-url", cfg.GatewayURL)
	if err != nil {
		return nil, err
	}
	admin, err := baseURL("--sandbox-admin-url", cfg.SandboxAdmin)
	if err != nil {
		return nil, err
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		tlsConfig.RootCAs = x509.NewCertPool()
		if !tlsConfig.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-file %s: no PEM certificate in it", cfg.CAFile)
		}
	}
	return demo.Handler(demo.Config{
		Gateway: gw, SandboxAdmin: admin, TLS: tlsConfig,
		PartnerClient: cfg.PartnerClient, PartnerSecret: cfg.PartnerSecret,
		Assets: web.Files, Log: log,
	}), nil
}

// baseURL parses an upstream's base URL: http or https, a host, no path.
func baseURL(flagName, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("%s %q: want a base URL such as https://127.0.0.1:8080", flagName, raw)
	}
	u.Path = ""
	return u, nil
}
