package adapters_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/adapters"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

func TestUnmaskedNumber(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		text string
		want adapters.LeakKind // "" for none
	}{
		// Card numbers as they are printed.
		{name: "visa", text: "4111111111111111", want: adapters.LeakCard},
		{name: "visa in spaced groups", text: "Visa 4111 1111 1111 1111", want: adapters.LeakCard},
		{name: "mastercard in hyphenated groups", text: "card 5500-0000-0000-0004 blocked", want: adapters.LeakCard},
		{name: "amex 4-6-5", text: "Amex 3782 822463 10005", want: adapters.LeakCard},
		{name: "13 digits", text: "old card 4222222222222", want: adapters.LeakCard},
		{name: "19 digits", text: "6304000000000000000", want: adapters.LeakCard},
		{name: "no-break spaces", text: "4111\u00a01111\u00a01111\u00a01111", want: adapters.LeakCard},
		{name: "glued to words", text: "PAN:4111111111111111.", want: adapters.LeakCard},
		{name: "after another number", text: "ref 1 4111 1111 1111 1111", want: adapters.LeakCard},
		// IBANs.
		{name: "IBAN", text: "DE89370400440532013000", want: adapters.LeakIBAN},
		{name: "IBAN with spaces", text: "Transfer to DE89 3704 0044 0532 0130 00, thanks", want: adapters.LeakIBAN},
		{name: "IBAN in lower case", text: "gb82west12345698765432", want: adapters.LeakIBAN},
		{name: "IBAN in mixed case with spaces", text: "Gb82 West 1234 5698 7654 32", want: adapters.LeakIBAN},
		{name: "IBAN with letters in the BBAN", text: "FR14 2004 1010 0505 0001 3M02 606", want: adapters.LeakIBAN},
		{name: "shortest IBAN", text: "NO93 8601 1117 947", want: adapters.LeakIBAN},
		{name: "IBAN followed by words", text: "IBAN DE89370400440532013000 has balance 1234.56", want: adapters.LeakIBAN},
		{name: "IBAN with no-break spaces", text: "CH93\u00a00076\u00a02011\u00a06238\u00a05295\u00a07", want: adapters.LeakIBAN},
		// What must pass.
		{name: "masked with bullets", text: "•••• 1234"},
		{name: "masked with stars", text: "****1234"},
		{name: "masked card in groups", text: "**** **** **** 1234"},
		{name: "masked IBAN", text: "DE89 •••• •••• •••• ••30 00"},
		{name: "plain text", text: "Everyday account"},
		{name: "dates and amounts", text: "Paid 2024-01-15, EUR 1,234.56, 12345678 points"},
		{name: "card number failing Luhn", text: "Reference 4111 1111 1111 1112"},
		{name: "12 digits passing Luhn", text: "411111111117"},
		{name: "a reference longer than a card", text: "RF 41111111111111111111234"},
		{name: "phone number passing Luhn", text: "call +49 171 12345674"},
		{name: "IBAN failing mod 97", text: "DE89 3704 0044 0532 0130 02"},
		{name: "IBAN one character short", text: "DE89 3704 0044 0532 0130 0"},
		{name: "IBAN running on", text: "DE893704004405320130001"},
		{name: "unregistered country", text: "XX89370400440532013000"},
		{name: "check digits 00", text: "DE00370400440532013000"},
		{name: "IBAN-shaped words", text: "AT12 Main Street has a nice view"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, found := adapters.UnmaskedNumber(tt.text)
			if found != (tt.want != "") || got != tt.want {
				t.Errorf("UnmaskedNumber(%q) = %q, %v; want %q", tt.text, got, found, tt.want)
			}
		})
	}
}

func TestFindLeaks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		msg  proto.Message
		want []adapters.Leak
	}{
		{
			name: "clean account",
			msg: &adapterv1.ListAccountsResponse{Accounts: []*adapterv1.Account{{
				BankAccountId: "acc-1", DisplayName: "Everyday account",
				MaskedNumber: &commonv1.MaskedAccountNumber{Last4: "3000", Display: "DE89 •••• •••• •••• ••30 00"},
			}}},
		},
		{
			name: "ids are scanned for IBANs, not card numbers",
			msg: &adapterv1.ListAccountsResponse{Accounts: []*adapterv1.Account{
				{BankAccountId: "4111111111111111", DisplayName: "Card", MaskedNumber: &commonv1.MaskedAccountNumber{Display: "•••• 1111"}},
				{BankAccountId: "de89370400440532013000", DisplayName: "Giro", MaskedNumber: &commonv1.MaskedAccountNumber{Display: "•••• 3000"}},
			}},
			want: []adapters.Leak{{Path: "accounts[1].bank_account_id", Kind: adapters.LeakIBAN}},
		},
		{
			name: "nested and repeated fields",
			msg: &adapterv1.SyncTransactionsResponse{
				Added: []*adapterv1.Transaction{
					{TransactionId: "t1", Description: "coffee"},
					{TransactionId: "t2", Description: "to DE89 3704 0044 0532 0130 00",
						MaskedCardNumber: &commonv1.MaskedAccountNumber{Last4: "1111", Display: "4111111111111111"}},
				},
				Modified: []*adapterv1.Transaction{{TransactionId: "t3", CounterpartyName: "Visa 4111 1111 1111 1111"}},
			},
			want: []adapters.Leak{
				{Path: "added[1].description", Kind: adapters.LeakIBAN},
				{Path: "added[1].masked_card_number.display", Kind: adapters.LeakCard},
				{Path: "modified[0].counterparty_name", Kind: adapters.LeakCard},
			},
		},
		{
			name: "a masked display showing more than six digits",
			msg: &adapterv1.ListCardsResponse{Cards: []*adapterv1.Card{{
				BankCardId: "c1", MaskedNumber: &commonv1.MaskedAccountNumber{Last4: "1043", Display: "5500 00•• •••• 1043"},
			}}},
			want: []adapters.Leak{{Path: "cards[0].masked_number.display", Kind: adapters.LeakMaskedDisplay}},
		},
		{
			name: "an order number is an id, a title is text",
			msg: &adapterv1.GetPurchaseDetailsResponse{
				OrderNumber: "302-4567890-1234562", // 17 digits passing Luhn: an order number, not a card
				LineItems:   []*adapterv1.PurchaseLineItem{{Title: "Gift card 6011 1111 1111 1117"}},
			},
			want: []adapters.Leak{{Path: "line_items[0].title", Kind: adapters.LeakCard}},
		},
		{
			name: "an event in a oneof",
			msg: &adapterv1.StreamEventsResponse{Cursor: "c1", Event: &adapterv1.StreamEventsResponse_AgentMessage{
				AgentMessage: &adapterv1.AgentMessage{CaseId: "case-1", Text: "Your IBAN is NL91 ABNA 0417 1643 00"},
			}},
			want: []adapters.Leak{{Path: "agent_message.text", Kind: adapters.LeakIBAN}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := adapters.FindLeaks(tt.msg)
			if len(got) != len(tt.want) {
				t.Fatalf("FindLeaks = %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("FindLeaks = %v, want %v", got, tt.want)
				}
			}
		})
	}
}
