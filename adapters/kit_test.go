package adapters_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/internal/adaptertest"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// quiet keeps the servers' per-call lines out of the test output.
var quiet = adapters.WithLogger(slog.New(slog.DiscardHandler))

// TestNewInMemoryClient: the in-memory client is real gRPC through the
// SDK's server wrapper: a capability the adapter lacks is
// CAPABILITY_NOT_SUPPORTED with its ErrorInfo, an invalid request
// INVALID_ARGUMENT with a BadRequest naming the field, and after stop
// calls fail.
func TestNewInMemoryClient(t *testing.T) {
	t.Parallel()
	c, stop := adapters.NewInMemoryClient(adapters.NewServer(&adaptertest.TestBank{}, quiet))

	resp, err := c.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: "ok"})
	if err != nil || len(resp.GetAccounts()) == 0 {
		t.Fatalf("ListAccounts = %v, %v; want the test bank's accounts", resp, err)
	}
	_, err = c.ListCards(t.Context(), &adapterv1.ListCardsRequest{BankConsentId: "ok"})
	adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED)

	_, err = c.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: "not a valid id"})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("invalid request: %v; want INVALID_ARGUMENT", err)
	}
	var fields []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	if len(fields) != 1 || fields[0] != "bank_consent_id" {
		t.Errorf("field violations %v; want [bank_consent_id]", fields)
	}

	stop()
	if _, err := c.ListAccounts(t.Context(), &adapterv1.ListAccountsRequest{BankConsentId: "ok"}); status.Code(err) != codes.Canceled {
		t.Errorf("after stop: %v; want CANCELLED (the connection is closed)", err)
	}
}

// idemBank is cardsBank whose BlockCard is made idempotent by the SDK. What
// the bank does depends on the card id: "flaky" fails with
// BANK_UNAVAILABLE on its first call, "stolen" is refused for good, any
// other is blocked. calls counts what reached the bank, per card.
type idemBank struct {
	adaptertest.CardsBank
	idem  *adapters.Idempotency
	mu    sync.Mutex
	calls map[string]int
}

func newIdemBank(opts ...adapters.IdempotencyOption) *idemBank {
	return &idemBank{
		CardsBank: adaptertest.CardsBank{TestBank: &adaptertest.TestBank{}},
		idem:      adapters.NewIdempotency(adapters.NewMemoryIdempotencyStore(), opts...),
		calls:     map[string]int{},
	}
}

func (b *idemBank) BlockCard(ctx context.Context, req *adapterv1.BlockCardRequest) (*adapterv1.BlockCardResponse, error) {
	return adapters.Idempotent(ctx, b.idem, "BlockCard", req.GetIdempotencyKey(), req,
		func(context.Context) (*adapterv1.BlockCardResponse, error) {
			b.mu.Lock()
			b.calls[req.GetBankCardId()]++
			n := b.calls[req.GetBankCardId()]
			b.mu.Unlock()
			switch {
			case req.GetBankCardId() == "flaky" && n == 1:
				return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE, "bank down", apierr.WithRetryAfter(time.Second))
			case req.GetBankCardId() == "timeout" && n == 1:
				return nil, context.DeadlineExceeded // the adapter's own timeout on the bank
			case req.GetBankCardId() == "stolen":
				return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION, "card already reported stolen")
			}
			// Each answer differs, so a replay is told from a second block.
			return &adapterv1.BlockCardResponse{
				Status:            adapterv1.CardBlockStatus_CARD_BLOCK_STATUS_BLOCKED,
				MaskedCardNumbers: []*commonv1.MaskedAccountNumber{{Last4: fmt.Sprintf("%04d", n), Display: fmt.Sprintf("•••• %04d", n)}},
			}, nil
		})
}

func (b *idemBank) count(card string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[card]
}

func blockReq(card, key string) *adapterv1.BlockCardRequest {
	return &adapterv1.BlockCardRequest{
		BankConsentId: "ok", BankAccountId: "acc-1", BankCardId: card,
		Reason: adapterv1.CardBlockReason_CARD_BLOCK_REASON_LOST, IdempotencyKey: key,
	}
}

