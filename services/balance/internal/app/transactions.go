package app

import (
	"context"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
)

// Reading an account's transactions in full syncs from an empty cursor,
// bounded so one call cannot hold a bank for long.
const (
	syncPageSize     = 500
	maxSyncPages     = 20 // 10,000 transactions per account read in full
	defaultSyncCount = 100
)

// allTransactions reads the account's transactions from the bank in full
// (bounded), applying removals: what the bank holds now, newest first.
func (s *Service) allTransactions(ctx context.Context, at BankAccess, account names.Account) ([]Transaction, error) {
	byID := map[string]Transaction{}
	cursor := ""
	for range maxSyncPages {
		ch, err := s.banks.SyncTransactions(ctx, at, account.BankAccountID, cursor, syncPageSize)
		if err != nil {
			return nil, err
		}
		for _, t := range append(ch.Added, ch.Modified...) {
			byID[t.ID] = t
		}
		for _, id := range ch.Removed {
			delete(byID, id)
		}
		cursor = ch.NextCursor
		if !ch.HasMore {
			break
		}
	}
	out := make([]Transaction, 0, len(byID))
	for _, t := range byID {
		out = append(out, t)
	}
	dropFutureTimes(out, s.now())
	sortNewestFirst(out)
	return out, nil
}

// sortNewestFirst orders pending transactions before booked ones, pending
// ones by transaction time descending (those without one last), booked
// ones by booking time descending, and ties by id.
func sortNewestFirst(ts []Transaction) {
	slices.SortFunc(ts, func(x, y Transaction) int {
		xp, yp := x.Status == TransactionPending, y.Status == TransactionPending
		switch {
		case xp && !yp:
			return -1
		case yp && !xp:
			return 1
		case xp && yp:
			if c := y.TransactionTime.Compare(x.TransactionTime); c != 0 {
				return c
			}
		}
		if c := y.BookingTime.Compare(x.BookingTime); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
}

// ListTransactionsInput is what ListTransactions needs.
type ListTransactionsInput struct {
	Account names.Account
	// Status, Start and End filter; zero values match every transaction.
	// Start is inclusive and End exclusive, on the booking time; with End
	// set, pending transactions are left out.
	Status     TransactionStatus
	Start, End time.Time
	PageSize   int
	PageToken  string
}

// ListTransactions returns one page of the account's transactions, newest
// first, and the token of the next page.
func (s *Service) ListTransactions(ctx context.Context, c Caller, in ListTransactionsInput) ([]Transaction, string, error) {
	list := pagetoken.List{
		Method: listTransactions, Parent: in.Account.String(),
		Filters: []string{string(in.Status), unixMicro(in.Start), unixMicro(in.End)},
	}
	if _, _, err := s.pages.Decode(list, in.PageToken); err != nil {
		return nil, "", err // before the bank is asked
	}
	_, at, err := s.account(ctx, c, in.Account)
	if err != nil {
		return nil, "", err
	}
	all, err := s.allTransactions(ctx, at, in.Account)
	if err != nil {
		return nil, "", err
	}
	matching := all[:0]
	for _, t := range all {
		if in.matches(t) {
			matching = append(matching, t)
		}
	}
	return pagetoken.Paginate(s.pages, list, matching, in.PageSize, in.PageToken)
}

func (in ListTransactionsInput) matches(t Transaction) bool {
	switch {
	case in.Status != "" && t.Status != in.Status:
		return false
	case !in.Start.IsZero() && (t.BookingTime.IsZero() || t.BookingTime.Before(in.Start)):
		return false
	case !in.End.IsZero() && (t.BookingTime.IsZero() || !t.BookingTime.Before(in.End)):
		return false
	}
	return true
}

func unixMicro(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMicro(), 10)
}

// GetTransaction returns one transaction, read from the bank.
func (s *Service) GetTransaction(ctx context.Context, c Caller, name names.Transaction) (Transaction, error) {
	_, at, err := s.account(ctx, c, name.Account)
	if err != nil {
		return Transaction{}, err
	}
	all, err := s.allTransactions(ctx, at, name.Account)
	if err != nil {
		return Transaction{}, err
	}
	for _, t := range all {
		if t.ID == name.ID {
			return t, nil
		}
	}
	return Transaction{}, errTransactionNotFound()
}

// SyncTransactionsInput is what SyncTransactions needs.
type SyncTransactionsInput struct {
	Account names.Account
	// Cursor is the NextCursor of the previous call, or "" for all.
	Cursor string
	// Count is the most changes to return; 0 means 100.
	Count int
}

// SyncTransactions returns the changes to the account's transactions since
// the cursor, with the cursor to pass next.
func (s *Service) SyncTransactions(ctx context.Context, c Caller, in SyncTransactionsInput) (TransactionChanges, error) {
	bankCursor, err := decodeCursor(in.Account, in.Cursor)
	if err != nil {
		return TransactionChanges{}, err
	}
	_, at, err := s.account(ctx, c, in.Account)
	if err != nil {
		return TransactionChanges{}, err
	}
	if in.Count == 0 {
		in.Count = defaultSyncCount
	}
	ch, err := s.banks.SyncTransactions(ctx, at, in.Account.BankAccountID, bankCursor, in.Count)
	if err != nil {
		return TransactionChanges{}, err
	}
	now := s.now()
	dropFutureTimes(ch.Added, now)
	dropFutureTimes(ch.Modified, now)
	ch.NextCursor = encodeCursor(in.Account, ch.NextCursor)
	return ch, nil
}

// A sync cursor wraps the bank's cursor with the account it belongs to, so
// a cursor of another account is refused instead of misread. It is kept by
// callers for days, so it is not a page token: it must not expire, nor
// depend on a key that may change.
func encodeCursor(account names.Account, bankCursor string) string {
	if bankCursor == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(account.String() + "\n" + bankCursor))
}

func decodeCursor(account names.Account, cursor string) (string, error) {
	if cursor == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	acct, bankCursor, ok := strings.Cut(string(raw), "\n")
	if err != nil || !ok || acct != account.String() || bankCursor == "" {
		return "", errCursorInvalid()
	}
	return bankCursor, nil
}
