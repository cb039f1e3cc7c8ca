// Package transport serves bankbridge.balance.v1.BalanceService on top of
// app: it reads the call's grant from the server kit, parses names,
// translates between the contract's messages and app's domain, and
// nothing more. Authentication, user binding, validation, the purpose and
// consent checks and the access log run before it, in the kit.
package transport

import (
	"context"
	"fmt"

	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	"github.com/bankbridge/bankbridge/services/balance/internal/app"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/names"
)

// BalanceServer serves bankbridge.balance.v1.BalanceService.
type BalanceServer struct {
	balancev1.UnimplementedBalanceServiceServer
	app *app.Service
}

// NewBalanceServer serves a.
func NewBalanceServer(a *app.Service) *BalanceServer { return &BalanceServer{app: a} }

// caller is what the kit's grant tells the service.
func caller(ctx context.Context) app.Caller {
	g := access.GrantFrom(ctx)
	return app.Caller{
		Purpose: g.Purpose,
		BankID:  g.BankID,
		Consent: app.Consent{Link: g.Link, BankConsentID: g.BankConsentID},
	}
}

// ListAccounts returns a page of the user's accounts.
func (s *BalanceServer) ListAccounts(ctx context.Context, req *balancev1.ListAccountsRequest) (*balancev1.ListAccountsResponse, error) {
	c := caller(ctx)
	user, err := names.ParseUser(req.GetParent())
	if err != nil {
		return nil, fmt.Errorf("parent passed validation: %w", err) // a bug: masked as INTERNAL
	}
	accts, next, err := s.app.ListAccounts(ctx, c, app.ListAccountsInput{
		User: user, BankID: req.GetBankId(), PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	resp := &balancev1.ListAccountsResponse{NextPageToken: next, Accounts: make([]*balancev1.Account, len(accts))}
	for i, a := range accts {
		resp.Accounts[i] = accountToProto(a)
	}
	return resp, nil
}

// GetAccount returns one account.
func (s *BalanceServer) GetAccount(ctx context.Context, req *balancev1.GetAccountRequest) (*balancev1.GetAccountResponse, error) {
	c := caller(ctx)
	name, err := names.ParseAccount(req.GetName())
	if err != nil {
		return nil, app.AccountNotFound()
	}
	a, err := s.app.GetAccount(ctx, c, name)
	if err != nil {
		return nil, err
	}
	return &balancev1.GetAccountResponse{Account: accountToProto(a)}, nil
}

// GetBalance returns an account's balances, fresh or last known.
func (s *BalanceServer) GetBalance(ctx context.Context, req *balancev1.GetBalanceRequest) (*balancev1.GetBalanceResponse, error) {
	c := caller(ctx)
	name, err := names.ParseBalance(req.GetName())
	if err != nil {
		return nil, app.AccountNotFound()
	}
	b, err := s.app.GetBalance(ctx, c, name)
	if err != nil {
		return nil, err
	}
	return &balancev1.GetBalanceResponse{Balance: balanceToProto(b)}, nil
}

// ListTransactions returns a page of an account's transactions.
func (s *BalanceServer) ListTransactions(ctx context.Context, req *balancev1.ListTransactionsRequest) (*balancev1.ListTransactionsResponse, error) {
	c := caller(ctx)
	name, err := names.ParseAccount(req.GetParent())
	if err != nil {
		return nil, app.AccountNotFound()
	}
	ts, next, err := s.app.ListTransactions(ctx, c, app.ListTransactionsInput{
		Account:   name,
		Status:    statusFromProto(req.GetStatus()),
		Start:     timeOf(req.GetStartTime()),
		End:       timeOf(req.GetEndTime()),
		PageSize:  int(req.GetPageSize()),
		PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	return &balancev1.ListTransactionsResponse{Transactions: transactionsToProto(name, ts), NextPageToken: next}, nil
}

// GetTransaction returns one transaction.
func (s *BalanceServer) GetTransaction(ctx context.Context, req *balancev1.GetTransactionRequest) (*balancev1.GetTransactionResponse, error) {
	c := caller(ctx)
	name, err := names.ParseTransaction(req.GetName())
	if err != nil {
		return nil, app.AccountNotFound()
	}
	t, err := s.app.GetTransaction(ctx, c, name)
	if err != nil {
		return nil, err
	}
	return &balancev1.GetTransactionResponse{Transaction: transactionToProto(name.Account, t)}, nil
}

// SyncTransactions returns the changes to an account's transactions since
// a cursor.
func (s *BalanceServer) SyncTransactions(ctx context.Context, req *balancev1.SyncTransactionsRequest) (*balancev1.SyncTransactionsResponse, error) {
	c := caller(ctx)
	name, err := names.ParseAccount(req.GetParent())
	if err != nil {
		return nil, app.AccountNotFound()
	}
	ch, err := s.app.SyncTransactions(ctx, c, app.SyncTransactionsInput{
		Account: name, Cursor: req.GetCursor(), Count: int(req.GetCount()),
	})
	if err != nil {
		return nil, err
	}
	resp := &balancev1.SyncTransactionsResponse{
		Added:      transactionsToProto(name, ch.Added),
		Modified:   transactionsToProto(name, ch.Modified),
		NextCursor: ch.NextCursor,
		HasMore:    ch.HasMore,
	}
	for _, id := range ch.Removed {
		resp.Removed = append(resp.Removed, name.Transaction(id).String())
	}
	return resp, nil
}
