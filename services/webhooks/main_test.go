package main

// The whole binary, as `make dev` and a deployment start it: flags, Vault
// with the service's own policy, a SQLite file in its data dir, a NATS
// JetStream bus, the server kit; a product team registers an endpoint over
// gRPC with its client-credentials token, an event is published on the bus,
// and the receiver gets it signed.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	webhooksv1 "github.com/bankbridge/bankbridge/gen/bankbridge/webhooks/v1"
	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/platform/vaulttest"
)

func TestTheBinaryDeliversAnEventFromTheBus(t *testing.T) {
	t.Parallel()
	issuer, err := auth.NewDevIssuer(true, "https://issuer.test", "bankbridge")
	if err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(issuer.JWKSHandler())
	t.Cleanup(jwks.Close)
	v := vaulttest.Start(t)
	rules, err := os.ReadFile("../../deploy/vault/policies/bankbridge-webhooks.hcl")
	if err != nil {
		t.Fatal(err)
	}
	v.PutPolicy(t, "bankbridge-webhooks", string(rules))
	token := v.CreateToken(t, vaulttest.TokenRequest{Policies: []string{"bankbridge-webhooks"}})
	nats, err := events.Embedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nats.Close)

	ctx, stop := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{
			"--grpc-addr=127.0.0.1:0", "--admin-addr=", "--dev-mode", "--plaintext", "--drain-delay=0s",
			"--issuer=https://issuer.test", "--jwks-url=" + jwks.URL,
			"--vault-addr=" + v.Addr(), "--vault-token=" + token,
			"--data-dir=" + t.TempDir(), "--nats-url=" + nats.URL(),
			"--webhook-backoff-base=50ms", "--webhook-backoff-cap=100ms",
		}, func(l bootstrap.Listening) { addr <- l.Addr })
	}()
	var target string
	select {
	case target = <-addr:
	case err := <-done:
		stop()
		t.Fatalf("run: %v", err)
	case <-time.After(30 * time.Second):
		stop()
		t.Fatal("the service did not start")
	}
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})

	var mu sync.Mutex
	var got []*http.Request
	var bodies [][]byte
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, bodies = append(got, r), append(bodies, b)
		mu.Unlock()
	}))
	t.Cleanup(rcv.Close)

	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	tok, err := issuer.Mint("chat-app", "chat-app", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	callCtx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+tok)
	created, err := webhooksv1.NewWebhooksServiceClient(conn).CreateEndpoint(callCtx, &webhooksv1.CreateEndpointRequest{
		Parent: "clients/chat-app", IdempotencyKey: "binary-test-1",
		Endpoint: &webhooksv1.Endpoint{Url: rcv.URL, EventTypes: []string{"consent.link.expiring"}},
	})
	if err != nil {
		t.Fatal(err)
	}

	bus, err := events.Connect(t.Context(), events.Config{URL: nats.URL(), Name: "test", SubjectKey: []byte("bankbridge-dev-subject-key")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	if err := bus.Publish(t.Context(), events.Event{ID: "evt-bin-1", Type: "consent.link.expiring", Source: "consent",
		User: "alice", Client: "chat-app", Resource: "users/alice/links/l1", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0
	}, 20*time.Second)
	mu.Lock()
	r, body := got[0], bodies[0]
	mu.Unlock()
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(created.GetSecret(), "whsec_"))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(r.Header.Get("webhook-id") + "." + r.Header.Get("webhook-timestamp") + "." + string(body)))
	if want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)); r.Header.Get("webhook-signature") != want || r.Header.Get("webhook-id") != "evt-bin-1" {
		t.Errorf("webhook id %q signature %q, want %q", r.Header.Get("webhook-id"), r.Header.Get("webhook-signature"), want)
	}
}
