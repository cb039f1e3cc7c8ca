package server_test

import (
	"testing"
)

// BenchmarkInterceptorChain measures one small unary call (GetBalance)
// through the whole kit over a real loopback connection: stats handler,
// recovery, trace id, logging, masking, audit, JWT verification, user
// binding, protovalidate, purpose and consent hooks. Run with
// `make bench-platform`; the figure is recorded in the README.
func BenchmarkInterceptorChain(b *testing.B) {
	e := startExample(b, exampleOpts{quiet: true, loadLimits: true})
	ctx := e.as(b, "alice")
	req := aliceBalance
	if _, err := e.balance.GetBalance(ctx, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.balance.GetBalance(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
