package client_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/bankbridge/bankbridge/services/platform/auth"
	"github.com/bankbridge/bankbridge/services/platform/client"
)

// TestServiceTokenAsksForTheInternalAudience: a service's token, from the
// client credentials grant, is of the internal audience internal methods
// take, and names the service as its subject and client.
func TestServiceTokenAsksForTheInternalAudience(t *testing.T) {
	t.Parallel()
	issuer, err := auth.NewDevIssuer(true, "https://issuer.test", "bankbridge", auth.WithInternalAudience("bankbridge-internal-test"))
	if err != nil {
		t.Fatal(err)
	}
	idp := httptest.NewServer(issuer.TokenHandler(auth.TokenClients{
		Secrets: map[string]string{"balance": "s1"}, Internal: map[string]bool{"balance": true},
	}, time.Hour))
	defer idp.Close()

	md, err := client.NewServiceToken(context.Background(), idp.URL, "balance", "s1", "bankbridge-internal-test").GetRequestMetadata(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseInsecure([]byte(strings.TrimPrefix(md["authorization"], "Bearer ")))
	if err != nil {
		t.Fatalf("authorization %q: %v", md["authorization"], err)
	}
	aud, _ := tok.Audience()
	sub, _ := tok.Subject()
	if len(aud) != 1 || aud[0] != "bankbridge-internal-test" || sub != "balance" {
		t.Errorf("service token aud %v sub %q, want [bankbridge-internal-test] and balance", aud, sub)
	}
}
