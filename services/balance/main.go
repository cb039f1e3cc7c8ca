// Command balance serves bankbridge.balance.v1.BalanceService: a user's
// accounts, balances and transactions at the banks they linked, read through
// each bank's adapter under the user's consent. See the package README in
// the repository root for flags; every flag is also a BANKBRIDGE_*
// environment variable. It takes the kit's flags alone.
package main

import (
	"context"
	"log/slog"

	"google.golang.org/grpc"

	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/balance/internal/app"
	"github.com/bankbridge/bankbridge/services/balance/internal/banks"
	"github.com/bankbridge/bankbridge/services/balance/internal/transport"
	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck"
)

func main() { bootstrap.Main("balance", run) }

func run(ctx context.Context, args []string) error {
	cfg := bootstrap.Defaults("balance", "127.0.0.1:9102", "127.0.0.1:9202")
	return bootstrap.Run(ctx, args, bootstrap.Spec{
		Config: &cfg,
		Needs:  bootstrap.Needs{Banks: true, Consent: true},
		Start: func(_ context.Context, d *bootstrap.Deps) (bootstrap.Service, error) {
			svc, err := app.New(banks.New(d.Banks), consents{checker: d.Consent, log: d.Logger}, app.Config{Pages: d.PageTokens, Now: d.Now})
			if err != nil {
				return bootstrap.Service{}, err
			}
			h := transport.NewBalanceServer(svc)
			return bootstrap.Service{GRPC: func(r grpc.ServiceRegistrar) { balancev1.RegisterBalanceServiceServer(r, h) }}, nil
		},
	})
}

// consents is the platform's consent checker as the app's port.
type consents struct {
	checker *consentcheck.Checker
	log     *slog.Logger
}

func (c consents) ReportBankRevocation(ctx context.Context, link string) {
	if err := c.checker.ReportBankRevocation(ctx, link); err != nil {
		c.log.ErrorContext(ctx, "bank revocation not reported to the consent service", slog.String("error", err.Error()))
	}
}

func (c consents) Decide(ctx context.Context, user, bankID string, scope commonv1.Scope, purpose commonv1.Purpose) (app.Consent, error) {
	d, err := c.checker.Decide(ctx, user, consentcheck.Need{Scope: scope, BankID: bankID}, purpose)
	return app.Consent{Link: d.Link, BankConsentID: d.BankConsentID}, err
}
