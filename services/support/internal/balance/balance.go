// Package balance reaches bankbridge's balance service for the support
// assistant: it implements app.Balances over BalanceService, calling it
// as the user who asked, with their own bearer token (taken from the
// support call's incoming metadata) and purpose CUSTOMER_SUPPORT, so the
// balance service checks that user's consent and writes the user's access
// log itself.
package balance

import (
	"context"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/bankbridge/bankbridge/gen/apierr"
	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/access"
	"github.com/bankbridge/bankbridge/services/platform/client"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
	"github.com/bankbridge/bankbridge/services/support/internal/app"
)

// Purpose is the purpose the support service declares to the balance
// service.
const Purpose = "CUSTOMER_SUPPORT"

// DefaultTimeout bounds one call to the balance service.
const DefaultTimeout = 5 * time.Second

// Client implements app.Balances with a BalanceService client.
type Client struct {
	c balancev1.BalanceServiceClient
}

var _ app.Balances = (*Client)(nil)

// New returns the balance service behind c.
func New(c balancev1.BalanceServiceClient) *Client { return &Client{c: c} }

// Dial connects to the balance service at addr with the platform's client
// kit: telemetry, a deadline on every call, and retries for its reads;
// creds secure the connection (bootstrap.Deps.TransportCredentials: mutual
// TLS with the support service's certificate).
func Dial(addr string, t *telemetry.Telemetry, creds credentials.TransportCredentials) (*grpc.ClientConn, error) {
	return client.Dial(addr, t, client.Options{
		DefaultTimeout:       DefaultTimeout,
		TransportCredentials: creds,
		RetryMethods: []string{
			balancev1.BalanceService_ListAccounts_FullMethodName,
			balancev1.BalanceService_GetBalance_FullMethodName,
			balancev1.BalanceService_ListTransactions_FullMethodName,
		},
	})
}

// outgoing is ctx carrying the caller's own token and the support
// purpose to the balance service. Without a token on the incoming call
// (a background task) there is nobody to call as.
func outgoing(ctx context.Context) (context.Context, error) {
	auth := metadata.ValueFromIncomingContext(ctx, "authorization")
	if len(auth) == 0 {
		return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID, "no user token to call the balance service with")
	}
	// Only these two keys: nothing else of the incoming call is passed on.
	md := metadata.Pairs("authorization", auth[0], strings.ToLower(access.PurposeHeader), Purpose)
	return metadata.NewOutgoingContext(ctx, md), nil
}

// Accounts returns the user's accounts at the bank.
func (b *Client) Accounts(ctx context.Context, user, bankID string) ([]app.Account, error) {
	ctx, err := outgoing(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := b.c.ListAccounts(ctx, &balancev1.ListAccountsRequest{Parent: names.User(user), BankId: bankID})
	if err != nil {
		return nil, err
	}
	var out []app.Account
	for _, a := range resp.GetAccounts() {
		n, err := names.ParseAccount(a.GetName())
		if err != nil || n.User != user || n.BankID != bankID {
			continue // never another user's or bank's, whatever came back
		}
		out = append(out, app.Account{Name: n, DisplayName: a.GetDisplayName(), Last4: a.GetMaskedNumber().GetLast4()})
	}
	return out, nil
}

// Balances returns an account's balances.
func (b *Client) Balances(ctx context.Context, account names.Account) ([]app.Balance, error) {
	ctx, err := outgoing(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := b.c.GetBalance(ctx, &balancev1.GetBalanceRequest{Name: account.Balance()})
	if err != nil {
		return nil, err
	}
	var out []app.Balance
	for _, bal := range resp.GetBalance().GetBalances() {
		out = append(out, app.Balance{
			Type:    strings.TrimPrefix(bal.GetType().String(), "BALANCE_TYPE_"),
			Amount:  money(bal.GetAmount()),
			Display: bal.GetDisplay(),
		})
	}
	return out, nil
}

// Transactions returns up to n of an account's newest transactions: the
// first page.
func (b *Client) Transactions(ctx context.Context, account names.Account, n int) ([]app.Transaction, error) {
	ctx, err := outgoing(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := b.c.ListTransactions(ctx, &balancev1.ListTransactionsRequest{Parent: account.String(), PageSize: int32(n)})
	if err != nil {
		return nil, err
	}
	var out []app.Transaction
	for _, t := range resp.GetTransactions() {
		tn, err := names.ParseTransaction(t.GetName())
		if err != nil || tn.Account != account {
			continue
		}
		when := t.GetBookingTime()
		if when == nil {
			when = t.GetValueTime()
		}
		var at time.Time
		if when != nil {
			at = when.AsTime()
		}
		desc := t.GetMerchantName()
		if desc == "" {
			desc = t.GetDescription()
		}
		out = append(out, app.Transaction{Name: tn, Amount: money(t.GetAmount()), Description: desc, Time: at})
		if len(out) == n {
			break
		}
	}
	return out, nil
}

func money(m *commonv1.Money) app.Money {
	return app.Money{Currency: m.GetCurrencyCode(), Units: m.GetUnits(), Nanos: m.GetNanos()}
}
