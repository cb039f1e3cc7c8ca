// Package names parses and formats the resource names of bankbridge's
// public API, after AIP-122: every user's resource lives under
// users/{user}, e.g. users/alice/accounts/sandbox~acc-1/transactions/tx-9.
// It is the only place a name is split or put together; services and the
// server kit call it instead of building strings.
//
// An account's id says which bank holds it: "<bank_id>~<bank account id>".
// Bank ids never hold a "~" (banks.yaml refuses one), and the bank account
// id is the bank's opaque id for the account, never its number. Encoding
// both keeps every service stateless across replicas: any replica can tell
// from the name alone which bank, and so which consent, an account needs.
//
// Parsing checks a name's shape (its collections, and ids that are not
// empty); the characters allowed in each id are the contract's rules,
// enforced by validation before a handler runs.
package names

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrMalformed is wrapped by every parse error: the name does not have the
// shape asked for.
var ErrMalformed = errors.New("malformed resource name")

// BankSeparator joins the bank id and the bank's account id in an account id.
const BankSeparator = "~"

// Collection ids, as they appear in names.
const (
	users        = "users"
	accounts     = "accounts"
	transactions = "transactions"
	links        = "links"
	balance      = "balance"
	optIns       = "partnerOptIns"
)

// User formats users/{user}.
func User(user string) string { return users + "/" + user }

// ParseUser reads users/{user}.
func ParseUser(name string) (string, error) {
	ids, err := match(name, users, "")
	if err != nil {
		return "", err
	}
	return ids[0], nil
}

// UserOf returns the user that name lives under: {user} of
// users/{user}[/...]. ok is false for a name outside users/.
func UserOf(name string) (user string, ok bool) {
	rest, ok := strings.CutPrefix(name, users+"/")
	if !ok {
		return "", false
	}
	user, _, _ = strings.Cut(rest, "/")
	return user, user != ""
}

// Account is an account's name: users/{user}/accounts/{bank_id}~{bank_account_id}.
type Account struct {
	User string
	// BankID is the bank that holds the account, as configured.
	BankID string
	// BankAccountID is the bank's own id for the account.
	BankAccountID string
}

// ID is the account's id in its name: {bank_id}~{bank_account_id}.
func (a Account) ID() string { return a.BankID + BankSeparator + a.BankAccountID }

// String formats users/{user}/accounts/{bank_id}~{bank_account_id}.
func (a Account) String() string { return User(a.User) + "/" + accounts + "/" + a.ID() }

// Balance formats the account's balance singleton,
// users/{user}/accounts/{account}/balance.
func (a Account) Balance() string { return a.String() + "/" + balance }

// Transaction returns the name of the account's transaction id.
func (a Account) Transaction(id string) Transaction { return Transaction{Account: a, ID: id} }

// ParseAccount reads users/{user}/accounts/{bank_id}~{bank_account_id}.
func ParseAccount(name string) (Account, error) {
	ids, err := match(name, users, "", accounts, "")
	if err != nil {
		return Account{}, err
	}
	return account(name, ids[0], ids[1])
}

// ParseBalance reads users/{user}/accounts/{account}/balance and returns
// the account.
func ParseBalance(name string) (Account, error) {
	ids, err := match(name, users, "", accounts, "", balance)
	if err != nil {
		return Account{}, err
	}
	return account(name, ids[0], ids[1])
}

func account(name, user, id string) (Account, error) {
	bank, acct, ok := strings.Cut(id, BankSeparator)
	if !ok || bank == "" || acct == "" {
		return Account{}, fmt.Errorf("%w: %q: account id is not {bank_id}%s{bank_account_id}", ErrMalformed, name, BankSeparator)
	}
	return Account{User: user, BankID: bank, BankAccountID: acct}, nil
}

// Transaction is a transaction's name:
// users/{user}/accounts/{account}/transactions/{transaction}.
type Transaction struct {
	Account Account
	// ID is the bank's id for the transaction.
	ID string
}

// String formats users/{user}/accounts/{account}/transactions/{transaction}.
func (t Transaction) String() string { return t.Account.String() + "/" + transactions + "/" + t.ID }

// ParseTransaction reads users/{user}/accounts/{account}/transactions/{transaction}.
func ParseTransaction(name string) (Transaction, error) {
	ids, err := match(name, users, "", accounts, "", transactions, "")
	if err != nil {
		return Transaction{}, err
	}
	a, err := account(name, ids[0], ids[1])
	if err != nil {
		return Transaction{}, err
	}
	return Transaction{Account: a, ID: ids[2]}, nil
}

// Link is a bank link's name: users/{user}/links/{link}.
type Link struct {
	User string
	ID   string
}

// String formats users/{user}/links/{link}.
func (l Link) String() string { return User(l.User) + "/" + links + "/" + l.ID }

// ParseLink reads users/{user}/links/{link}.
func ParseLink(name string) (Link, error) {
	ids, err := match(name, users, "", links, "")
	if err != nil {
		return Link{}, err
	}
	return Link{User: ids[0], ID: ids[1]}, nil
}

// PartnerOptIn is a partner opt-in's name:
// users/{user}/partnerOptIns/{opt_in}.
type PartnerOptIn struct {
	User string
	ID   string
}

// String formats users/{user}/partnerOptIns/{opt_in}.
func (p PartnerOptIn) String() string { return User(p.User) + "/" + optIns + "/" + p.ID }

