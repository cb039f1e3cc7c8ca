// Command balance serves bankbridge.balance.v1.BalanceService: a user's
// accounts, balances and transactions at the banks they linked, read through
// each bank's adapter under the user's consent. See the package README in
// the repository root for flags; every flag is also a BANKBRIDGE_*
// environment variable.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"

	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "balance:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	cfg := bootstrap.Defaults("balance", "127.0.0.1:9102", "127.0.0.1:9202")
	if err := cfg.Parse(args); err != nil {
		return err
	}
	svc := &service{
		lastKnown: newLastKnown(24*time.Hour, time.Now),
		accounts:  newAccountCache(time.Minute, 24*time.Hour, time.Now),
		now:       time.Now,
	}
	// The consent hook resolves calls through the service, which needs the
	// registry Start builds; no call arrives before Serve.
	rt, err := bootstrap.Start(ctx, cfg, svc.resolve)
	if err != nil {
		return err
	}
	defer rt.Close()
	if rt.Banks == nil || rt.Consent == nil {
		return fmt.Errorf("balance needs --banks and --consent-addr")
	}
	svc.banks, svc.grants = rt.Banks, rt.Consent
	return rt.Serve(ctx, func(r grpc.ServiceRegistrar) {
		balancev1.RegisterBalanceServiceServer(r, svc)
	})
}
