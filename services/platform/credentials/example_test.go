package credentials_test

import (
	"context"
	"log"
	"log/slog"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/credentials"
)

func Example() {
	ctx := context.Background() // the service's lifetime context
	p, err := credentials.New(ctx, credentials.Config{
		Address: "https://vault.internal:8200",
		Auth: credentials.AuthConfig{
			Method:     credentials.AuthKubernetes,
			Kubernetes: credentials.KubernetesConfig{Role: "balance"},
		},
		RefreshInterval: time.Minute,
	}, credentials.WithLogger(slog.Default()))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	// Ask on every call: a rotated secret is served once the background
	// refresh has read it, with no restart.
	secret, err := p.Bank(ctx, "acme")
	if err != nil {
		log.Fatal(err) // errors.Is(err, credentials.ErrUnavailable) → UNAVAILABLE
	}
	_ = secret.Data["api_key"]
}