// ParsePartnerOptIn reads users/{user}/partnerOptIns/{opt_in}.
func ParsePartnerOptIn(name string) (PartnerOptIn, error) {
	ids, err := match(name, users, "", optIns, "")
	if err != nil {
		return PartnerOptIn{}, err
	}
	return PartnerOptIn{User: ids[0], ID: ids[1]}, nil
}

// BankOf returns the bank a resource name belongs to: the bank of the
// account it names or lives under (its balance, its transactions), or of
// the conversation, card, alert or fraud report it names or lives under. ok is
// false for any other name, and for an account id without a bank. The
// server kit calls it to find which bank's consent a call needs.
func BankOf(resourceName string) (bankID string, ok bool) {
	parts := strings.Split(resourceName, "/")
	if len(parts) < 4 || parts[0] != users || parts[1] == "" {
		return "", false
	}
	if parts[2] != accounts && !slices.Contains(bankCollections, parts[2]) {
		return "", false
	}
	bank, id, ok := strings.Cut(parts[3], BankSeparator)
	if !ok || bank == "" || id == "" {
		return "", false
	}
	return bank, true
}

// Collections of resources a user holds at one bank, whose ids are
// "<bank_id>~<id>" like an account's.
const (
	Conversations = "conversations"
	Cards         = "cards"
	Alerts        = "alerts"
	FraudReports  = "fraudReports"
	messages      = "messages"
)

var bankCollections = []string{Conversations, Cards, Alerts, FraudReports}

// BankResource is a user's resource held at one bank:
// users/{user}/{collection}/{bank_id}~{id}, e.g. a conversation, a card,
// an alert or a fraud report.
type BankResource struct {
	User string
	// Collection is one of Conversations, Cards, Alerts, FraudReports.
	Collection string
	// BankID is the bank, as configured.
	BankID string
	// ID is the id within the bank: the bank's own (a card, an alert) or
	// bankbridge's (a conversation, a fraud report).
	ID string
}

// String formats users/{user}/{collection}/{bank_id}~{id}.
func (r BankResource) String() string {
	return User(r.User) + "/" + r.Collection + "/" + r.BankID + BankSeparator + r.ID
}

// ParseBankResource reads users/{user}/{collection}/{bank_id}~{id}.
func ParseBankResource(name, collection string) (BankResource, error) {
	ids, err := match(name, users, "", collection, "")
	if err != nil {
		return BankResource{}, err
	}
	bank, id, ok := strings.Cut(ids[1], BankSeparator)
	if !ok || bank == "" || id == "" {
		return BankResource{}, fmt.Errorf("%w: %q: id is not {bank_id}%s{id}", ErrMalformed, name, BankSeparator)
	}
	return BankResource{User: ids[0], Collection: collection, BankID: bank, ID: id}, nil
}

// Message formats a conversation's message,
// users/{user}/conversations/{conversation}/messages/{message}.
func Message(conversation BankResource, id string) string {
	return conversation.String() + "/" + messages + "/" + id
}

// ParseMessage reads
// users/{user}/conversations/{conversation}/messages/{message} and returns
// the conversation and the message id.
func ParseMessage(name string) (BankResource, string, error) {
	i := strings.LastIndex(name, "/"+messages+"/")
	if i < 0 {
		return BankResource{}, "", fmt.Errorf("%w: %q: want users/{}/conversations/{}/messages/{}", ErrMalformed, name)
	}
	conv, err := ParseBankResource(name[:i], Conversations)
	id := name[i+len(messages)+2:]
	if err != nil || id == "" || strings.Contains(id, "/") {
		return BankResource{}, "", fmt.Errorf("%w: %q: want users/{}/conversations/{}/messages/{}", ErrMalformed, name)
	}
	return conv, id, nil
}

// KindOf names the kind of resource name is, for messages: "account",
// "balance", "transaction", "link", "partner opt-in", or "resource" for
// any other name.
func KindOf(name string) string {
	parts := strings.Split(name, "/")
	n := len(parts)
	switch {
	case n == 5 && parts[2] == accounts && parts[4] == balance:
		return "balance"
	case n == 4 && parts[2] == accounts:
		return "account"
	case n == 6 && parts[2] == accounts && parts[4] == transactions:
		return "transaction"
	case n == 4 && parts[2] == links:
		return "link"
	case n == 4 && parts[2] == optIns:
		return "partner opt-in"
	case n == 4 && parts[2] == Conversations:
		return "conversation"
	case n == 4 && parts[2] == Cards:
		return "card"
	case n == 4 && parts[2] == Alerts:
		return "alert"
	case n == 4 && parts[2] == FraudReports:
		return "fraud report"
	}
	return "resource"
}

// match splits name into segments and checks them against pattern, where
// "" stands for an id (any non-empty segment) and anything else for a
// literal collection id. It returns the ids in order.
func match(name string, pattern ...string) ([]string, error) {
	parts := strings.Split(name, "/")
	if len(parts) != len(pattern) {
		return nil, fmt.Errorf("%w: %q: want %s", ErrMalformed, name, shape(pattern))
	}
	var ids []string
	for i, p := range pattern {
		switch {
		case p == "" && parts[i] != "":
			ids = append(ids, parts[i])
		case p == "" || parts[i] != p:
			return nil, fmt.Errorf("%w: %q: want %s", ErrMalformed, name, shape(pattern))
		}
	}
	return ids, nil
}

// shape renders a pattern for an error: users/{}/accounts/{}.
func shape(pattern []string) string {
	s := make([]string, len(pattern))
	for i, p := range pattern {
		s[i] = p
		if p == "" {
			s[i] = "{}"
		}
	}
	return strings.Join(s, "/")
}
