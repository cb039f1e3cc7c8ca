package berlingroup

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// NextGenPSD2 lists transactions; it has no change feed. SyncTransactions
// builds one: the cursor remembers the last booked transaction reported
// (booking date and id: booked transactions are final and come in that
// order) and the pending ones reported and not yet removed. Each sync
// reads the booked transactions from that booking date on and every
// pending one (bookingStatus=both), following _links.next, and reports:
// booked transactions after the cursor, each posted pending one (a booked
// transaction with the transactionId of a pending one reported before)
// with the pending one removed in the same response; pending ones gone
// without posting, removed; new pending ones, added.
//
// The cursor is sealed (adapters.CursorCodec) for the account it was made
// for. bankbridge's transaction ids are "b." or "p." and the bank's
// transactionId, so that a posted transaction never takes its pending
// one's id.

// pendingBudget bounds, in bytes of transactionIds, the pending
// transactions a cursor remembers, so that it stays within the protocol's
// 1024 characters once sealed.
const pendingBudget = 480

// syncState is what SyncTransactions' cursor holds, sealed with
// adapters.CursorCodec for one account.
type syncState struct {
	V       int      `json:"v"`
	Date    string   `json:"d,omitempty"` // booking date of the last booked transaction reported
	ID      string   `json:"i,omitempty"` // its transactionId
	Pending []string `json:"p,omitempty"` // pending transactionIds reported and not removed
}

func (a *Adapter) decodeCursor(cursor, account string) (syncState, error) {
	st := syncState{V: 1}
	if cursor == "" {
		return st, nil
	}
	if err := a.cursors.Decode(account, cursor, &st); err != nil {
		return syncState{}, err
	}
	if st.V != 1 || (st.Date != "" && !validDate(st.Date)) {
		return syncState{}, apierr.New(commonv1.ErrorReason_ERROR_REASON_CURSOR_INVALID, "the cursor is of another format")
	}
	return st, nil
}

func pendingBytes(ids []string) int {
	n := 0
	for _, id := range ids {
		n += len(id) + 3
	}
	return n
}

// transactionJSON is a NextGenPSD2 transactionDetails.
type transactionJSON struct {
	TransactionID      string `json:"transactionId"`
	EntryReference     string `json:"entryReference"`
	BookingDate        string `json:"bookingDate"`
	ValueDate          string `json:"valueDate"`
	TransactionAmount  amount `json:"transactionAmount"`
	CreditorName       string `json:"creditorName"`
	DebtorName         string `json:"debtorName"`
	Remittance         string `json:"remittanceInformationUnstructured"`
	MerchantCategoryCo string `json:"merchantCategoryCode"`
}

