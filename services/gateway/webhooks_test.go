package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	webhooksv1 "github.com/bankbridge/bankbridge/gen/bankbridge/webhooks/v1"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// cannedWebhooks answers for any endpoint of the caller's client, and
// echoes the idempotency key the gateway passed on in the description.
type cannedWebhooks struct {
	webhooksv1.UnimplementedWebhooksServiceServer
}

func (cannedWebhooks) GetEndpoint(_ context.Context, req *webhooksv1.GetEndpointRequest) (*webhooksv1.GetEndpointResponse, error) {
	return &webhooksv1.GetEndpointResponse{Endpoint: &webhooksv1.Endpoint{Name: req.GetName()}}, nil
}

func (cannedWebhooks) CreateEndpoint(_ context.Context, req *webhooksv1.CreateEndpointRequest) (*webhooksv1.CreateEndpointResponse, error) {
	return &webhooksv1.CreateEndpointResponse{Endpoint: &webhooksv1.Endpoint{
		Name: req.GetParent() + "/endpoints/ep1", Url: req.GetEndpoint().GetUrl(), Description: req.GetIdempotencyKey(),
	}, Secret: "whsec_x"}, nil
}

// A product team reaches its webhook endpoints over REST under
// /v1/clients/{client}, with the client's own token, which the dev issuer
// mints with {"client_credentials": true}; a user's token is refused.
func TestWebhooksOverREST(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	tel, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: "gateway-test", LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := auth.NewDevIssuer(true, "https://dev.test", "bankbridge")
	if err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(issuer.JWKSHandler())
	t.Cleanup(jwks.Close)
	verifier, err := auth.NewVerifier(ctx, auth.Config{Issuer: "https://dev.test", Audience: "bankbridge", JWKSURL: jwks.URL})
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.Defaults("webhooks", "127.0.0.1:0", "")
	cfg.DevMode, cfg.DrainDelay = true, 0
	srv, err := server.New(cfg, server.Deps{Telemetry: tel, Verifier: verifier}, func(r grpc.ServiceRegistrar) {
		webhooksv1.RegisterWebhooksServiceServer(r, cannedWebhooks{})
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	beCtx, stop := context.WithCancel(ctx)
	go func() { done <- srv.Serve(beCtx) }()
	t.Cleanup(func() { stop(); <-done })
	g, err := New(ctx, Config{Backends: map[string]string{"webhooks": srv.GRPCAddr()}, MaxBodyBytes: 4096, RequestTimeout: 5 * time.Second, DevClient: "dev-client"}, tel, issuer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	hs := httptest.NewServer(g.Handler())
	t.Cleanup(hs.Close)

	resp, body := do(t, http.MethodPost, hs.URL+"/v1/dev/tokens", "", "", []byte(`{"client_credentials":true}`))
	clientToken, _ := body["access_token"].(string)
	if resp.StatusCode != http.StatusOK || clientToken == "" {
		t.Fatalf("dev client token = %d %v", resp.StatusCode, body)
	}
	_, body = do(t, http.MethodPost, hs.URL+"/v1/dev/tokens", "", "", []byte(`{"user":"alice"}`))
	userToken, _ := body["access_token"].(string)

	endpoint := hs.URL + "/v1/clients/dev-client/endpoints/ep1"
	resp, body = do(t, http.MethodGet, endpoint, clientToken, "", nil)
	if resp.StatusCode != http.StatusOK || body["endpoint"].(map[string]any)["name"] != "clients/dev-client/endpoints/ep1" {
		t.Errorf("GET with the client's token = %d %v", resp.StatusCode, body)
	}
	resp, body = do(t, http.MethodGet, endpoint, userToken, "", nil)
	if resp.StatusCode != http.StatusForbidden || reason(body) != "CLIENT_NOT_ALLOWED" {
		t.Errorf("GET with a user's token = %d %v", resp.StatusCode, body)
	}
	resp, body = do(t, http.MethodGet, hs.URL+"/v1/clients/other-client/endpoints/ep1", clientToken, "", nil)
	if resp.StatusCode != http.StatusForbidden || reason(body) != "CLIENT_NOT_ALLOWED" {
		t.Errorf("GET of another client's endpoint = %d %v", resp.StatusCode, body)
	}

	req, _ := http.NewRequest(http.MethodPost, hs.URL+"/v1/clients/dev-client/endpoints",
		strings.NewReader(`{"url":"https://hooks.example.com/x","event_types":["consent.link.expiring"]}`))
	req.Header.Set("Authorization", "Bearer "+clientToken)
	req.Header.Set("Idempotency-Key", "rest-key-0001")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(r.Body)
	_ = r.Body.Close()
	if r.StatusCode != http.StatusOK || !strings.Contains(string(raw), `"description":"rest-key-0001"`) || !strings.Contains(string(raw), `"secret":"whsec_x"`) {
		t.Errorf("POST endpoints = %d %s", r.StatusCode, raw)
	}
}
