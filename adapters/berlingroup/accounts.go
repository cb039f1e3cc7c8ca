package berlingroup

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/adapters"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// amount is a NextGenPSD2 amount: an ISO 4217 currency and a decimal.
type amount struct {
	Currency string `json:"currency"`
	Amount   string `json:"amount"`
}

// currencyPattern and amountPattern are the specification's: an ISO 4217
// code; up to 14 digits and 3 decimals, a leading minus for debits.
var (
	currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)
	amountPattern   = regexp.MustCompile(`^-?[0-9]{1,14}(\.[0-9]{1,3})?$`)
)

// money converts an amount exactly, to the currency's minor unit; an
// amount outside the specification's format, or with more decimals than
// its currency has, is the bank's mistake.
func (m amount) money() (*commonv1.Money, error) {
	if !currencyPattern.MatchString(m.Currency) || !amountPattern.MatchString(m.Amount) {
		return nil, errors.New("the bank answered a malformed amount")
	}
	money, err := adapters.ParseMoney(m.Currency, m.Amount)
	if err != nil {
		return nil, errors.New("the bank answered a malformed amount")
	}
	return money, nil
}

// accountDetails is a NextGenPSD2 accountDetails.
type accountDetails struct {
	ResourceID      string `json:"resourceId"`
	IBAN            string `json:"iban"`
	BBAN            string `json:"bban"`
	MaskedPan       string `json:"maskedPan"`
	Currency        string `json:"currency"`
	Name            string `json:"name"`
	Product         string `json:"product"`
	CashAccountType string `json:"cashAccountType"`
}

// cashAccountTypes maps ISO 20022 ExternalCashAccountType1Code values to
// bankbridge's account types; any other is OTHER.
var cashAccountTypes = map[string]adapterv1.AccountType{
	"CACC": adapterv1.AccountType_ACCOUNT_TYPE_CURRENT,
	"TRAN": adapterv1.AccountType_ACCOUNT_TYPE_CURRENT,
	"SVGS": adapterv1.AccountType_ACCOUNT_TYPE_SAVINGS,
	"CARD": adapterv1.AccountType_ACCOUNT_TYPE_CARD,
	"LOAN": adapterv1.AccountType_ACCOUNT_TYPE_LOAN,
}

// masked is the account's number as bankbridge may show it.
func masked(number string) (*commonv1.MaskedAccountNumber, error) {
	m := adapters.MaskedAccountNumber(number)
	if m.GetLast4() == "" {
		return nil, errors.New("the bank answered an account without a usable number")
	}
	return m, nil
}

// text keeps a bank text for the customer: full IBANs and card numbers in
// it masked, cut to max runes.
func text(s string, max int) string {
	s = strings.TrimSpace(adapters.ScrubNumbers(strings.ToValidUTF8(s, "")))
	if utf8.RuneCountInString(s) > max {
		s = strings.TrimSpace(string([]rune(s)[:max]))
	}
	return s
}

func (d accountDetails) account() (*adapterv1.Account, error) {
	if !idPattern.MatchString(d.ResourceID) || !currencyPattern.MatchString(d.Currency) {
		return nil, errors.New("the bank answered a malformed account")
	}
	number := d.IBAN
	if number == "" {
		number = d.BBAN
	}
	if number == "" {
		number = d.MaskedPan
	}
	m, err := masked(number)
	if err != nil {
		return nil, err
	}
	name := text(d.Name, 128)
	if name == "" {
		name = text(d.Product, 128)
	}
	if name == "" {
		name = "Account " + m.GetDisplay()
	}
	typ, ok := cashAccountTypes[d.CashAccountType]
	if !ok {
		typ = adapterv1.AccountType_ACCOUNT_TYPE_OTHER
	}
	return &adapterv1.Account{BankAccountId: d.ResourceID, DisplayName: name, MaskedNumber: m, Type: typ, CurrencyCode: d.Currency}, nil
}

// ListAccounts implements adapters.AccountsAdapter: GET /v1/accounts.
func (a *Adapter) ListAccounts(ctx context.Context, req *adapterv1.ListAccountsRequest) (*adapterv1.ListAccountsResponse, error) {
	ans, err := a.do(ctx, request{method: http.MethodGet, path: "/v1/accounts", consentID: req.GetBankConsentId()})
	if err != nil {
		return nil, err
	}
	if ans.status != http.StatusOK {
		if err := a.mapCommon(ctx, ans, req.GetBankConsentId()); err != nil {
			return nil, err
		}
		return nil, unexpected("list accounts", ans)
	}
	var list struct {
		Accounts []accountDetails `json:"accounts"`
	}
	if err := ans.decode(&list); err != nil {
		return nil, err
	}
	if len(list.Accounts) > 200 {
		return nil, errors.New("list accounts: the bank answered more than 200 accounts")
	}
	resp := &adapterv1.ListAccountsResponse{}
	seen := map[string]bool{}
	for _, d := range list.Accounts {
		acc, err := d.account()
		if err != nil {
			return nil, err
		}
		if seen[acc.GetBankAccountId()] {
			return nil, errors.New("list accounts: the bank answered an account twice")
		}
		seen[acc.GetBankAccountId()] = true
		resp.Accounts = append(resp.Accounts, acc)
	}
	return resp, nil
}

