package server_test

// Third parties get nothing: every method of every bankbridge contract
// that is not a partner method — every read, every user's write, every
// client and internal method — is tried with a partner's token, through
// the real chain. The methods come from the compiled descriptor set, so a
// new RPC is tried as soon as it is in a contract.

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	// Every contract's Go package, so the registry knows its services
	// (servertest.ContractServices fails for one that is missing).
	_ "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	_ "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	_ "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	_ "github.com/bankbridge/bankbridge/gen/bankbridge/receipts/v1"
	_ "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	_ "github.com/bankbridge/bankbridge/gen/bankbridge/support/v1"
	_ "github.com/bankbridge/bankbridge/gen/bankbridge/webhooks/v1"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck/consenttest"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// stubReached is what every stub method answers: the call passed the chain.
var stubReached = status.Error(codes.Aborted, "the stub handler was reached")

// invoke calls method md on conn with an empty request, unary or stream,
// and returns what the call ended with.
func invoke(ctx context.Context, conn *grpc.ClientConn, md protoreflect.MethodDescriptor) error {
	full := fmt.Sprintf("/%s/%s", md.Parent().FullName(), md.Name())
	message := func(d protoreflect.MessageDescriptor) proto.Message {
		mt, err := protoregistry.GlobalTypes.FindMessageByName(d.FullName())
		if err != nil {
			panic(err)
		}
		return mt.New().Interface()
	}
	if !md.IsStreamingClient() && !md.IsStreamingServer() {
		return conn.Invoke(ctx, full, message(md.Input()), message(md.Output()))
	}
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: md.IsStreamingServer(), ClientStreams: md.IsStreamingClient()}, full)
	if err != nil {
		return err
	}
	if err := stream.SendMsg(message(md.Input())); err != nil && err != io.EOF {
		return err
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	return stream.RecvMsg(message(md.Output()))
}

// TestAPartnersTokenCallsPartnerMethodsOnly serves every contract at once
// and calls each of its methods with a partner's own token and with a
// user's token through the partner: every method that is not a partner
// method refuses both, PERMISSION_DENIED with CLIENT_NOT_ALLOWED, before
// its handler; partner methods take the partner's own token (and then
// refuse the empty request, as validation comes after authn).
func TestAPartnersTokenCallsPartnerMethodsOnly(t *testing.T) {
	t.Parallel()
	all := servertest.ContractServices(t)
	consent := consenttest.New()
	s := servertest.Start(t, server.Deps{Consent: consent, Recorder: consent, Banks: knownBanks{"sandbox": true}},
		func(r grpc.ServiceRegistrar) { servertest.RegisterStubs(r, all, stubReached) },
		servertest.Options{Name: "every-contract", Config: func(c *server.Config) {
			c.InternalClients = "consent"
			// Purposes too, as a misconfiguration might: they do not let
			// a partner read.
			c.ClientPurposes += ";" + servertest.Partner + "=ACCOUNT_INFORMATION,ORDER_TRACKING"
		}})
	mint := func(sub string) context.Context {
		tok, err := s.Issuer.Mint(sub, servertest.Partner, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+tok, "bankbridge-purpose", "ACCOUNT_INFORMATION")
	}
	tokens := map[string]context.Context{
		"the partner's own token":            mint(servertest.Partner),
		"a user's token through the partner": mint("alice"),
	}

	refused, served := 0, 0
	for _, sd := range all {
		partnerMethods := servertest.AudienceOf(sd) == commonv1.Audience_AUDIENCE_PARTNER
		for i := range sd.Methods().Len() {
			md := sd.Methods().Get(i)
			for name, ctx := range tokens {
				t.Run(fmt.Sprintf("%s.%s/%s", sd.Name(), md.Name(), name), func(t *testing.T) {
					err := invoke(ctx, s.Conn, md)
					if partnerMethods {
						// The empty request fails validation, after authn:
						// the partner's own token passed it.
						if code := status.Code(err); name == "the partner's own token" && (code == codes.PermissionDenied || code == codes.Unauthenticated) {
							t.Errorf("a partner method refused the partner's own token: %v", err)
						}
						return
					}
					meta := testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED)
					if meta["client_id"] != servertest.Partner {
						t.Errorf("ErrorInfo metadata %v, want client_id %s", meta, servertest.Partner)
					}
					refused++
				})
			}
			if partnerMethods {
				served++
			}
		}
	}
	// The contracts have dozens of methods; a handful means the descriptor
	// set was not read.
	if refused < 2*40 || served < 2 {
		t.Errorf("%d refusals over %d non-partner methods, %d partner methods: the contracts have more", refused, refused/2, served)
	}
	// Nothing a partner tried reached a user's access log.
	for _, e := range consent.Entries() {
		if e.ClientID == servertest.Partner {
			t.Errorf("a partner's call reached an access log: %+v", e)
		}
	}
}
