package main

import (
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// notFound answers every path no route of the root mux takes, and a method
// one of its paths does not take, as the REST mux answers an unknown /v1/
// path (routingError): 404 with reason NOT_FOUND in the usual JSON body,
// never http.ServeMux's plain-text 404 or 405, which a product cannot
// branch on.
func (g *Gateway) notFound() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, out := runtime.MarshalerForRequest(g.mux, r)
		httpError(r.Context(), g.mux, out, w, r,
			apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "no route takes this method and path; /openapi.json lists them"))
	})
}
