// Package app is the balance service's logic: a user's accounts, balances
// and transactions at the banks they linked, read through each bank's
// adapter under the consent the server kit checked, with the account lists
// and last balances kept in memory to ride out a bank that is down.
//
// It knows nothing of gRPC: transport calls it with names and domain
// values, and it reaches banks through [Banks] and, for the one call that
// spans banks, consent through [Consents]. Errors meant for the caller are
// apierr errors; anything else is an internal failure that the kit masks.
package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
)

// Defaults of Config.
const (
	// DefaultAccountsFresh is how long an account list is served without
	// asking the bank again.
	DefaultAccountsFresh = time.Minute
	// DefaultKeep is how long an account list or a balance may stand in
	// for a bank that is down.
	DefaultKeep = 24 * time.Hour
)

// The lists the service serves, as page tokens name them.
const (
	listAccounts     = "bankbridge.balance.v1.BalanceService/ListAccounts"
	listTransactions = "bankbridge.balance.v1.BalanceService/ListTransactions"
)

// Config tunes the service. Zero fields take their defaults.
type Config struct {
	// Pages mints and reads page tokens. Required.
	Pages *pagetoken.Tokens
	// AccountsFresh is how long an account list is reused.
	AccountsFresh time.Duration
	// Keep is how old an account list or balance served while its bank is
	// down may be.
	Keep time.Duration
	// CacheEntries bounds each in-memory cache (account lists, last known
	// balances); default DefaultCacheEntries.
	CacheEntries int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Service is the balance service's logic. It is safe for concurrent use.
type Service struct {
	banks     Banks
	consents  Consents
	pages     *pagetoken.Tokens
	now       func() time.Time
	lastKnown *lastKnown
	accounts  *accountCache
}

// New returns the service.
func New(banks Banks, consents Consents, cfg Config) (*Service, error) {
	if banks == nil || consents == nil || cfg.Pages == nil {
		return nil, errors.New("balance: banks, consents and page tokens are required")
	}
	cfg.AccountsFresh = cmp.Or(cfg.AccountsFresh, DefaultAccountsFresh)
	cfg.Keep = cmp.Or(cfg.Keep, DefaultKeep)
	cfg.CacheEntries = cmp.Or(cfg.CacheEntries, DefaultCacheEntries)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{
		banks: banks, consents: consents, pages: cfg.Pages, now: cfg.Now,
		lastKnown: newLastKnown(cfg.Keep, cfg.CacheEntries, cfg.Now),
		accounts:  newAccountCache(cfg.AccountsFresh, cfg.Keep, cfg.CacheEntries, cfg.Now),
	}, nil
}

// at returns how to reach the bank of account under the caller's consent.
// An account at a bank that is not configured does not exist.
func (s *Service) at(c Caller, account names.Account) (BankAccess, error) {
	if !s.banks.Has(account.BankID) {
		return BankAccess{}, AccountNotFound()
	}
	if c.BankID != account.BankID || c.Consent.BankConsentID == "" {
		// The kit checks consent for the bank the name carries; anything
		// else is a wiring bug, and no bank is called under another bank's
		// consent.
		return BankAccess{}, fmt.Errorf("consent checked for bank %q, account at bank %q", c.BankID, account.BankID)
	}
	return BankAccess{BankID: account.BankID, BankConsentID: c.Consent.BankConsentID, Purpose: c.Purpose}, nil
}

// bankAccounts returns the user's accounts at one bank under consent:
// fresh from the cache, else from the bank, else (bank down) from the
// cache while it is kept. A list that names an account twice is the
// bank's failure: which of the two would be the account?
func (s *Service) bankAccounts(ctx context.Context, user string, at BankAccess, link string) ([]Account, error) {
	list, fresh, cached := s.accounts.get(user, at.BankID, link)
	if !cached || !fresh {
		read, err := s.banks.ListAccounts(ctx, at)
		if err == nil {
			err = uniqueAccounts(at.BankID, read)
		}
		switch {
		case err == nil:
			list = read
			s.accounts.put(user, at.BankID, link, list)
		case !cached || !bankDown(err):
			return nil, err
		}
	}
	out := make([]Account, len(list))
	for i, a := range list {
		out[i] = Account{
			Name:        names.Account{User: user, BankID: at.BankID, BankAccountID: a.ID},
			Link:        link,
			Status:      AccountActive,
			BankAccount: a,
		}
	}
	return out, nil
}

// ListAccountsInput is what ListAccounts needs.
type ListAccountsInput struct {
	User string
	// BankID, when set, lists that bank's accounts only.
	BankID    string
	PageSize  int
	PageToken string
}

// ListAccounts returns one page of the user's accounts at every bank whose
// consent covers accounts (or at in.BankID only), ordered by name, and the
// token of the next page. Without a bank filter, a bank without consent is
// left out; a bank that fails is left out too, unless every bank failed.
func (s *Service) ListAccounts(ctx context.Context, c Caller, in ListAccountsInput) ([]Account, string, error) {
	list := pagetoken.List{Method: listAccounts, Parent: names.User(in.User), Filters: []string{in.BankID}}
	if _, _, err := s.pages.Decode(list, in.PageToken); err != nil {
		return nil, "", err // before any bank is asked
	}
	if in.BankID != "" && !s.banks.Has(in.BankID) {
		return nil, "", errBankNotFound(in.BankID)
	}
	var (
		all      []Account
		firstErr error
	)
	for _, bank := range s.banks.IDs() {
		if in.BankID != "" && bank != in.BankID {
			continue
		}
		consent, err := s.consentAt(ctx, c, in.User, bank)
		if err != nil {
			if in.BankID != "" {
				return nil, "", err
			}
			continue // lapsed or absent consent for this bank: not listed
		}
		accts, err := s.bankAccounts(ctx, in.User, BankAccess{BankID: bank, BankConsentID: consent.BankConsentID, Purpose: c.Purpose}, consent.Link)
		if err != nil && in.BankID == "" && apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_CONSENT_REVOKED_BY_BANK) {
			// The bank forgot this consent: the link is revoked, and its
			// accounts are no longer listed (the kit reports it when the
			// call names the bank).
			s.consents.ReportBankRevocation(ctx, consent.Link)
		}
		if err != nil {
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		all = append(all, accts...)
	}
	if len(all) == 0 && firstErr != nil {
		// Every consented bank failed and nothing is cached: say so rather
		// than answer an empty list that looks like "no accounts".
		return nil, "", firstErr
	}
	slices.SortFunc(all, func(x, y Account) int { return strings.Compare(x.Name.String(), y.Name.String()) })
	return pagetoken.Paginate(s.pages, list, all, in.PageSize, in.PageToken)
}

// consentAt returns the consent to read bank's accounts with: the one the
// kit decided when the call named that bank, else the user's consent for
// it, asked now.
func (s *Service) consentAt(ctx context.Context, c Caller, user, bank string) (Consent, error) {
	if c.BankID == bank && c.Consent.BankConsentID != "" {
		return c.Consent, nil
	}
	return s.consents.Decide(ctx, user, bank, commonv1.Scope_SCOPE_ACCOUNTS, c.Purpose)
}

// uniqueAccounts refuses an account list that names an account twice.
func uniqueAccounts(bankID string, list []BankAccount) error {
	seen := make(map[string]bool, len(list))
	for _, a := range list {
		if seen[a.ID] {
			return errBankAnsweredBadly(bankID, "its adapter listed an account twice")
		}
		seen[a.ID] = true
	}
	return nil
}

// GetAccount returns one account.
func (s *Service) GetAccount(ctx context.Context, c Caller, account names.Account) (Account, error) {
	a, _, err := s.account(ctx, c, account)
	return a, err
}

// account returns the named account and how to reach its bank, once the
// bank has listed it under the caller's consent. Every read of an account's
// data goes through here first: the adapter's word that an account id is
// the user's is its account list for this consent, not its willingness to
// answer for the id, so an account the list does not show is NOT_FOUND and
// the bank is never asked about it.
func (s *Service) account(ctx context.Context, c Caller, account names.Account) (Account, BankAccess, error) {
	at, err := s.at(c, account)
	if err != nil {
		return Account{}, BankAccess{}, err
	}
	accts, err := s.bankAccounts(ctx, account.User, at, c.Consent.Link)
	if err != nil {
		return Account{}, BankAccess{}, err
	}
	for _, a := range accts {
		if a.Name == account {
			return a, at, nil
		}
	}
	return Account{}, BankAccess{}, AccountNotFound()
}

// GetBalance reads the account's balances from the bank. While the bank
// cannot be reached, it returns the last balances read within Keep, marked
// stale.
func (s *Service) GetBalance(ctx context.Context, c Caller, account names.Account) (AccountBalance, error) {
	_, at, err := s.account(ctx, c, account)
	if err != nil {
		if last, ok := s.lastKnown.get(account.Balance()); ok && bankDown(err) {
			// Kept only for an account the bank listed when it was read.
			return last, nil
		}
		return AccountBalance{}, err
	}
	balances, err := s.banks.GetBalances(ctx, at, account.BankAccountID)
	if err != nil {
		if last, ok := s.lastKnown.get(account.Balance()); ok && bankDown(err) {
			return last, nil
		}
		return AccountBalance{}, err
	}
	markDisplay(balances)
	b := AccountBalance{Account: account, Balances: balances, AsOf: s.now()}
	s.lastKnown.put(b)
	return b, nil
}