// TestIdempotency: through real gRPC, a retry gets the first answer
// without reaching the bank, the key reused with another request is
// IDEMPOTENCY_KEY_REUSED, a final refusal is replayed, and a transient
// failure (BANK_UNAVAILABLE, the adapter's own timeout) is not: the retry
// reaches the bank and succeeds. Concurrent retries reach the bank once;
// after the TTL the key is new again.
func TestIdempotency(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var clock sync.Mutex
	bank := newIdemBank(adapters.WithIdempotencyClock(func() time.Time { clock.Lock(); defer clock.Unlock(); return now }),
		adapters.WithIdempotencyTTL(time.Hour))
	c, stop := adapters.NewInMemoryClient(adapters.NewServer(bank, quiet))
	t.Cleanup(stop)
	ctx := t.Context()

	t.Run("retry gets the first answer", func(t *testing.T) {
		first, err := c.BlockCard(ctx, blockReq("card-1", "key-00000001"))
		if err != nil {
			t.Fatal(err)
		}
		again, err := c.BlockCard(ctx, blockReq("card-1", "key-00000001"))
		if err != nil || !proto.Equal(first, again) {
			t.Fatalf("retry = %v, %v; want the first answer %v", again, err, first)
		}
		if n := bank.count("card-1"); n != 1 {
			t.Errorf("bank called %d times; want 1", n)
		}
	})
	t.Run("key reused with another request", func(t *testing.T) {
		_, err := c.BlockCard(ctx, blockReq("card-2", "key-00000001"))
		adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_IDEMPOTENCY_KEY_REUSED)
		if n := bank.count("card-2"); n != 0 {
			t.Errorf("bank called %d times; want 0", n)
		}
	})
	t.Run("final refusal is replayed", func(t *testing.T) {
		for range 2 {
			_, err := c.BlockCard(ctx, blockReq("stolen", "key-00000002"))
			adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_FAILED_PRECONDITION)
		}
		if n := bank.count("stolen"); n != 1 {
			t.Errorf("bank called %d times; want 1", n)
		}
	})
	for _, card := range []string{"flaky", "timeout"} {
		t.Run("transient failure is not replayed: "+card, func(t *testing.T) {
			_, err := c.BlockCard(ctx, blockReq(card, "key-0000000"+card[:1]))
			adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE)
			resp, err := c.BlockCard(ctx, blockReq(card, "key-0000000"+card[:1]))
			if err != nil || resp.GetStatus() != adapterv1.CardBlockStatus_CARD_BLOCK_STATUS_BLOCKED {
				t.Fatalf("retry after a transient failure = %v, %v; want the card blocked", resp, err)
			}
			if n := bank.count(card); n != 2 {
				t.Errorf("bank called %d times; want 2 (no attempt spent by the failure)", n)
			}
		})
	}
	t.Run("concurrent retries reach the bank once", func(t *testing.T) {
		var wg sync.WaitGroup
		var failed atomic.Int32
		for range 20 {
			wg.Go(func() {
				if _, err := c.BlockCard(ctx, blockReq("card-3", "key-00000003")); err != nil {
					failed.Add(1)
				}
			})
		}
		wg.Wait()
		if n := bank.count("card-3"); n != 1 || failed.Load() != 0 {
			t.Errorf("bank called %d times, %d calls failed; want 1 and 0", n, failed.Load())
		}
	})
	t.Run("after the TTL the key runs again", func(t *testing.T) {
		clock.Lock()
		now = now.Add(time.Hour)
		clock.Unlock()
		if _, err := c.BlockCard(ctx, blockReq("card-1", "key-00000001")); err != nil {
			t.Fatal(err)
		}
		if n := bank.count("card-1"); n != 2 {
			t.Errorf("bank called %d times; want 2", n)
		}
	})
}

// failingStore is an IdempotencyStore whose reads fail, as a database
// that is down.
type failingStore struct{ adapters.IdempotencyStore }

func (failingStore) Get(context.Context, string) (adapters.IdempotencyRecord, bool, error) {
	return adapters.IdempotencyRecord{}, false, errors.New("connection refused: db.internal:5432")
}

// TestIdempotencyStoreDown: when the store cannot be read the write is not
// made, and the caller gets BANK_UNAVAILABLE without the store's words.
func TestIdempotencyStoreDown(t *testing.T) {
	t.Parallel()
	bank := newIdemBank()
	bank.idem = adapters.NewIdempotency(failingStore{adapters.NewMemoryIdempotencyStore()})
	c, stop := adapters.NewInMemoryClient(adapters.NewServer(bank, quiet))
	t.Cleanup(stop)
	_, err := c.BlockCard(t.Context(), blockReq("card-1", "key-00000001"))
	adaptertest.WantReason(t, err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE)
	if adaptertest.ContainsStr(status.Convert(err).Message(), "db.internal") || bank.count("card-1") != 0 {
		t.Errorf("store down: %v, bank called %d times; want no store text and no call", err, bank.count("card-1"))
	}
}
