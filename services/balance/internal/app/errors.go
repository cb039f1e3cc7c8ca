package app

import (
	"fmt"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// The errors the service answers with. Messages never carry personal data.

// AccountNotFound is the answer for an account the user does not have,
// including a name whose account id names no bank.
func AccountNotFound() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "the user has no such account")
}

func errTransactionNotFound() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "the account has no such transaction")
}

func errBankNotFound(id string) error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_NOT_FOUND, "no bank "+id+" is configured",
		apierr.WithMetadata("bank_id", id))
}

func errCursorInvalid() error {
	const desc = "not a cursor of this account"
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID,
		"cursor is malformed or belongs to another account; sync again from an empty cursor",
		apierr.WithFieldViolations(apierr.FieldViolation{Field: "cursor", Description: desc, Reason: "cursor.invalid"}))
}

// errBankAnsweredBadly is the answer when a bank's adapter answered what
// cannot be true; why is said for developers and names no data.
func errBankAnsweredBadly(bankID, why string) error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE,
		fmt.Sprintf("bank %s is unavailable: %s", bankID, why),
		apierr.WithRetryAfter(retryAfterBadAnswer))
}

// retryAfterBadAnswer is the RetryInfo delay of errBankAnsweredBadly: the
// adapter must be fixed first, so not soon.
const retryAfterBadAnswer = time.Minute

// bankDown reports an error that means the bank could not be read now,
// when a value read earlier may stand in.
func bankDown(err error) bool {
	return apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE) ||
		apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_UNAVAILABLE)
}
