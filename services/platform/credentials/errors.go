package credentials

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/hashicorp/vault/api"
)

// Every error from Bank and Partner matches ErrNotFound or ErrUnavailable
// (or wraps the caller's context error), so a service maps it to a status
// without parsing text.
var (
	// ErrUnavailable reports that no usable secret could be had: Vault is
	// unreachable or failing and nothing recent enough is cached, or Vault
	// refused the read.
	ErrUnavailable = errors.New("credentials unavailable")
	// ErrNotFound reports that Vault holds no secret for the id, or that the
	// id cannot name one.
	ErrNotFound = errors.New("credentials not found")
	// ErrPermissionDenied reports that Vault refused the read: its policy
	// does not grant this id to us. It always comes with ErrUnavailable:
	// for the caller the bank is unusable; for the operator the policy is
	// wrong.
	ErrPermissionDenied = errors.New("permission denied")
)

// statusError is an answer from Vault reduced to its status code.
type statusError struct{ code int }

func (e *statusError) Error() string { return fmt.Sprintf("vault status %d", e.code) }

// vaultError turns an error from the Vault client into one that is safe to
// return and log. Vault's messages can quote request data or raw bodies, so
// an answer from Vault is reduced to its status code; an error without an
// answer (connection refused, timeout) keeps its text, which names the URL
// but never the token or the data.
func vaultError(err error) error {
	re, ok := errors.AsType[*api.ResponseError](err)
	if !ok {
		return fmt.Errorf("vault unreachable: %w: %w", err, ErrUnavailable)
	}
	status := &statusError{code: re.StatusCode}
	switch re.StatusCode {
	case http.StatusForbidden:
		return fmt.Errorf("%w: %w: %w", status, ErrPermissionDenied, ErrUnavailable)
	case http.StatusNotFound:
		return fmt.Errorf("%w: %w", status, ErrNotFound)
	default:
		return fmt.Errorf("%w: %w", status, ErrUnavailable)
	}
}

// vaultStatus returns the status code Vault answered with, or 0 when it did
// not answer.
func vaultStatus(err error) int {
	if se, ok := errors.AsType[*statusError](err); ok {
		return se.code
	}
	return 0
}
