package main

import (
	"context"
	"errors"
	"flag"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
)

func main() { bootstrap.Main("gateway", run) }

// config is the kit's config (listen address, log level, drain) plus the
// gateway's own.
type config struct {
	bootstrap.Config
	Gateway Config
}

// RegisterFlags binds the gateway's own flags, after the kit's.
func (c *config) RegisterFlags(fs *flag.FlagSet) {
	g := &c.Gateway
	fs.StringVar(&g.ConsentAddr, "consent-addr", g.ConsentAddr, "consent service gRPC address")
	fs.StringVar(&g.BalanceAddr, "balance-addr", g.BalanceAddr, "balance service gRPC address")
	fs.StringVar(&g.ReceiptsAddr, "receipts-addr", g.ReceiptsAddr, "receipts service gRPC address")
	fs.StringVar(&g.ShippingAddr, "shipping-addr", g.ShippingAddr, "shipping service gRPC address")
	fs.StringVar(&g.SupportAddr, "support-addr", g.SupportAddr, "support service gRPC address")
	fs.StringVar(&g.WebhooksAddr, "webhooks-addr", g.WebhooksAddr, "webhooks service gRPC address")
	fs.Int64Var(&g.MaxBodyBytes, "max-body-bytes", g.MaxBodyBytes, "largest request body accepted")
	fs.DurationVar(&g.RequestTimeout, "request-timeout", g.RequestTimeout, "deadline of a non-streaming call")
	fs.BoolVar(&g.DevMode, "dev-mode", g.DevMode, "serve the dev token issuer (never in production)")
	fs.StringVar(&g.DevIssuer, "dev-issuer", g.DevIssuer, "iss of dev tokens (dev mode)")
	fs.StringVar(&g.DevAudience, "dev-audience", g.DevAudience, "aud of dev tokens (dev mode)")
	fs.StringVar(&g.DevClient, "dev-client", g.DevClient, "client id of dev user tokens (dev mode)")
	fs.StringVar(&g.DevServiceClients, "dev-service-clients", g.DevServiceClients, "service client ids the dev /oauth/token endpoint serves (dev mode)")
	fs.StringVar(&g.DevServiceSecret, "dev-service-secret", g.DevServiceSecret, "their shared client secret (dev mode)")
}

// Validate checks the gateway's own settings.
func (c *config) Validate() error {
	if c.Gateway.DevMode && c.Gateway.DevServiceSecret == "" {
		return errors.New("--dev-service-secret (BANKBRIDGE_DEV_SERVICE_SECRET) is required in dev mode")
	}
	return nil
}

func run(ctx context.Context, args []string) error {
	cfg := config{
		Config: bootstrap.Defaults("gateway", "", ""),
		Gateway: Config{
			MaxBodyBytes:      1 << 20,
			RequestTimeout:    30 * time.Second,
			DevIssuer:         "http://127.0.0.1:8080",
			DevAudience:       "bankbridge",
			DevClient:         "dev-client",
			DevServiceClients: "balance,consent,receipts,shipping,support",
		},
	}
	cfg.HTTPAddr = "127.0.0.1:8080"
	return bootstrap.Run(ctx, args, bootstrap.Spec{
		Kind:   bootstrap.KindGateway,
		Config: &cfg,
		Start: func(ctx context.Context, d *bootstrap.Deps) (bootstrap.Service, error) {
			var issuer *auth.DevIssuer
			if cfg.Gateway.DevMode {
				var err error
				if issuer, err = auth.NewDevIssuer(true, cfg.Gateway.DevIssuer, cfg.Gateway.DevAudience); err != nil {
					return bootstrap.Service{}, err
				}
			}
			g, err := New(ctx, cfg.Gateway, d.Telemetry, issuer)
			if err != nil {
				return bootstrap.Service{}, err
			}
			return bootstrap.Service{HTTP: g.Handler(), Close: g.Close}, nil
		},
	})
}
