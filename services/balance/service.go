package main

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck"
	"github.com/bankbridge/bankbridge/services/platform/policy"
)

// banks is the part of the adapter registry the service uses.
type banks interface {
	Bank(id string) (adapters.Bank, bool)
	Banks() []adapters.Bank
	Client(id string) (adapterv1.BankAdapterServiceClient, error)
}

// grants decides consent for one bank; the consent checker implements it.
type grants interface {
	Decide(ctx context.Context, user string, need consentcheck.Need, purpose commonv1.Purpose) (consentcheck.Grant, error)
}

// service implements BalanceService. Consent, purpose, user binding and
// audit have run before any method here (server kit + consent hook), and
// the hook has put the link and bank consent id in the policy.Access.
type service struct {
	balancev1.UnimplementedBalanceServiceServer
	banks     banks
	grants    grants
	lastKnown *lastKnown
	accounts  *accountCache
	now       func() time.Time
}

const (
	defaultPageSize = 25
	syncPageSize    = 500
	maxSyncPages    = 20 // 10,000 transactions per account read in full
)

// resolve tells the consent hook what each call needs: the scope from the
// method, the bank from the account in the resource name (or the bank_id
// filter). A bank that is not configured is BANK_NOT_FOUND, before any
// consent is asked for.
func (s *service) resolve(_ context.Context, a *policy.Access) (consentcheck.Need, error) {
	method := a.Method[strings.LastIndex(a.Method, "/")+1:]
	var scope commonv1.Scope
	switch method {
	case "ListAccounts", "GetAccount":
		scope = commonv1.Scope_SCOPE_ACCOUNTS
	case "GetBalance":
		scope = commonv1.Scope_SCOPE_BALANCES
	default:
		scope = commonv1.Scope_SCOPE_TRANSACTIONS
	}
	if method == "ListAccounts" {
		req, _ := a.Request.(*balancev1.ListAccountsRequest)
		if id := req.GetBankId(); id != "" {
			if _, ok := s.banks.Bank(id); !ok {
				return consentcheck.Need{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_NOT_FOUND, "no bank "+id+" is configured")
			}
		}
		return consentcheck.Need{Scope: scope, BankID: req.GetBankId()}, nil
	}
	ref, err := parseAccount(a.Resource)
	if err != nil {
		return consentcheck.Need{}, err
	}
	if _, ok := s.banks.Bank(ref.bankID); !ok {
		// An account at a bank we do not know is an account that does not exist.
		return consentcheck.Need{}, notFound()
	}
	return consentcheck.Need{Scope: scope, BankID: ref.bankID}, nil
}

// toBank returns ctx for a call to the bank: the declared purpose goes with
// it (banks may record it); the trace context is added by the client kit.
func toBank(ctx context.Context, a *policy.Access) context.Context {
	return metadata.AppendToOutgoingContext(ctx, policy.PurposeHeader, strings.TrimPrefix(a.Purpose.String(), "PURPOSE_"))
}

func access(ctx context.Context) *policy.Access {
	if a := policy.AccessFrom(ctx); a != nil {
		return a
	}
	return &policy.Access{}
}

// bankAccounts returns the user's accounts at one bank under grant: fresh
// from the cache, else from the bank, else (bank failing) from the cache
// while it is kept.
func (s *service) bankAccounts(ctx context.Context, a *policy.Access, user, bankID string, g consentcheck.Grant) ([]*balancev1.Account, error) {
	cached, fresh, ok := s.accounts.get(user, bankID)
	var list []*adapterv1.Account
	switch {
	case ok && fresh && cached.link == g.Link:
		list = cached.accounts
	default:
		c, err := s.banks.Client(bankID)
		if err != nil {
			return nil, err
		}
		resp, err := c.ListAccounts(toBank(ctx, a), &adapterv1.ListAccountsRequest{BankConsentId: g.BankConsentID})
		switch {
		case err == nil:
			list = resp.GetAccounts()
			s.accounts.put(user, bankID, g.Link, list)
		case ok && cached.link == g.Link && apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE):
			list = cached.accounts
		default:
			return nil, err
		}
	}
	out := make([]*balancev1.Account, 0, len(list))
	for _, acct := range list {
		out = append(out, toAccount(accountRef{user: user, bankID: bankID, bankAccountID: acct.GetBankAccountId()}, g.Link, acct))
	}
	return out, nil
}

