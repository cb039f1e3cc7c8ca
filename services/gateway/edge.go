package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// The gateway is where callers' HTTP meets bankbridge, so it bounds what a
// request may bring before anything reads it: headers over MaxHeaderBytes
// are answered 431, bodies over MaxBodyBytes 413, both as every gateway
// error is (JSON google.rpc.Status, ErrorInfo reason REQUEST_TOO_LARGE),
// and a caller's W3C baggage is dropped, never passed on to the services.

// baggageHeader is W3C baggage (https://www.w3.org/TR/baggage/): name=value
// pairs a caller asks every hop to pass on, and instrumentation may record.
const baggageHeader = "Baggage"

// headerBytes is the size of r's header fields as they came, each name,
// value and the ": " and CRLF around them, the Host field included: what
// http.Server's MaxHeaderBytes counts too, less the request line.
func headerBytes(r *http.Request) int {
	n := len("Host: \r\n") + len(r.Host)
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + len(": \r\n")
		}
	}
	return n
}

// edge applies the header and body limits and drops the caller's baggage,
// in front of every route (and of the telemetry, so the baggage is never
// read). The http.Server's own MaxHeaderBytes, set above MaxHeaderBytes,
// stops what is far larger before it is read whole, with a plain 431.
func (g *Gateway) edge(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := headerBytes(r); n > g.cfg.MaxHeaderBytes {
			g.writeError(w, r, http.StatusRequestHeaderFieldsTooLarge,
				fmt.Sprintf("request headers of %d bytes are larger than the %d bytes taken", n, g.cfg.MaxHeaderBytes))
			return
		}
		if r.ContentLength > g.cfg.MaxBodyBytes {
			g.writeError(w, r, http.StatusRequestEntityTooLarge, g.bodyTooLarge())
			return
		}
		r.Header.Del(baggageHeader)
		r.Body = http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

func (g *Gateway) bodyTooLarge() string {
	return fmt.Sprintf("request body larger than %d bytes", g.cfg.MaxBodyBytes)
}

// tooLarge is REQUEST_TOO_LARGE answered with code (413 or 431).
func tooLarge(code int, msg string) error {
	return &runtime.HTTPStatusError{HTTPStatus: code, Err: apierr.New(commonv1.ErrorReason_ERROR_REASON_REQUEST_TOO_LARGE, msg)}
}

// writeError answers REQUEST_TOO_LARGE with code the way every gateway
// error is written, through the REST mux's error handler.
func (g *Gateway) writeError(w http.ResponseWriter, r *http.Request, code int, msg string) {
	_, out := runtime.MarshalerForRequest(g.mux, r)
	runtime.HTTPError(r.Context(), g.mux, out, w, r, tooLarge(code, msg))
}

// readBody reads a request body whole, under the limit edge set: a body
// without a Content-Length (chunked) that turns out too large is answered
// 413 here, where grpc-gateway would answer its read error with 400. It
// reports whether the request may go on, with its body in memory.
func (g *Gateway) readBody(w http.ResponseWriter, r *http.Request) bool {
	if r.Body == nil || r.Body == http.NoBody {
		return true
	}
	body, err := io.ReadAll(r.Body)
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		g.writeError(w, r, http.StatusRequestEntityTooLarge, g.bodyTooLarge())
		return false
	}
	// Any other read error (the caller went away) is grpc-gateway's to
	// answer, as it was: it reads what is left, nothing.
	r.Body = io.NopCloser(bytes.NewReader(body))
	return true
}
