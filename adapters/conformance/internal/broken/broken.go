// Package broken holds deliberately broken bank adapters: Sandbox Bank
// wrapped so that it gets one rule of the protocol wrong each. The kit's
// tests and services/e2e's run the kit against each and want the check
// that rule belongs to to fail, by id, and the others to pass.
package broken

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/adapters/sandbox"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// Adapter is one broken adapter: its name, the check it must fail, and how
// to build it over a sandbox.
type Adapter struct {
	// Name is how the broken-bank command and the tests pick it.
	Name string
	// Fails is the id of the check the kit must fail it on.
	Fails string
	// What says what it gets wrong.
	What string
	// AcceptsAnyKey makes the server take any API key (and none): the
	// server, not the bank, is what is broken.
	AcceptsAnyKey bool
	wrap          func(*sandbox.Bank) adapters.Adapter
}

// Adapters lists every broken adapter, by name.
func Adapters() []Adapter {
	return []Adapter{
		{Name: "ignores-count", Fails: "transactions/count-honoured",
			What: "SyncTransactions ignores count and answers a whole history at once",
			wrap: func(b *sandbox.Bank) adapters.Adapter { return ignoresCount{b} }},
		{Name: "leaks-accounts", Fails: "accounts/other-customer-isolation",
			What: "an account is looked up by id alone, under whichever consent asks",
			wrap: func(b *sandbox.Bank) adapters.Adapter { return &leaksAccounts{Bank: b} }},
		{Name: "accepts-any-key", Fails: "auth/credentials-rejected", AcceptsAnyKey: true,
			What: "the server lets in a caller with a wrong API key, or none",
			wrap: func(b *sandbox.Bank) adapters.Adapter { return b }},
		{Name: "hides-outage", Fails: "errors/bank-unavailable",
			What: "a bank that is down answers an empty list instead of BANK_UNAVAILABLE",
			wrap: func(b *sandbox.Bank) adapters.Adapter { return hidesOutage{b} }},
	}
}

// Lookup returns the broken adapter named name.
func Lookup(name string) (Adapter, error) {
	i := slices.IndexFunc(Adapters(), func(a Adapter) bool { return a.Name == name })
	if i < 0 {
		var names []string
		for _, a := range Adapters() {
			names = append(names, a.Name)
		}
		sort.Strings(names)
		return Adapter{}, fmt.Errorf("no broken adapter %q; there are %v", name, names)
	}
	return Adapters()[i], nil
}

// Server returns the adapter's gRPC service over bank, taking keys when
// it is not the one that accepts any.
func (a Adapter) Server(bank *sandbox.Bank, keys func() []string, opts ...adapters.ServerOption) adapterv1.BankAdapterServiceServer {
	if !a.AcceptsAnyKey && keys != nil {
		opts = append(opts, adapters.WithAPIKeys(keys))
	}
	return adapters.NewServer(a.wrap(bank), opts...)
}

// ignoresCount pages as if count were always 0 (the bank's default page).
type ignoresCount struct{ *sandbox.Bank }

func (b ignoresCount) SyncTransactions(ctx context.Context, req *adapterv1.SyncTransactionsRequest) (*adapterv1.SyncTransactionsResponse, error) {
	req = proto.CloneOf(req)
	req.Count = 0
	return b.Bank.SyncTransactions(ctx, req)
}

// leaksAccounts remembers every consent it granted and, when an account is
// not under the asking consent, serves it from another that has it.
type leaksAccounts struct {
	*sandbox.Bank
	mu       sync.Mutex
	consents []string
}

func (b *leaksAccounts) VerifySca(ctx context.Context, req *adapterv1.VerifyScaRequest) (*adapterv1.VerifyScaResponse, error) {
	resp, err := b.Bank.VerifySca(ctx, req)
	if err == nil && resp.GetStatus() == adapterv1.ScaStatus_SCA_STATUS_FINALISED {
		b.mu.Lock()
		b.consents = append(b.consents, resp.GetBankConsentId())
		b.mu.Unlock()
	}
	return resp, err
}

// anyConsent retries call under every consent it knows while the answer
// is NOT_FOUND.
func anyConsent[T any](b *leaksAccounts, call func(consent string) (T, error), consent string) (T, error) {
	resp, err := call(consent)
	if !apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_NOT_FOUND) {
		return resp, err
	}
	b.mu.Lock()
	consents := slices.Clone(b.consents)
	b.mu.Unlock()
	for _, other := range consents {
		if r, e := call(other); e == nil {
			return r, nil
		}
	}
	return resp, err
}

func (b *leaksAccounts) GetBalances(ctx context.Context, req *adapterv1.GetBalancesRequest) (*adapterv1.GetBalancesResponse, error) {
	return anyConsent(b, func(consent string) (*adapterv1.GetBalancesResponse, error) {
		r := proto.CloneOf(req)
		r.BankConsentId = consent
		return b.Bank.GetBalances(ctx, r)
	}, req.GetBankConsentId())
}

func (b *leaksAccounts) SyncTransactions(ctx context.Context, req *adapterv1.SyncTransactionsRequest) (*adapterv1.SyncTransactionsResponse, error) {
	return anyConsent(b, func(consent string) (*adapterv1.SyncTransactionsResponse, error) {
		r := proto.CloneOf(req)
		r.BankConsentId = consent
		return b.Bank.SyncTransactions(ctx, r)
	}, req.GetBankConsentId())
}

// hidesOutage answers ListAccounts and ListCards with nothing when the
// bank is down.
type hidesOutage struct{ *sandbox.Bank }

func (b hidesOutage) ListAccounts(ctx context.Context, req *adapterv1.ListAccountsRequest) (*adapterv1.ListAccountsResponse, error) {
	resp, err := b.Bank.ListAccounts(ctx, req)
	if apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE) {
		return &adapterv1.ListAccountsResponse{}, nil
	}
	return resp, err
}

func (b hidesOutage) ListCards(ctx context.Context, req *adapterv1.ListCardsRequest) (*adapterv1.ListCardsResponse, error) {
	resp, err := b.Bank.ListCards(ctx, req)
	if apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE) {
		return &adapterv1.ListCardsResponse{}, nil
	}
	return resp, err
}
