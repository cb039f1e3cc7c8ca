package app

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
)

// ListInput is what ListReceipts needs.
type ListInput struct {
	User string
	// Filter selects receipts; its MerchantKey is MerchantKey of the
	// merchant name asked for.
	Filter    Filter
	PageSize  int
	PageToken string
}

// ListReceipts returns one page of the latest versions of the user's
// receipts, newest purchase first, and the token of the next page. A page
// is a keyset read: its cost does not grow with the receipts before it.
// When the user's issuer receipts were last read longer ago than the
// issuer interval, a sync is started in the background; the list never
// waits for it.
func (s *Service) ListReceipts(ctx context.Context, in ListInput) ([]Receipt, string, error) {
	f := in.Filter
	list := pagetoken.List{
		Method: listReceipts, Parent: names.User(in.User),
		Filters: []string{f.Transaction, f.MerchantKey, unixMicro(f.Start), unixMicro(f.End), strconv.Itoa(int(f.Match))},
	}
	var readErr error
	rs, next, err := pagetoken.ReadPage(s.pages, list, in.PageSize, in.PageToken,
		func(after *pagetoken.Position, limit int) ([]Receipt, error) {
			rs, err := s.store.ListReceipts(ctx, in.User, f, after, limit)
			readErr = err
			return rs, err
		},
		func(r Receipt) pagetoken.Position {
			return pagetoken.Position{Time: r.Content.PurchaseTime.Truncate(time.Microsecond), ID: r.ID}
		})
	if readErr != nil {
		return nil, "", s.internal(ctx, "list receipts", readErr)
	}
	if err != nil {
		return nil, "", err
	}
	s.kickIssuer(in.User, false)
	return rs, next, nil
}

func unixMicro(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMicro(), 10)
}

// GetReceipt returns one version of the user's receipt.
func (s *Service) GetReceipt(ctx context.Context, user, id string) (Receipt, error) {
	r, err := s.store.Receipt(ctx, user, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return Receipt{}, ReceiptNotFound()
	case err != nil:
		return Receipt{}, s.internal(ctx, "read receipt", err)
	}
	return r, nil
}

// DeleteReceipt deletes the receipt with every version of it.
func (s *Service) DeleteReceipt(ctx context.Context, user, id string) error {
	err := s.store.DeleteChain(ctx, user, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return ReceiptNotFound()
	case err != nil:
		return s.internal(ctx, "delete receipt", err)
	}
	return nil
}
