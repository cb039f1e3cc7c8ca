package main

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// What a caller sends that grpc-gateway would pass on, or answer, badly
// (found by FuzzREST): text that is no UTF-8 in the path or the query,
// which proto cannot carry (the gRPC client fails to marshal the request:
// a 500), header values gRPC metadata cannot carry (grpc-gateway drops the
// header silently), a method the path does not take (a 501), and
// grpc-gateway's own refusals, which carry no ErrorInfo. Each becomes a
// 4xx with the usual body: a google.rpc.Status with a reason.

// undecodable refuses, with 400 INVALID_ARGUMENT, a path variable, query
// parameter name or value that is not UTF-8, and a header the gateway
// forwards (forwardedHeaders, Authorization) whose value is not printable
// ASCII. The REST
// mux's middleware runs it before queryRoutes.check, which echoes a
// parameter's name.
func undecodable(r *http.Request, pathParams map[string]string) error {
	notUTF8 := func(field string) error {
		const desc = "not valid UTF-8"
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "invalid request: "+field+": "+desc,
			apierr.WithFieldViolations(apierr.FieldViolation{Field: field, Description: desc, Reason: "string.utf8"}))
	}
	for _, name := range slices.Sorted(maps.Keys(pathParams)) {
		if !utf8.ValidString(pathParams[name]) {
			return notUTF8(name) // a field path of the contract
		}
	}
	values := r.Form // as queryRoutes.check reads them
	if values == nil {
		values = r.URL.Query()
	}
	for _, key := range slices.Sorted(maps.Keys(values)) {
		if !utf8.ValidString(key) {
			return notUTF8(strings.ToValidUTF8(key, "\uFFFD"))
		}
		for _, v := range values[key] {
			if !utf8.ValidString(v) {
				return notUTF8(key)
			}
		}
	}
	for _, name := range append(slices.Sorted(maps.Keys(forwardedHeaders)), "authorization") {
		for _, v := range r.Header.Values(name) {
			if !metadataText(v) {
				// Never the value: it may be a token.
				return apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT,
					"invalid request: the "+http.CanonicalHeaderKey(name)+" header must be printable ASCII",
					apierr.WithMetadata("header", http.CanonicalHeaderKey(name)))
			}
		}
	}
	return nil
}

// metadataText reports whether v can travel as a gRPC metadata value:
// printable ASCII, as grpc-gateway requires before it forwards a header.
func metadataText(v string) bool {
	for i := range len(v) {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

// routingError answers a request no route takes. grpc-gateway answers a
// path that another method takes with 501 UNIMPLEMENTED, a server error;
// the gateway answers it, and any unknown path, 404 NOT_FOUND.
func routingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	err := apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "no REST route takes this method and path; /openapi.json lists them")
	if httpStatus == http.StatusBadRequest {
		err = apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "invalid request: malformed path")
	}
	httpError(ctx, mux, m, w, r, err)
}

// unknownBodyField finds the field name in protojson's refusal of a body
// field the request message does not have.
var unknownBodyField = regexp.MustCompile(`unknown field "([^"]+)"`)

// withReason gives a refusal of grpc-gateway's own, which has none, the
// ErrorInfo every bankbridge error carries: a body that is no JSON of the
// request, a query value of the wrong type, a malformed path are
// INVALID_ARGUMENT (a body field the request has not, with a field
// violation naming it); anything else is left as it is. Its message, which may
// quote the caller's text, is made valid UTF-8, or the error could not be
// written.
func withReason(err error) error {
	inner, httpStatus := err, 0
	if hse, ok := errors.AsType[*runtime.HTTPStatusError](err); ok {
		inner, httpStatus = hse.Err, hse.HTTPStatus
	}
	if apierr.Info(inner) != nil {
		return err
	}
	st := status.Convert(inner)
	if st.Code() != codes.InvalidArgument && (st.Code() != codes.Unknown || httpStatus != http.StatusBadRequest) {
		return err
	}
	msg := strings.ToValidUTF8(st.Message(), "\uFFFD")
	if !strings.HasPrefix(msg, "invalid request: ") {
		msg = "invalid request: " + msg
	}
	var opts []apierr.Option
	if m := unknownBodyField.FindStringSubmatch(msg); m != nil && len(m[1]) <= 64 {
		// protojson names the field it found no match for; a product
		// branches on the violation, not on the message.
		opts = append(opts, apierr.WithFieldViolations(apierr.FieldViolation{Field: m[1],
			Description: "not a field of this request body", Reason: "body.unknown_field"}))
	}
	out := apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, msg, opts...)
	if httpStatus != 0 {
		return &runtime.HTTPStatusError{HTTPStatus: httpStatus, Err: out}
	}
	return out
}
