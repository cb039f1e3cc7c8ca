package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/services/platform/server"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// carrierPushRoute is the shipping service's carrier endpoint
// (shipping.v1.CarrierPush): not a gRPC method, but a signed webhook the
// gateway passes through to the shipping service's public HTTP listener.
const carrierPushRoute = "/v1/carriers/{carrier}/trackingEvents"

// carrierPushHeaders are the request headers that reach the shipping
// service: what the endpoint reads (the Standard Webhooks headers, the
// body's type), and nothing else a caller sent, so that no token, cookie or
// forwarded-for claim crosses. The trace context is the gateway's own,
// injected by the transport.
var carrierPushHeaders = []string{"Content-Type", "User-Agent", "Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"}

// carrierProxy passes carrier pushes to the shipping service's public HTTP
// listener at addr, body and signature headers byte for byte (the
// signature covers the exact bytes), under the gateway's body limit and
// request timeout. Errors of its own are written as every gateway error is,
// through mux.
func (g *Gateway) carrierProxy(addr string, mux *runtime.ServeMux) http.Handler {
	target := &url.URL{Scheme: "http", Host: addr}
	transport := http.DefaultTransport
	if g.cfg.BackendTLS != nil {
		if t := g.cfg.BackendTLS("shipping"); t != nil {
			// One transport for every push: its connections (and TLS
			// sessions) are reused.
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.TLSClientConfig, tr.ForceAttemptHTTP2 = t, true
			target.Scheme, transport = "https", tr
		}
	}
	writeErr := func(w http.ResponseWriter, r *http.Request, err error) {
		_, out := runtime.MarshalerForRequest(mux, r)
		runtime.HTTPError(r.Context(), mux, out, w, r, err)
	}
	bodyTooLarge := tooLarge(http.StatusRequestEntityTooLarge, g.bodyTooLarge())
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			h := http.Header{}
			for _, k := range carrierPushHeaders {
				if v, ok := pr.In.Header[k]; ok {
					h[k] = v
				}
			}
			pr.Out.Header = h
		},
		Transport: otelhttp.NewTransport(transport,
			otelhttp.WithTracerProvider(g.tel.TracerProvider),
			otelhttp.WithMeterProvider(g.tel.MeterProvider),
			otelhttp.WithPropagators(g.tel.Propagator),
			otelhttp.WithSpanNameFormatter(func(string, *http.Request) string { return "HTTP POST " + carrierPushRoute }),
		),
		// The gateway already set the trace id header; the service's would
		// repeat it.
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Del(server.TraceIDHeader)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				writeErr(w, r, bodyTooLarge)
				return
			}
			switch ctxErr := r.Context().Err(); {
			case errors.Is(ctxErr, context.Canceled):
				return // the caller left
			case errors.Is(ctxErr, context.DeadlineExceeded):
				writeErr(w, r, status.Error(codes.DeadlineExceeded, "the shipping service did not answer in time; retry later"))
				return
			}
			g.log.WarnContext(r.Context(), "shipping service unreachable for a carrier push", slog.String("error", err.Error()),
				slog.String(telemetry.AttrOutcome, "backend_unavailable"))
			writeErr(w, r, status.Error(codes.Unavailable, "the shipping service is unavailable; retry later"))
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > g.cfg.MaxBodyBytes {
			writeErr(w, r, bodyTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes)
		ctx, cancel := context.WithTimeout(r.Context(), g.cfg.RequestTimeout)
		defer cancel()
		proxy.ServeHTTP(w, r.WithContext(ctx))
	})
}
