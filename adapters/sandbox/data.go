package sandbox

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// ListAccounts implements adapters.AccountsAdapter.
func (b *Bank) ListAccounts(ctx context.Context, req *adapterv1.ListAccountsRequest) (*adapterv1.ListAccountsResponse, error) {
	resp := &adapterv1.ListAccountsResponse{}
	err := b.dataCall(ctx, req.GetBankConsentId(), commonv1.Scope_SCOPE_ACCOUNTS, func(_ *consent, cust *customer) error {
		for _, a := range cust.accounts {
			resp.Accounts = append(resp.Accounts, &adapterv1.Account{
				BankAccountId: a.id,
				DisplayName:   a.name,
				MaskedNumber:  clone(a.masked),
				Type:          a.typ,
				CurrencyCode:  a.currency,
			})
		}
		b.leaks.leakAccounts(cust.login, resp.Accounts)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// GetBalances implements adapters.AccountsAdapter.
func (b *Bank) GetBalances(ctx context.Context, req *adapterv1.GetBalancesRequest) (*adapterv1.GetBalancesResponse, error) {
	resp := &adapterv1.GetBalancesResponse{}
	err := b.dataCall(ctx, req.GetBankConsentId(), commonv1.Scope_SCOPE_BALANCES, func(_ *consent, cust *customer) error {
		a := cust.account(req.GetBankAccountId())
		if a == nil {
			return notFound("account under this consent")
		}
		for _, bal := range a.balances {
			resp.Balances = append(resp.Balances, clone(bal))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// syncKey names one account's transaction history as one consent sees it.
type syncKey struct{ consentID, accountID string }

// Transaction history has two generations: 1 before the posting of the
// account's pending transaction, 2 after. A sync cursor says which
// generation its caller holds and how far into it it has read.
const (
	genBeforePosting = 1
	genAfterPosting  = 2
	defaultSyncCount = 100
	cursorVersion    = "v1"
	cursorAtEnd      = "end"
)

type syncCursor struct {
	accountID string
	gen       int
	pos       int // index into the generation's transactions; -1 at its end
}

func (c syncCursor) String() string {
	pos := cursorAtEnd
	if c.pos >= 0 {
		pos = strconv.Itoa(c.pos)
	}
	raw := strings.Join([]string{cursorVersion, c.accountID, strconv.Itoa(c.gen), pos}, "|")
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func parseSyncCursor(s, accountID string) (syncCursor, error) {
	invalid := apierr.New(commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID,
		"the cursor is malformed or belongs to another account; sync again from an empty cursor")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return syncCursor{}, invalid
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 4 || parts[0] != cursorVersion || parts[1] != accountID {
		return syncCursor{}, invalid
	}
	c := syncCursor{accountID: accountID, pos: -1}
	if c.gen, err = strconv.Atoi(parts[2]); err != nil || (c.gen != genBeforePosting && c.gen != genAfterPosting) {
		return syncCursor{}, invalid
	}
	if parts[3] != cursorAtEnd {
		if c.pos, err = strconv.Atoi(parts[3]); err != nil || c.pos < 0 {
			return syncCursor{}, invalid
		}
	}
	return c, nil
}

// SyncTransactions implements adapters.TransactionsAdapter. An empty cursor
// returns the history as the consent sees it now, in pages of count; the
// first call after that history was read in full is when alice's pending
// coffee posts: the booked transaction comes in added, with
// pending_transaction_id, and the pending one in removed_transaction_ids.
// The posting's two changes always come together, even with count 1.
func (b *Bank) SyncTransactions(ctx context.Context, req *adapterv1.SyncTransactionsRequest) (*adapterv1.SyncTransactionsResponse, error) {
	resp := &adapterv1.SyncTransactionsResponse{}
	err := b.dataCall(ctx, req.GetBankConsentId(), commonv1.Scope_SCOPE_TRANSACTIONS, func(c *consent, cust *customer) error {
		a := cust.account(req.GetBankAccountId())
		if a == nil {
			return notFound("account under this consent")
		}
		key := syncKey{consentID: c.id, accountID: a.id}
		count := int(req.GetCount())
		if count == 0 {
			count = defaultSyncCount
		}
		var cur syncCursor
		if req.GetCursor() == "" {
			cur = syncCursor{accountID: a.id, gen: genBeforePosting}
			if b.posted[key] {
				cur.gen = genAfterPosting
			}
		} else {
			var err error
			if cur, err = parseSyncCursor(req.GetCursor(), a.id); err != nil {
				return err
			}
		}

		if cur.pos >= 0 {
			// Reading a generation's history, page by page.
			txs := a.transactions(cur.gen == genAfterPosting)
			end := min(cur.pos+count, len(txs))
			for _, t := range txs[min(cur.pos, end):end] {
				resp.Added = append(resp.Added, clone(t))
			}
			next := syncCursor{accountID: a.id, gen: cur.gen, pos: end}
			if end >= len(txs) {
				next.pos = -1
			}
			resp.NextCursor, resp.HasMore = next.String(), next.pos >= 0
			return nil
		}

		next := cur
		if cur.gen == genBeforePosting && a.posting != nil {
			b.posted[key] = true
			resp.Added = append(resp.Added, clone(a.posting))
			resp.RemovedTransactionIds = []string{a.posting.GetPendingTransactionId()}
			next.gen = genAfterPosting
		}
		resp.NextCursor = next.String()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}
