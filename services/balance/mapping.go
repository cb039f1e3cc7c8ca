package main

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	balancev1 "github.com/bankbridge/bankbridge/gen/bankbridge/balance/v1"
)

// The adapter protocol and the public contract name the same ISO 20022 /
// Berlin Group concepts but number their enums independently, so values
// are mapped by name, never by number.

func accountType(t adapterv1.AccountType) balancev1.AccountType {
	if t == adapterv1.AccountType_ACCOUNT_TYPE_CARD {
		return balancev1.AccountType_ACCOUNT_TYPE_CREDIT_CARD
	}
	if v, ok := balancev1.AccountType_value[t.String()]; ok {
		return balancev1.AccountType(v)
	}
	return balancev1.AccountType_ACCOUNT_TYPE_OTHER
}

func balanceType(t adapterv1.BalanceType) balancev1.BalanceType {
	return balancev1.BalanceType(balancev1.BalanceType_value[t.String()])
}

func transactionStatus(s adapterv1.TransactionStatus) balancev1.TransactionStatus {
	return balancev1.TransactionStatus(balancev1.TransactionStatus_value[s.String()])
}

func toAccount(ref accountRef, link string, a *adapterv1.Account) *balancev1.Account {
	return &balancev1.Account{
		Name:         ref.name(),
		BankId:       ref.bankID,
		Link:         link,
		DisplayName:  a.GetDisplayName(),
		MaskedNumber: a.GetMaskedNumber(),
		Type:         accountType(a.GetType()),
		CurrencyCode: a.GetCurrencyCode(),
		Status:       balancev1.AccountStatus_ACCOUNT_STATUS_ACTIVE,
	}
}

func toBalances(name string, bs []*adapterv1.Balance, now time.Time) *balancev1.AccountBalance {
	out := &balancev1.AccountBalance{Name: name + "/balance", AsOf: timestamppb.New(now)}
	for _, b := range bs {
		out.Balances = append(out.Balances, &balancev1.Balance{
			Type:                balanceType(b.GetType()),
			Amount:              b.GetAmount(),
			AsOf:                b.GetAsOf(),
			CreditLimitIncluded: b.GetCreditLimitIncluded(),
		})
	}
	return out
}

// date turns an ISO 8601 date into midnight UTC of that day.
func date(s string) *timestamppb.Timestamp {
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return nil
	}
	return timestamppb.New(t)
}

func toTransaction(account string, t *adapterv1.Transaction) *balancev1.Transaction {
	out := &balancev1.Transaction{
		Name:                 account + "/transactions/" + t.GetTransactionId(),
		Amount:               t.GetAmount(),
		Status:               transactionStatus(t.GetStatus()),
		ValueTime:            date(t.GetValueDate()),
		Description:          t.GetDescription(),
		CounterpartyName:     t.GetCounterpartyName(),
		MerchantCategoryCode: t.GetMerchantCategoryCode(),
	}
	if out.Status == balancev1.TransactionStatus_TRANSACTION_STATUS_BOOKED {
		out.BookingTime = date(t.GetBookingDate())
		if out.BookingTime == nil {
			out.BookingTime = t.GetTransactionTime()
		}
		if p := t.GetPendingTransactionId(); p != "" {
			out.PendingTransaction = account + "/transactions/" + p
		}
	}
	return out
}