func (s *service) ListAccounts(ctx context.Context, req *balancev1.ListAccountsRequest) (*balancev1.ListAccountsResponse, error) {
	a := access(ctx)
	user := a.User
	var all []*balancev1.Account
	var firstErr error
	for _, bank := range s.banks.Banks() {
		if req.GetBankId() != "" && bank.ID != req.GetBankId() {
			continue
		}
		g, err := s.grants.Decide(ctx, user, consentcheck.Need{Scope: commonv1.Scope_SCOPE_ACCOUNTS, BankID: bank.ID}, a.Purpose)
		if err != nil {
			if req.GetBankId() != "" {
				return nil, err
			}
			continue // lapsed or absent consent for this bank: not listed
		}
		accts, err := s.bankAccounts(ctx, a, user, bank.ID, g)
		if err != nil {
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		all = append(all, accts...)
	}
	if len(all) == 0 && firstErr != nil {
		// Every consented bank failed and nothing is cached: say so rather
		// than answer an empty list that looks like "no accounts".
		return nil, firstErr
	}
	slices.SortFunc(all, func(x, y *balancev1.Account) int { return strings.Compare(x.GetName(), y.GetName()) })
	page, next, err := paginate(all, req.GetPageSize(), req.GetPageToken(), "accounts|"+req.GetParent()+"|"+req.GetBankId())
	if err != nil {
		return nil, err
	}
	return &balancev1.ListAccountsResponse{Accounts: page, NextPageToken: next}, nil
}

func (s *service) GetAccount(ctx context.Context, req *balancev1.GetAccountRequest) (*balancev1.GetAccountResponse, error) {
	a := access(ctx)
	ref, err := parseAccount(req.GetName())
	if err != nil {
		return nil, err
	}
	accts, err := s.bankAccounts(ctx, a, ref.user, ref.bankID, consentcheck.Grant{Link: a.Link, BankConsentID: a.BankConsentID})
	if err != nil {
		return nil, err
	}
	for _, acct := range accts {
		if acct.GetName() == req.GetName() {
			return &balancev1.GetAccountResponse{Account: acct}, nil
		}
	}
	return nil, notFound()
}

func (s *service) GetBalance(ctx context.Context, req *balancev1.GetBalanceRequest) (*balancev1.GetBalanceResponse, error) {
	a := access(ctx)
	ref, err := parseAccount(req.GetName())
	if err != nil {
		return nil, err
	}
	c, err := s.banks.Client(ref.bankID)
	if err != nil {
		return nil, err
	}
	resp, err := c.GetBalances(toBank(ctx, a), &adapterv1.GetBalancesRequest{
		BankConsentId: a.BankConsentID, BankAccountId: ref.bankAccountID,
	})
	if err != nil {
		if apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE) || apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_UNAVAILABLE) {
			if last, ok := s.lastKnown.get(req.GetName()); ok {
				return &balancev1.GetBalanceResponse{Balance: last}, nil
			}
		}
		return nil, err
	}
	b := toBalances(ref.name(), resp.GetBalances(), s.now())
	s.lastKnown.put(b)
	return &balancev1.GetBalanceResponse{Balance: b}, nil
}

// allTransactions reads the account's transactions from the bank in full
// (bounded), applying removals: what the bank holds now.
func (s *service) allTransactions(ctx context.Context, a *policy.Access, ref accountRef) ([]*balancev1.Transaction, error) {
	c, err := s.banks.Client(ref.bankID)
	if err != nil {
		return nil, err
	}
	byID := map[string]*adapterv1.Transaction{}
	cursor := ""
	for range maxSyncPages {
		resp, err := c.SyncTransactions(toBank(ctx, a), &adapterv1.SyncTransactionsRequest{
			BankConsentId: a.BankConsentID, BankAccountId: ref.bankAccountID, Cursor: cursor, Count: syncPageSize,
		})
		if err != nil {
			return nil, err
		}
		for _, t := range append(resp.GetAdded(), resp.GetModified()...) {
			byID[t.GetTransactionId()] = t
		}
		for _, id := range resp.GetRemovedTransactionIds() {
			delete(byID, id)
		}
		cursor = resp.GetNextCursor()
		if !resp.GetHasMore() {
			break
		}
	}
	out := make([]*balancev1.Transaction, 0, len(byID))
	for _, t := range byID {
		out = append(out, toTransaction(ref.name(), t))
	}
	// Newest first: pending before booked, booked by booking time descending.
	slices.SortFunc(out, func(x, y *balancev1.Transaction) int {
		xp := x.GetStatus() == balancev1.TransactionStatus_TRANSACTION_STATUS_PENDING
		yp := y.GetStatus() == balancev1.TransactionStatus_TRANSACTION_STATUS_PENDING
		if xp != yp {
			if xp {
				return -1
			}
			return 1
		}
		if c := y.GetBookingTime().AsTime().Compare(x.GetBookingTime().AsTime()); c != 0 {
			return c
		}
		return strings.Compare(x.GetName(), y.GetName())
	})
	return out, nil
}

