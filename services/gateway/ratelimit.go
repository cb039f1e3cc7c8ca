package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/limits"
)

// retryHeaders sets, for a refusal that tells the caller when to come
// back (its details carry a google.rpc.RetryInfo: SCA_COOLDOWN,
// PENDING_LINKS_LIMIT, BANK_UNAVAILABLE, AUDIT_UNAVAILABLE, ...),
// Retry-After in whole seconds, rounded up, at least 1: an HTTP client or
// proxy honours the header without parsing the body. A refusal over a
// rate limit (RESOURCE_EXHAUSTED, RATE_LIMITED, which grpc-gateway answers
// with 429) also gets the IETF fields of its policy:
//
//	Retry-After: 3
//	RateLimit-Policy: "user";q=20;w=1
//	RateLimit: "user";r=0;t=3
//
// the policy ("user" or "client"), its quota q and window w come from the
// refusal's ErrorInfo.metadata (platform/limits), after
// draft-ietf-httpapi-ratelimit-headers, and t is Retry-After. An error
// without RetryInfo sets nothing.
func retryHeaders(h http.Header, st *status.Status) {
	err := st.Err()
	delay := apierr.RetryDelay(err)
	if delay <= 0 {
		return
	}
	retry := int64(math.Ceil(delay.Seconds()))
	if retry < 1 {
		retry = 1
	}
	h.Set("Retry-After", strconv.FormatInt(retry, 10))
	if !apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_RATE_LIMITED) {
		return
	}
	md := apierr.Info(err).GetMetadata()
	policy := md[limits.MetaPolicy]
	quota, qerr := strconv.ParseUint(md[limits.MetaQuota], 10, 63)
	window, werr := strconv.ParseUint(md[limits.MetaWindowSeconds], 10, 63)
	if (policy != string(limits.ScopeUser) && policy != string(limits.ScopeClient)) || qerr != nil || werr != nil {
		return // not ours to describe: Retry-After alone
	}
	h.Set("RateLimit-Policy", fmt.Sprintf("%q;q=%d;w=%d", policy, quota, window))
	h.Set("RateLimit", fmt.Sprintf("%q;r=0;t=%d", policy, retry))
}

// httpError answers a unary call's error as grpc-gateway does, with the
// Retry-After (and rate-limit) headers of its RetryInfo (retryHeaders), an
// RFC 6750 WWW-Authenticate on a 401 (bearerChallenge), and grpc-gateway's own
// refusals given a reason (withReason, decode.go).
func httpError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	st := status.Convert(err)
	retryHeaders(w.Header(), st)
	if c := bearerChallenge(st, r.Header.Get("Authorization") != ""); c != "" { // wwwauth.go
		w = challengeWriter{ResponseWriter: w, challenge: c}
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, withReason(err))
}

// responseHeaderKey carries a REST call's response header map to
// streamError, which grpc-gateway hands no ResponseWriter: a stream
// refused when it opens is answered with the refusal's status, and its
// Retry-After and rate-limit headers, after streamError returns.
type responseHeaderKey struct{}

func withResponseHeader(r *http.Request, h http.Header) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), responseHeaderKey{}, h))
}

// streamError is grpc-gateway's stream error handler with the Retry-After
// (and rate-limit) headers, and a 401's WWW-Authenticate challenge, of a
// stream refused when it opens. An error in the middle of
// a stream comes after its header was sent; the headers set then are
// never written.
func streamError(ctx context.Context, err error) *status.Status {
	st := status.Convert(err)
	if h, ok := ctx.Value(responseHeaderKey{}).(http.Header); ok {
		retryHeaders(h, st)
		if c := bearerChallenge(st, sentBearer(ctx)); c != "" {
			h.Set("WWW-Authenticate", c)
		}
	}
	return st
}
