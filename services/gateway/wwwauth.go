package main

import (
	"context"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// bearerRealm names bankbridge's protection space in WWW-Authenticate.
const bearerRealm = "bankbridge"

// bearerChallenge is the WWW-Authenticate of a 401 as RFC 6750 section 3
// asks: a request that sent no token gets the bare challenge, with no
// error code (it did not know authentication was needed); one whose token
// was refused gets error="invalid_token" and a fixed description of why.
// The description never quotes the token or the verifier's message, which
// may name what the token holds. Other statuses get none ("").
func bearerChallenge(st *status.Status, sentToken bool) string {
	if st.Code() != codes.Unauthenticated {
		return ""
	}
	challenge := `Bearer realm="` + bearerRealm + `"`
	if sentToken {
		desc := "the access token is malformed or failed verification"
		if apierr.Is(st.Err(), commonv1.ErrorReason_ERROR_REASON_TOKEN_EXPIRED) {
			desc = "the access token expired"
		}
		challenge += `, error="invalid_token", error_description="` + desc + `"`
	}
	return challenge
}

// challengeWriter puts its challenge in WWW-Authenticate as the status is
// written: grpc-gateway's error handler sets that header to the status
// message itself, which is no RFC 6750 challenge, just before it writes.
type challengeWriter struct {
	http.ResponseWriter
	challenge string
}

func (w challengeWriter) WriteHeader(code int) {
	w.Header().Set("WWW-Authenticate", w.challenge)
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w challengeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// sentBearer reports whether the call grpc-gateway forwards carries an
// Authorization header (as outgoing gRPC metadata), for the stream error
// handler, which gets no request.
func sentBearer(ctx context.Context) bool {
	md, _ := metadata.FromOutgoingContext(ctx)
	return len(md.Get("authorization")) > 0
}
