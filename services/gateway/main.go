package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/peterbourgon/ff/v3"

	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func parseConfig(args []string) (Config, error) {
	cfg := Config{
		Addr:              "127.0.0.1:8080",
		MaxBodyBytes:      1 << 20,
		RequestTimeout:    30 * time.Second,
		DevIssuer:         "http://127.0.0.1:8080",
		DevAudience:       "bankbridge",
		DevClient:         "dev-client",
		DevServiceClients: "balance,consent,receipts,shipping,support",
	}
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "HTTP listen address")
	fs.StringVar(&cfg.ConsentAddr, "consent-addr", "", "consent service gRPC address")
	fs.StringVar(&cfg.BalanceAddr, "balance-addr", "", "balance service gRPC address")
	fs.StringVar(&cfg.ReceiptsAddr, "receipts-addr", "", "receipts service gRPC address")
	fs.StringVar(&cfg.ShippingAddr, "shipping-addr", "", "shipping service gRPC address")
	fs.StringVar(&cfg.SupportAddr, "support-addr", "", "support service gRPC address")
	fs.Int64Var(&cfg.MaxBodyBytes, "max-body-bytes", cfg.MaxBodyBytes, "largest request body accepted")
	fs.DurationVar(&cfg.RequestTimeout, "request-timeout", cfg.RequestTimeout, "deadline of a non-streaming call")
	fs.BoolVar(&cfg.DevMode, "dev-mode", false, "serve the dev token issuer (never in production)")
	fs.StringVar(&cfg.DevIssuer, "dev-issuer", cfg.DevIssuer, "iss of dev tokens (dev mode)")
	fs.StringVar(&cfg.DevAudience, "dev-audience", cfg.DevAudience, "aud of dev tokens (dev mode)")
	fs.StringVar(&cfg.DevClient, "dev-client", cfg.DevClient, "client id of dev user tokens (dev mode)")
	fs.StringVar(&cfg.DevServiceClients, "dev-service-clients", cfg.DevServiceClients, "service client ids the dev /oauth/token endpoint serves (dev mode)")
	fs.StringVar(&cfg.DevServiceSecret, "dev-service-secret", "", "their shared client secret (dev mode)")
	if err := ff.Parse(fs, args, ff.WithEnvVarPrefix("BANKBRIDGE")); err != nil {
		return cfg, err
	}
	if cfg.DevMode && cfg.DevServiceSecret == "" {
		return cfg, errors.New("--dev-service-secret (BANKBRIDGE_DEV_SERVICE_SECRET) is required in dev mode")
	}
	return cfg, nil
}

func run(ctx context.Context, args []string) error {
	cfg, err := parseConfig(args)
	if err != nil {
		return err
	}
	tel, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: "gateway", ServiceVersion: "dev"})
	if err != nil {
		return err
	}
	defer func() { _ = tel.Shutdown(context.WithoutCancel(ctx)) }()
	var issuer *auth.DevIssuer
	if cfg.DevMode {
		if issuer, err = auth.NewDevIssuer(true, cfg.DevIssuer, cfg.DevAudience); err != nil {
			return err
		}
	}
	g, err := New(ctx, cfg, tel, issuer)
	if err != nil {
		return err
	}
	defer g.Close()
	lis, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	tel.Logger.Info("serving", "addr", lis.Addr().String(), "component", "gateway")
	return g.Serve(ctx, lis)
}