func (s *service) ListTransactions(ctx context.Context, req *balancev1.ListTransactionsRequest) (*balancev1.ListTransactionsResponse, error) {
	a := access(ctx)
	ref, err := parseAccount(req.GetParent())
	if err != nil {
		return nil, err
	}
	all, err := s.allTransactions(ctx, a, ref)
	if err != nil {
		return nil, err
	}
	filtered := all[:0]
	for _, t := range all {
		if req.GetStatus() != balancev1.TransactionStatus_TRANSACTION_STATUS_UNSPECIFIED && t.GetStatus() != req.GetStatus() {
			continue
		}
		if req.GetStartTime() != nil && (t.GetBookingTime() == nil || t.GetBookingTime().AsTime().Before(req.GetStartTime().AsTime())) {
			continue
		}
		if req.GetEndTime() != nil && (t.GetBookingTime() == nil || !t.GetBookingTime().AsTime().Before(req.GetEndTime().AsTime())) {
			continue
		}
		filtered = append(filtered, t)
	}
	query := fmt.Sprintf("transactions|%s|%v|%v|%v", req.GetParent(), req.GetStatus(), req.GetStartTime().AsTime().Unix(), req.GetEndTime().AsTime().Unix())
	page, next, err := paginate(filtered, req.GetPageSize(), req.GetPageToken(), query)
	if err != nil {
		return nil, err
	}
	return &balancev1.ListTransactionsResponse{Transactions: page, NextPageToken: next}, nil
}

func (s *service) GetTransaction(ctx context.Context, req *balancev1.GetTransactionRequest) (*balancev1.GetTransactionResponse, error) {
	a := access(ctx)
	ref, err := parseAccount(req.GetName())
	if err != nil {
		return nil, err
	}
	all, err := s.allTransactions(ctx, a, ref)
	if err != nil {
		return nil, err
	}
	for _, t := range all {
		if t.GetName() == req.GetName() {
			return &balancev1.GetTransactionResponse{Transaction: t}, nil
		}
	}
	return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "the account has no such transaction")
}

// A sync cursor wraps the bank's cursor with the account it belongs to, so
// a cursor from another account is refused instead of misread.
func encodeCursor(account, bankCursor string) string {
	if bankCursor == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(account + "\n" + bankCursor))
}

func decodeCursor(account, cursor string) (string, error) {
	if cursor == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	acct, bankCursor, ok := strings.Cut(string(raw), "\n")
	if err != nil || !ok || acct != account {
		return "", apierr.New(commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID,
			"cursor is malformed or belongs to another account; sync again from an empty cursor",
			apierr.WithFieldViolations(apierr.FieldViolation{Field: "cursor", Description: "not a cursor of this account", Reason: "cursor.invalid"}))
	}
	return bankCursor, nil
}

func (s *service) SyncTransactions(ctx context.Context, req *balancev1.SyncTransactionsRequest) (*balancev1.SyncTransactionsResponse, error) {
	a := access(ctx)
	ref, err := parseAccount(req.GetParent())
	if err != nil {
		return nil, err
	}
	bankCursor, err := decodeCursor(ref.name(), req.GetCursor())
	if err != nil {
		return nil, err
	}
	c, err := s.banks.Client(ref.bankID)
	if err != nil {
		return nil, err
	}
	count := req.GetCount()
	if count == 0 {
		count = 100
	}
	resp, err := c.SyncTransactions(toBank(ctx, a), &adapterv1.SyncTransactionsRequest{
		BankConsentId: a.BankConsentID, BankAccountId: ref.bankAccountID, Cursor: bankCursor, Count: count,
	})
	if err != nil {
		return nil, err
	}
	out := &balancev1.SyncTransactionsResponse{
		NextCursor: encodeCursor(ref.name(), resp.GetNextCursor()),
		HasMore:    resp.GetHasMore(),
	}
	for _, t := range resp.GetAdded() {
		out.Added = append(out.Added, toTransaction(ref.name(), t))
	}
	for _, t := range resp.GetModified() {
		out.Modified = append(out.Modified, toTransaction(ref.name(), t))
	}
	for _, id := range resp.GetRemovedTransactionIds() {
		out.Removed = append(out.Removed, ref.name()+"/transactions/"+id)
	}
	return out, nil
}

// paginate serves one page of items. The token carries the offset and a
// digest of the query, so a token used with other filters is refused.
func paginate[T any](items []T, pageSize int32, pageToken string, query string) ([]T, string, error) {
	size := int(pageSize)
	if size == 0 {
		size = defaultPageSize
	}
	offset := 0
	if tok := pageToken; tok != "" {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		q, off, ok := strings.Cut(string(raw), "|@")
		n, aerr := strconv.Atoi(off)
		if err != nil || !ok || q != query || aerr != nil || n < 0 || n > len(items) {
			return nil, "", apierr.New(commonv1.ErrorReason_ERROR_REASON_PAGE_TOKEN_INVALID,
				"page_token is malformed, expired or from another query",
				apierr.WithFieldViolations(apierr.FieldViolation{Field: "page_token", Description: "not a token of this list", Reason: "page_token.invalid"}))
		}
		offset = n
	}
	end := min(offset+size, len(items))
	next := ""
	if end < len(items) {
		next = base64.RawURLEncoding.EncodeToString([]byte(query + "|@" + strconv.Itoa(end)))
	}
	return items[offset:end], next, nil
}
