package app

import (
	"fmt"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// The errors the service answers with.

func errEndpointNotFound() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "the client has no endpoint with this name")
}

func errTooManyEndpoints() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION,
		fmt.Sprintf("the client already has %d endpoints, the most allowed; delete one first", MaxEndpoints),
		apierr.WithMetadata("max_endpoints", fmt.Sprint(MaxEndpoints)))
}

func errKeyReused() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED,
		"idempotency_key was used before with a different request")
}

func errCursorInvalid() error {
	const desc = "not the id of an event kept for this client (unknown, or older than the events kept); replay from a start_time instead"
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID, "invalid request: cursor: "+desc,
		apierr.WithFieldViolations(apierr.FieldViolation{Field: "cursor", Description: desc, Reason: "cursor.unknown"}))
}

func errURLRefused(desc string) error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "invalid request: endpoint.url: "+desc,
		apierr.WithFieldViolations(apierr.FieldViolation{Field: "endpoint.url", Description: desc, Reason: "endpoint.url.refused"}))
}

// errSecretsUnavailable is what a caller gets when the secret store
// cannot be reached; the cause goes to the log.
func errSecretsUnavailable() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_UNAVAILABLE,
		"the endpoint's signing secrets cannot be reached right now; retry shortly", apierr.WithRetryAfter(5*time.Second))
}
