package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// maxDevTokenTTL is the longest a dev token lives, and what it lives when
// the request names no expires_in.
const maxDevTokenTTL = time.Hour

// devTokenRequest is the body of POST /v1/dev/tokens (openapi_dev.json
// documents it).
type devTokenRequest struct {
	User              string `json:"user"`
	ClientCredentials bool   `json:"client_credentials"`
	// Operator asks for the dev operator client's own token.
	Operator bool `json:"operator"`
	// ExpiresIn is the token's lifetime in seconds, 1 to 3600; 0 is 3600.
	// A short one lets a product test what it does when a token expires.
	ExpiresIn int64 `json:"expires_in"`
}

// devToken mints a user token for the default dev client, or with
// {"client_credentials": true} the dev client's own token (sub and azp the
// client id, as the client credentials grant gives it), for the client's
// own methods such as its webhook endpoints, or with {"operator": true} the
// dev operator client's own token, for on-call's look-up by trace id;
// expires_in shortens its life.
// It exists only in dev mode; otherwise the route answers 404 like any
// unknown path. A refusal is a google.rpc.Status with a reason, as every
// gateway error.
func (g *Gateway) devToken(w http.ResponseWriter, r *http.Request) {
	if g.issuer == nil {
		g.notFound().ServeHTTP(w, r)
		return
	}
	fail := func(err error) {
		_, out := runtime.MarshalerForRequest(g.mux, r)
		httpError(r.Context(), g.mux, out, w, r, err)
	}
	invalid := func(field, rule, desc string) {
		fail(apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "invalid request: "+field+": "+desc,
			apierr.WithFieldViolations(apierr.FieldViolation{Field: field, Description: desc, Reason: rule})))
	}
	var body devTokenRequest
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4096))
	if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
		fail(tooLarge(http.StatusRequestEntityTooLarge, "request body larger than 4096 bytes"))
		return
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err != nil || dec.Decode(&body) != nil {
		fail(apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT,
			`invalid request: send {"user": "<id>"}, {"client_credentials": true} or {"operator": true}, with "expires_in" in seconds if you want it shorter than an hour; no other field`))
		return
	}
	client := g.cfg.DevClient
	switch {
	case body.Operator && (body.User != "" || body.ClientCredentials):
		invalid("operator", "dev_token.exclusive", "operator excludes user and client_credentials")
		return
	case body.Operator && g.cfg.DevOperatorClient == "":
		invalid("operator", "dev_token.operator_unset", "no dev operator client is configured (--dev-operator-client)")
		return
	case body.Operator:
		client = g.cfg.DevOperatorClient
		body.User = client
	case body.ClientCredentials && body.User != "":
		invalid("user", "dev_token.exclusive", "user and client_credentials exclude each other")
		return
	case body.ClientCredentials:
		body.User = g.cfg.DevClient
	case !validUser(body.User):
		invalid("user", "dev_token.user", "1-64 letters, digits, _ or -")
		return
	}
	ttl := maxDevTokenTTL
	if body.ExpiresIn != 0 {
		if body.ExpiresIn < 1 || body.ExpiresIn > int64(maxDevTokenTTL/time.Second) {
			invalid("expires_in", "dev_token.expires_in", "seconds, from 1 to 3600")
			return
		}
		ttl = time.Duration(body.ExpiresIn) * time.Second
	}
	tok, err := g.issuer.Mint(body.User, client, ttl)
	if err != nil {
		id, masked := apierr.Internal()
		g.log.ErrorContext(r.Context(), "dev token not minted", slog.String(telemetry.AttrIncidentID, id), slog.String("error", err.Error()))
		fail(masked)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer",
		"expires_in": int64(ttl / time.Second), "client_id": client})
}
