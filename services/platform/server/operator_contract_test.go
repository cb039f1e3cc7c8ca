package server_test

// On-call operators read across users, so their door is narrow both ways:
// every method of every contract is tried with an operator's token, and
// every operator method with everyone else's, through the real chain.

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck/consenttest"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// TestOperatorMethodsTakeOnlyAnOperatorsToken serves every contract at
// once. An operator's own token is refused by every method that is not an
// operator method (AUDIENCE_OPERATOR), PERMISSION_DENIED with
// CLIENT_NOT_ALLOWED, and passes authn on operator methods; a user's, a
// product client's, a partner's, a bankbridge service's token and a user's
// token through the operator client are refused by every operator method.
func TestOperatorMethodsTakeOnlyAnOperatorsToken(t *testing.T) {
	t.Parallel()
	all := servertest.ContractServices(t)
	consent := consenttest.New()
	s := servertest.Start(t, server.Deps{Consent: consent, Recorder: consent, Banks: knownBanks{"sandbox": true}},
		func(r grpc.ServiceRegistrar) { servertest.RegisterStubs(r, all, stubReached) },
		servertest.Options{Name: "every-contract", Config: func(c *server.Config) {
			c.InternalClients = "consent"
			// Purposes too, as a misconfiguration might: they do not let
			// an operator read through a public method.
			c.ClientPurposes += ";" + servertest.Operator + "=ACCOUNT_INFORMATION,CONSENT_MANAGEMENT"
		}})
	mint := func(sub, client string) context.Context {
		tok, err := s.Issuer.Mint(sub, client, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+tok, "bankbridge-purpose", "ACCOUNT_INFORMATION")
	}
	internal, err := s.Issuer.MintInternal("consent", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	operator := mint(servertest.Operator, servertest.Operator)
	others := map[string]context.Context{
		"a user's token":                             mint("alice", servertest.Client),
		"a product client's own token":               mint(servertest.Client, servertest.Client),
		"a partner's token":                          mint(servertest.Partner, servertest.Partner),
		"a user's token through the operator client": mint("alice", servertest.Operator),
		"a bankbridge service's token":               metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+internal),
	}

	refused, operatorMethods := 0, 0
	for _, sd := range all {
		isOperator := servertest.AudienceOf(sd) == commonv1.Audience_AUDIENCE_OPERATOR
		for i := range sd.Methods().Len() {
			md := sd.Methods().Get(i)
			if !isOperator {
				t.Run(fmt.Sprintf("%s.%s/operator's token", sd.Name(), md.Name()), func(t *testing.T) {
					meta := testkit.RequireReason(t, invoke(operator, s.Conn, md), commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED)
					if meta["client_id"] != servertest.Operator {
						t.Errorf("ErrorInfo metadata %v, want client_id %s", meta, servertest.Operator)
					}
					refused++
				})
				continue
			}
			operatorMethods++
			t.Run(fmt.Sprintf("%s.%s/operator's token", sd.Name(), md.Name()), func(t *testing.T) {
				// The empty request fails validation, after authn: the
				// operator's token passed it.
				if code := status.Code(invoke(operator, s.Conn, md)); code == codes.PermissionDenied || code == codes.Unauthenticated {
					t.Errorf("an operator method refused the operator's own token: %v", code)
				}
			})
			for name, ctx := range others {
				t.Run(fmt.Sprintf("%s.%s/%s", sd.Name(), md.Name(), name), func(t *testing.T) {
					testkit.RequireReason(t, invoke(ctx, s.Conn, md), commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED)
				})
			}
		}
	}
	// The contracts have dozens of methods; a handful means the descriptor
	// set was not read.
	if refused < 40 || operatorMethods < 1 {
		t.Errorf("%d refusals over non-operator methods, %d operator methods: the contracts have more", refused, operatorMethods)
	}
	for _, e := range consent.Entries() {
		if e.ClientID == servertest.Operator {
			t.Errorf("an operator's call reached an access log through the kit: %+v", e)
		}
	}
}

// TestNoPublicMethodServesIncidentResponse: PURPOSE_INCIDENT_RESPONSE is
// what the operator's look-up records in users' logs; a public method that
// listed it would let a product client declare on-call's purpose.
func TestNoPublicMethodServesIncidentResponse(t *testing.T) {
	t.Parallel()
	public := servertest.ContractServices(t, commonv1.Audience_AUDIENCE_PUBLIC)
	methods := 0
	for _, sd := range public {
		for i := range sd.Methods().Len() {
			md := sd.Methods().Get(i)
			methods++
			rule, _ := proto.GetExtension(md.Options(), commonv1.E_Access).(*commonv1.AccessRule)
			if slices.Contains(rule.GetPurposes(), commonv1.Purpose_PURPOSE_INCIDENT_RESPONSE) {
				t.Errorf("%s lists PURPOSE_INCIDENT_RESPONSE: only the operator look-up records it", md.FullName())
			}
		}
	}
	if methods < 20 {
		t.Errorf("%d public methods: the contracts have more", methods)
	}
}
