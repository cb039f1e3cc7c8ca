package egress

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/bankbridge/bankbridge/services/webhooks/internal/app"
)

// maxDrainBytes is as much of a response body as is read, then dropped,
// so the connection can be reused.
const maxDrainBytes = 64 << 10

// Poster POSTs webhooks through the policy's client. It implements
// app.Poster.
type Poster struct {
	client *http.Client
}

// NewPoster returns a Poster whose attempts the policy checks, each bounded
// by timeout.
func NewPoster(p Policy, timeout time.Duration) *Poster {
	return &Poster{client: p.Client(timeout)}
}

// Post sends body with header to url and tells how it went. The response
// body is never kept.
func (p *Poster) Post(ctx context.Context, url string, header map[string]string, body []byte) (int, app.Outcome) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, app.OutcomeNetworkError
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, outcomeOf(ctx, err)
	}
	Drain(resp.Body, maxDrainBytes)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, app.OutcomeSucceeded
	}
	return resp.StatusCode, app.OutcomeHTTPError
}

func outcomeOf(ctx context.Context, err error) app.Outcome {
	if IsRefused(err) {
		return app.OutcomeAddressRefused
	}
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		return app.OutcomeTimeout
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return app.OutcomeTimeout
	}
	return app.OutcomeNetworkError
}
