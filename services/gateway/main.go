package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"strings"
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
	if g.Backends == nil {
		g.Backends = map[string]string{}
	}
	for _, name := range Backends() {
		fs.Func(name+"-addr", name+" service gRPC address (not routed when empty)", func(v string) error {
			g.Backends[name] = v
			return nil
		})
	}
	fs.StringVar(&g.ShippingHTTPAddr, "shipping-http-addr", g.ShippingHTTPAddr, "shipping service's public HTTP address (host:port), for carriers' signed pushes to "+carrierPushRoute+" (not served when empty)")
	fs.Int64Var(&g.MaxBodyBytes, "max-body-bytes", g.MaxBodyBytes, "largest request body accepted (larger: 413)")
	fs.IntVar(&g.MaxHeaderBytes, "max-header-bytes", g.MaxHeaderBytes, "largest request header fields accepted, all together (larger: 431)")
	fs.DurationVar(&g.RequestTimeout, "request-timeout", g.RequestTimeout, "deadline of a non-streaming call")
	fs.StringVar(&g.DevIssuer, "dev-issuer", g.DevIssuer, "iss of dev tokens (dev mode)")
	fs.StringVar(&g.DevAudience, "dev-audience", g.DevAudience, "aud of dev tokens (dev mode)")
	fs.StringVar(&g.DevInternalAudience, "dev-internal-audience", g.DevInternalAudience, "aud of the dev tokens services ask /oauth/token for, for internal methods (dev mode); the services' --internal-audience")
	fs.StringVar(&g.DevClient, "dev-client", g.DevClient, "client id of dev user tokens (dev mode)")
	fs.StringVar(&g.DevServiceClients, "dev-service-clients", g.DevServiceClients, "service client ids the dev /oauth/token endpoint serves (dev mode)")
	fs.StringVar(&g.DevServiceSecret, "dev-service-secret", g.DevServiceSecret, "their shared client secret (dev mode)")
	fs.StringVar(&g.DevPartnerClients, "dev-partner-clients", g.DevPartnerClients, "partner client ids the dev /oauth/token endpoint serves too (dev mode); the services must list them in --partner-clients")
	fs.StringVar(&g.DevPartnerSecret, "dev-partner-secret", g.DevPartnerSecret, "their shared client secret (dev mode)")
	fs.StringVar(&g.DevOperatorClient, "dev-operator-client", g.DevOperatorClient, "operator client whose own token POST /v1/dev/tokens mints with {\"operator\": true} (dev mode); the services must list it in --operator-clients")
}

// Validate checks the gateway's own settings. --dev-mode is the kit's
// (bootstrap), which also keeps a dev-mode gateway on a loopback address.
func (c *config) Validate() error {
	c.Gateway.DevMode = c.Server.DevMode
	g := c.Gateway
	if g.ShippingHTTPAddr != "" {
		if _, _, err := net.SplitHostPort(g.ShippingHTTPAddr); err != nil || strings.Contains(g.ShippingHTTPAddr, "/") {
			return fmt.Errorf("--shipping-http-addr (BANKBRIDGE_SHIPPING_HTTP_ADDR) %q: want host:port", g.ShippingHTTPAddr)
		}
	}
	switch {
	case g.DevMode && g.DevServiceSecret == "":
		return errors.New("--dev-service-secret (BANKBRIDGE_DEV_SERVICE_SECRET) is required in dev mode")
	case g.DevMode && g.DevPartnerSecret == "" && strings.TrimSpace(g.DevPartnerClients) != "":
		return errors.New("--dev-partner-secret (BANKBRIDGE_DEV_PARTNER_SECRET) is required in dev mode with --dev-partner-clients")
	}
	return nil
}

func run(ctx context.Context, args []string) error {
	cfg := config{
		Config: bootstrap.Defaults("gateway", "", ""),
		Gateway: Config{
			MaxBodyBytes:        1 << 20,
			MaxHeaderBytes:      DefaultMaxHeaderBytes,
			RequestTimeout:      30 * time.Second,
			DevIssuer:           "http://127.0.0.1:8080",
			DevAudience:         "bankbridge",
			DevInternalAudience: auth.DefaultInternalAudience,
			DevClient:           "dev-client",
			DevServiceClients:   strings.Join(Backends(), ","),
			DevPartnerClients:   "demo-partner",
			DevPartnerSecret:    "dev-partner-secret",
			DevOperatorClient:   "dev-oncall",
		},
	}
	cfg.HTTPAddr = "127.0.0.1:8080"
	cfg.Server.AdminAddr = "127.0.0.1:9200" // /healthz, /readyz, /metrics
	return bootstrap.Run(ctx, args, bootstrap.Spec{
		Kind:   bootstrap.KindGateway,
		Config: &cfg,
		Start: func(ctx context.Context, d *bootstrap.Deps) (bootstrap.Service, error) {
			var issuer *auth.DevIssuer
			if cfg.Gateway.DevMode {
				var err error
				if issuer, err = auth.NewDevIssuer(true, cfg.Gateway.DevIssuer, cfg.Gateway.DevAudience,
					auth.WithInternalAudience(cfg.Gateway.DevInternalAudience)); err != nil {
					return bootstrap.Service{}, err
				}
			}
			// Mutual TLS to the services, with the gateway's certificate
			// (plaintext with --plaintext, dev mode only).
			cfg.Gateway.BackendCredentials, cfg.Gateway.BackendTLS = d.TransportCredentials, d.ClientTLS
			g, err := New(ctx, cfg.Gateway, d.Telemetry, issuer)
			if err != nil {
				return bootstrap.Service{}, err
			}
			// The listener's own header limit stops what is far over ours
			// before it is read whole (edge.go answers what is just over).
			return bootstrap.Service{HTTP: g.Handler(), Close: g.Close, MaxHeaderBytes: 2 * cfg.Gateway.MaxHeaderBytes,
				Probes: g.Probes()}, nil
		},
	})
}