// balanceTypes maps NextGenPSD2 balanceType values to bankbridge's;
// the others (authorised, openingAvailable, closingAvailable,
// previouslyClosedBooked, information) have no bankbridge type and are
// left out.
var balanceTypes = map[string]adapterv1.BalanceType{
	"closingBooked":    adapterv1.BalanceType_BALANCE_TYPE_CLOSING_BOOKED,
	"expected":         adapterv1.BalanceType_BALANCE_TYPE_EXPECTED,
	"openingBooked":    adapterv1.BalanceType_BALANCE_TYPE_OPENING_BOOKED,
	"interimAvailable": adapterv1.BalanceType_BALANCE_TYPE_INTERIM_AVAILABLE,
	"interimBooked":    adapterv1.BalanceType_BALANCE_TYPE_INTERIM_BOOKED,
	"forwardAvailable": adapterv1.BalanceType_BALANCE_TYPE_FORWARD_AVAILABLE,
	"nonInvoiced":      adapterv1.BalanceType_BALANCE_TYPE_NON_INVOICED,
}

type balanceJSON struct {
	BalanceType         string `json:"balanceType"`
	BalanceAmount       amount `json:"balanceAmount"`
	CreditLimitIncluded bool   `json:"creditLimitIncluded"`
	LastChangeDateTime  string `json:"lastChangeDateTime"`
	ReferenceDate       string `json:"referenceDate"`
}

// asOf is when a balance refers to: lastChangeDateTime, else the start of
// referenceDate (UTC), else when the bank answered.
func (b balanceJSON) asOf(answered time.Time) (time.Time, error) {
	if b.LastChangeDateTime != "" {
		return time.Parse(time.RFC3339, b.LastChangeDateTime)
	}
	if b.ReferenceDate != "" {
		return time.Parse(time.DateOnly, b.ReferenceDate)
	}
	return answered, nil
}

// GetBalances implements adapters.AccountsAdapter:
// GET /v1/accounts/{id}/balances, each balanceType mapped as
// [balanceTypes] says, the first of each type kept.
func (a *Adapter) GetBalances(ctx context.Context, req *adapterv1.GetBalancesRequest) (*adapterv1.GetBalancesResponse, error) {
	ans, err := a.do(ctx, request{method: http.MethodGet,
		path: "/v1/accounts/" + url.PathEscape(req.GetBankAccountId()) + "/balances", consentID: req.GetBankConsentId()})
	if err != nil {
		return nil, err
	}
	if ans.status != http.StatusOK {
		if err := a.mapAccountError(ctx, ans, req.GetBankConsentId()); err != nil {
			return nil, err
		}
		return nil, unexpected("read balances", ans)
	}
	var body struct {
		Balances []balanceJSON `json:"balances"`
	}
	if err := ans.decode(&body); err != nil {
		return nil, err
	}
	answered := a.opts.Now()
	resp := &adapterv1.GetBalancesResponse{}
	seen := map[adapterv1.BalanceType]bool{}
	for _, b := range body.Balances {
		typ, ok := balanceTypes[b.BalanceType]
		if !ok || seen[typ] {
			continue
		}
		seen[typ] = true
		m, err := b.BalanceAmount.money()
		if err != nil {
			return nil, err
		}
		at, err := b.asOf(answered)
		if err != nil {
			return nil, errors.New("read balances: the bank answered a malformed date")
		}
		resp.Balances = append(resp.Balances, &adapterv1.Balance{Type: typ, Amount: m, AsOf: timestamppb.New(at), CreditLimitIncluded: b.CreditLimitIncluded})
	}
	if len(resp.Balances) == 0 {
		return nil, errors.New("read balances: the bank answered no balance of a type bankbridge knows")
	}
	return resp, nil
}

// mapAccountError maps an error answer of a call on one account:
// RESOURCE_UNKNOWN is NOT_FOUND under a consent the bank knows.
func (a *Adapter) mapAccountError(ctx context.Context, ans *answer, consentID string) error {
	if err := a.mapCommon(ctx, ans, consentID); err != nil {
		return err
	}
	if ans.has("RESOURCE_UNKNOWN") || ans.status == http.StatusNotFound {
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "the consent has no such account")
	}
	return nil
}