// bankTxIDPattern leaves room for the "b." / "p." prefix.
var (
	bankTxIDPattern = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,120}$`)
	mccPattern      = regexp.MustCompile(`^[0-9]{4}$`)
)

func validDate(s string) bool {
	_, err := time.Parse(time.DateOnly, s)
	return err == nil
}

func (t transactionJSON) transaction(booked bool) (*adapterv1.Transaction, error) {
	if !bankTxIDPattern.MatchString(t.TransactionID) {
		return nil, errors.New("the bank answered a transaction without a usable transactionId")
	}
	m, err := t.TransactionAmount.money()
	if err != nil {
		return nil, err
	}
	tx := &adapterv1.Transaction{Amount: m, Description: text(t.Remittance, 500)}
	if booked {
		if !validDate(t.BookingDate) {
			return nil, errors.New("the bank answered a booked transaction without a bookingDate")
		}
		tx.TransactionId, tx.Status, tx.BookingDate = "b."+t.TransactionID, adapterv1.TransactionStatus_TRANSACTION_STATUS_BOOKED, t.BookingDate
	} else {
		tx.TransactionId, tx.Status = "p."+t.TransactionID, adapterv1.TransactionStatus_TRANSACTION_STATUS_PENDING
	}
	if t.ValueDate != "" {
		if !validDate(t.ValueDate) {
			return nil, errors.New("the bank answered a malformed valueDate")
		}
		tx.ValueDate = t.ValueDate
	}
	// The counterparty is the creditor of money leaving the account and
	// the debtor of money coming in.
	if m.GetUnits() < 0 || m.GetNanos() < 0 {
		tx.CounterpartyName = text(t.CreditorName, 140)
	} else {
		tx.CounterpartyName = text(t.DebtorName, 140)
	}
	if mccPattern.MatchString(t.MerchantCategoryCo) {
		tx.MerchantCategoryCode = t.MerchantCategoryCo
	}
	return tx, nil
}

// fetchTransactions reads every page of the account's transactions.
func (a *Adapter) fetchTransactions(ctx context.Context, req *adapterv1.SyncTransactionsRequest, dateFrom string) (booked, pending []transactionJSON, err error) {
	path := "/v1/accounts/" + url.PathEscape(req.GetBankAccountId()) + "/transactions"
	query := url.Values{"bookingStatus": {"both"}, "dateFrom": {dateFrom}}
	for page := 0; ; page++ {
		if page == a.opts.MaxPages {
			return nil, nil, errors.New("read transactions: the bank's _links.next goes on too long")
		}
		ans, err := a.do(ctx, request{method: http.MethodGet, path: path, query: query, consentID: req.GetBankConsentId()})
		if err != nil {
			return nil, nil, err
		}
		if ans.status != http.StatusOK {
			if err := a.mapAccountError(ctx, ans, req.GetBankConsentId()); err != nil {
				return nil, nil, err
			}
			return nil, nil, unexpected("read transactions", ans)
		}
		var body struct {
			Transactions struct {
				Booked  []transactionJSON `json:"booked"`
				Pending []transactionJSON `json:"pending"`
				Links   links             `json:"_links"`
			} `json:"transactions"`
		}
		if err := ans.decode(&body); err != nil {
			return nil, nil, err
		}
		booked = append(booked, body.Transactions.Booked...)
		pending = append(pending, body.Transactions.Pending...)
		next := body.Transactions.Links["next"].Href
		if next == "" {
			return booked, pending, nil
		}
		if path, query, err = a.follow(next); err != nil {
			return nil, nil, err
		}
	}
}

// SyncTransactions implements adapters.TransactionsAdapter (see the
// comment at the top of this file).
func (a *Adapter) SyncTransactions(ctx context.Context, req *adapterv1.SyncTransactionsRequest) (*adapterv1.SyncTransactionsResponse, error) {
	cur, err := a.decodeCursor(req.GetCursor(), req.GetBankAccountId())
	if err != nil {
		return nil, err
	}
	dateFrom := cur.Date
	if dateFrom == "" {
		dateFrom = a.opts.Now().UTC().AddDate(0, 0, -a.opts.HistoryDays).Format(time.DateOnly)
	}
	bookedJSON, pendingJSON, err := a.fetchTransactions(ctx, req, dateFrom)
	if err != nil {
		return nil, err
	}
	type bookedTx struct {
		date, id string
		tx       *adapterv1.Transaction
	}
	var booked []bookedTx
	seen := map[string]bool{}
	for _, j := range bookedJSON {
		tx, err := j.transaction(true)
		if err != nil {
			return nil, err
		}
		if seen[tx.GetTransactionId()] {
			return nil, errors.New("read transactions: the bank answered a transaction twice")
		}
		seen[tx.GetTransactionId()] = true
		// Only those after the cursor are new.
		if cur.Date != "" && cmp.Or(cmp.Compare(j.BookingDate, cur.Date), cmp.Compare(j.TransactionID, cur.ID)) <= 0 {
			continue
		}
		booked = append(booked, bookedTx{j.BookingDate, j.TransactionID, tx})
	}
	slices.SortFunc(booked, func(x, y bookedTx) int { return cmp.Or(cmp.Compare(x.date, y.date), cmp.Compare(x.id, y.id)) })
	pendingNow := map[string]*adapterv1.Transaction{}
	var pendingOrder []string
	for _, j := range pendingJSON {
		tx, err := j.transaction(false)
		if err != nil {
			return nil, err
		}
		if seen[tx.GetTransactionId()] {
			return nil, errors.New("read transactions: the bank answered a transaction twice")
		}
		seen[tx.GetTransactionId()] = true
		pendingNow[j.TransactionID] = tx
		pendingOrder = append(pendingOrder, j.TransactionID)
	}
	bookedIDs := map[string]bool{}
	for _, b := range booked {
		bookedIDs[b.id] = true
	}

	budget := int(req.GetCount())
	if budget == 0 {
		budget = 100
	}
	resp := &adapterv1.SyncTransactionsResponse{}
	used := 0
	full := func(need int) bool {
		// A posted transaction and its removed pending one go together,
		// even when count is 1: the protocol wants them in one response.
		return used > 0 && used+need > budget
	}
	reported := slices.Clone(cur.Pending)
	// Booked transactions, in order; a posted one takes its pending one
	// with it.
	for _, b := range booked {
		posts := slices.Contains(reported, b.id)
		need := 1
		if posts {
			need = 2
		}
		if full(need) {
			resp.HasMore = true
			break
		}
		if posts {
			b.tx.PendingTransactionId = "p." + b.id
			resp.RemovedTransactionIds = append(resp.RemovedTransactionIds, "p."+b.id)
			reported = slices.DeleteFunc(reported, func(id string) bool { return id == b.id })
		}
		resp.Added = append(resp.Added, b.tx)
		cur.Date, cur.ID = b.date, b.id
		used += need
	}
	// Pending transactions gone without posting: dropped.
	for _, id := range slices.Clone(reported) {
		if _, still := pendingNow[id]; still || bookedIDs[id] {
			continue
		}
		if full(1) {
			resp.HasMore = true
			break
		}
		resp.RemovedTransactionIds = append(resp.RemovedTransactionIds, "p."+id)
		reported = slices.DeleteFunc(reported, func(r string) bool { return r == id })
		used++
	}
	// New pending transactions, once the booked ones are all out.
	if !resp.HasMore {
		for _, id := range pendingOrder {
			if slices.Contains(reported, id) || seen["b."+id] {
				continue // reported already, or booked in the same answer
			}
			if full(1) {
				resp.HasMore = true
				break
			}
			if pendingBytes(reported)+len(id)+3 > pendingBudget {
				break // reported once others post or drop
			}
			resp.Added = append(resp.Added, pendingNow[id])
			reported = append(reported, id)
			used++
		}
	}
	cur.Pending = reported
	if resp.NextCursor, err = a.cursors.Encode(req.GetBankAccountId(), cur); err != nil {
		return nil, err
	}
	return resp, nil
}
