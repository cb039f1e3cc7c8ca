package server_test

// Client methods (AUDIENCE_CLIENT): a product team's client manages its own
// resources under clients/{client}, such as webhook endpoints, with its own
// client-credentials token. Served here through the real chain with the
// real WebhooksService contract and canned answers.

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	webhooksv1 "github.com/bankbridge/bankbridge/gen/bankbridge/webhooks/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/server/servertest"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

type exampleWebhooks struct {
	webhooksv1.UnimplementedWebhooksServiceServer
}

// GetEndpoint answers with the name it was asked for, and fails loudly if
// the kit made it a grant: client calls read no user's data.
func (exampleWebhooks) GetEndpoint(ctx context.Context, req *webhooksv1.GetEndpointRequest) (*webhooksv1.GetEndpointResponse, error) {
	if _, ok := access.LookupGrant(ctx); ok {
		return nil, status.Error(codes.FailedPrecondition, "a client call got a user grant")
	}
	return &webhooksv1.GetEndpointResponse{Endpoint: &webhooksv1.Endpoint{Name: req.GetName()}}, nil
}

type clientExample struct {
	client webhooksv1.WebhooksServiceClient
	srv    *servertest.Server
	logs   *testkit.SyncBuffer
}

// startClientExample serves only a client service: it needs neither a
// consent checker nor an access-log recorder.
func startClientExample(t *testing.T) *clientExample {
	t.Helper()
	logs := &testkit.SyncBuffer{}
	s := servertest.Start(t, server.Deps{}, func(r grpc.ServiceRegistrar) {
		webhooksv1.RegisterWebhooksServiceServer(r, exampleWebhooks{})
	}, servertest.Options{Name: "webhooks", Telemetry: telemetry.Config{LogOutput: logs}})
	return &clientExample{client: webhooksv1.NewWebhooksServiceClient(s.Conn), srv: s, logs: logs}
}

// token mints a token for sub acting through client; sub == client is a
// client-credentials token.
func (e *clientExample) token(t *testing.T, sub, client string) context.Context {
	t.Helper()
	tok, err := e.srv.Issuer.Mint(sub, client, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return withToken(context.Background(), tok)
}

func TestClientMethodsAreBoundToTheTokensClient(t *testing.T) {
	t.Parallel()
	e := startClientExample(t)
	tests := []struct {
		name   string
		ctx    context.Context
		target string
		reason commonv1.ErrorReason // UNSPECIFIED: served
	}{
		{"own client, no purpose declared", e.token(t, "chat-app", "chat-app"), "clients/chat-app/endpoints/ep1", 0},
		{"another client's endpoint", e.token(t, "chat-app", "chat-app"), "clients/other-app/endpoints/ep1", commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED},
		{"a prefix of the client is another client", e.token(t, "chat-app", "chat-app"), "clients/chat-app-2/endpoints/ep1", commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED},
		{"a user's token of the same client", e.token(t, "alice", "chat-app"), "clients/chat-app/endpoints/ep1", commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED},
		{"a user named like the client, through another client", e.token(t, "chat-app", "other-app"), "clients/chat-app/endpoints/ep1", commonv1.ErrorReason_ERROR_REASON_CLIENT_NOT_ALLOWED},
		{"no token", context.Background(), "clients/chat-app/endpoints/ep1", commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID},
		{"a user's name instead of a client's", e.token(t, "chat-app", "chat-app"), "users/chat-app/endpoints/ep1", commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := e.client.GetEndpoint(tt.ctx, &webhooksv1.GetEndpointRequest{Name: tt.target})
			if tt.reason == commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
				if err != nil || resp.GetEndpoint().GetName() != tt.target {
					t.Fatalf("GetEndpoint = %v, %v; want it served", resp, err)
				}
				return
			}
			testkit.RequireReason(t, err, tt.reason)
			if tt.reason == commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT {
				testkit.RequireFieldViolation(t, err, "name")
			}
		})
	}
	// Refusals go to the security log, like a user's path naming another
	// user, naming the client but nothing of the request.
	if got := e.logs.String(); !strings.Contains(got, `"bankbridge.reason":"CLIENT_NOT_ALLOWED"`) || strings.Contains(got, "other-app/endpoints") {
		t.Errorf("security log does not hold the client refusals as it should:\n%s", got)
	}
}
