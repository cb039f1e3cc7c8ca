package transport

import (
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/balance/internal/app"
	"github.com/bankbridge/bankbridge/services/platform/names"
)

// The domain's enum values are the contract's names without their prefix,
// so they map by name, never by number.

func accountToProto(a app.Account) *balancev1.Account {
	out := &balancev1.Account{
		Name:         a.Name.String(),
		BankId:       a.Name.BankID,
		Link:         a.Link,
		DisplayName:  a.DisplayName,
		Type:         balancev1.AccountType(balancev1.AccountType_value["ACCOUNT_TYPE_"+string(a.Type)]),
		CurrencyCode: a.CurrencyCode,
		Status:       balancev1.AccountStatus(balancev1.AccountStatus_value["ACCOUNT_STATUS_"+string(a.Status)]),
	}
	if m := a.MaskedNumber; m != (app.MaskedNumber{}) {
		out.MaskedNumber = &commonv1.MaskedAccountNumber{Last4: m.Last4, Display: m.Display}
	}
	return out
}

func balanceToProto(b app.AccountBalance) *balancev1.AccountBalance {
	out := &balancev1.AccountBalance{Name: b.Account.Balance(), Stale: b.Stale, AsOf: ts(b.AsOf)}
	for _, x := range b.Balances {
		out.Balances = append(out.Balances, &balancev1.Balance{
			Type:                balancev1.BalanceType(balancev1.BalanceType_value["BALANCE_TYPE_"+string(x.Type)]),
			Amount:              moneyToProto(x.Amount),
			AsOf:                ts(x.AsOf),
			CreditLimitIncluded: x.CreditLimitIncluded,
			Display:             x.Display,
		})
	}
	return out
}

func transactionsToProto(account names.Account, ts []app.Transaction) []*balancev1.Transaction {
	out := make([]*balancev1.Transaction, len(ts))
	for i, t := range ts {
		out[i] = transactionToProto(account, t)
	}
	return out
}

func transactionToProto(account names.Account, t app.Transaction) *balancev1.Transaction {
	out := &balancev1.Transaction{
		Name:                 account.Transaction(t.ID).String(),
		Amount:               moneyToProto(t.Amount),
		Status:               statusToProto(t.Status),
		BookingTime:          ts(t.BookingTime),
		ValueTime:            ts(t.ValueTime),
		TransactionTime:      ts(t.TransactionTime),
		Description:          t.Description,
		MerchantCategoryCode: t.MerchantCategoryCode,
		CounterpartyName:     t.CounterpartyName,
	}
	if t.PendingID != "" {
		out.PendingTransaction = account.Transaction(t.PendingID).String()
	}
	return out
}

func statusToProto(s app.TransactionStatus) balancev1.TransactionStatus {
	return balancev1.TransactionStatus(balancev1.TransactionStatus_value["TRANSACTION_STATUS_"+string(s)])
}

func statusFromProto(s balancev1.TransactionStatus) app.TransactionStatus {
	if s == balancev1.TransactionStatus_TRANSACTION_STATUS_UNSPECIFIED {
		return ""
	}
	return app.TransactionStatus(strings.TrimPrefix(s.String(), "TRANSACTION_STATUS_"))
}

func moneyToProto(m app.Money) *commonv1.Money {
	return &commonv1.Money{CurrencyCode: m.CurrencyCode, Units: m.Units, Nanos: m.Nanos}
}

// ts is an optional timestamp: unset for the zero time.
func ts(t time.Time) (out *timestamppb.Timestamp) {
	if !t.IsZero() {
		out = timestamppb.New(t)
	}
	return out
}

// timeOf is the time of an optional timestamp: zero when unset.
func timeOf(t *timestamppb.Timestamp) (out time.Time) {
	if t != nil {
		out = t.AsTime()
	}
	return out
}
