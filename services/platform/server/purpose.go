package server

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/policy"
)

// policyCheck runs after validation: the declared purpose must be allowed
// (never ADVERTISING or MARKETING, and one the client is configured for),
// then the consent hook decides. Requests without a purpose field (internal
// and adapter protocols) pass.
func policyCheck(clients policy.Clients, consent policy.ConsentChecker) func(context.Context, proto.Message) error {
	return func(ctx context.Context, req proto.Message) error {
		purpose, ok := policy.PurposeOf(req)
		if !ok {
			return nil
		}
		a := policy.AccessFrom(ctx)
		if a == nil {
			a = &policy.Access{}
		}
		a.Purpose = purpose
		p, _ := auth.PrincipalFrom(ctx)
		if err := clients.CheckPurpose(p.Client, purpose); err != nil {
			return err
		}
		if consent == nil {
			return nil
		}
		return consent.CheckConsent(ctx, a)
	}
}

func policyUnary(clients policy.Clients, consent policy.ConsentChecker) grpc.UnaryServerInterceptor {
	return unaryCheck(policyCheck(clients, consent))
}

func policyStream(clients policy.Clients, consent policy.ConsentChecker) grpc.StreamServerInterceptor {
	return streamCheck(policyCheck(clients, consent))
}
