package main

import (
	"strings"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// An account's id is "<bank_id>~<bank_account_id>": bank ids never hold a
// "~", and the bank account id is the bank's opaque id for the account (never
// its number). Encoding both keeps the service stateless across replicas: any
// replica can tell which bank and consent an account name belongs to.
const idSep = "~"

// accountRef is a parsed account name.
type accountRef struct {
	user, bankID, bankAccountID string
}

func (a accountRef) name() string {
	return "users/" + a.user + "/accounts/" + a.bankID + idSep + a.bankAccountID
}

// parseAccount reads users/{user}/accounts/{account}[/...]. A name whose
// account id does not have our shape names no account: NOT_FOUND.
func parseAccount(name string) (accountRef, error) {
	parts := strings.Split(name, "/")
	if len(parts) < 4 || parts[0] != "users" || parts[2] != "accounts" {
		return accountRef{}, notFound()
	}
	bank, acct, ok := strings.Cut(parts[3], idSep)
	if !ok || bank == "" || acct == "" {
		return accountRef{}, notFound()
	}
	return accountRef{user: parts[1], bankID: bank, bankAccountID: acct}, nil
}

func notFound() error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "the user has no such account")
}
