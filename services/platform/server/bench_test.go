package server_test

import (
	"context"
	"fmt"
	"testing"

	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
)

// benchUsers is how many users the benchmark's calls are spread over, in
// turn, each with its own token, as production traffic is: one user's
// token would be one entry of the verified-token cache and one user's
// rate-limit bucket, which no real load looks like.
const benchUsers = 1000

// BenchmarkInterceptorChain measures one small unary call (GetBalance)
// through the whole kit over a real loopback connection: stats handler,
// recovery, trace id, logging, masking, audit, JWT verification, user
// binding, rate limits, protovalidate, purpose and consent hooks; each
// call is another of benchUsers users', on that user's own balance. Run
// with `make bench-platform`; the figure is recorded in the README.
func BenchmarkInterceptorChain(b *testing.B) {
	e := startExample(b, exampleOpts{quiet: true, loadLimits: true})
	ctxs := make([]context.Context, benchUsers)
	reqs := make([]*balancev1.GetBalanceRequest, benchUsers)
	for i := range benchUsers {
		user := fmt.Sprintf("bench-%04d", i)
		ctxs[i] = e.as(b, user)
		reqs[i] = &balancev1.GetBalanceRequest{Name: "users/" + user + "/accounts/sandbox~a1/balance"}
		// The first call of each user verifies its token (ES256); the
		// cache of verified tokens holds 10,000, so the measured calls
		// are the steady state of 1,000 users calling again and again.
		if _, err := e.balance.GetBalance(ctxs[i], reqs[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := e.balance.GetBalance(ctxs[i], reqs[i]); err != nil {
			b.Fatal(err)
		}
		i = (i + 1) % benchUsers
	}
}
