package assistant

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text string
		want Intent
	}{
		{"What's my balance?", IntentBalance},
		{"how much money do I have", IntentBalance},
		{"Show me my recent transactions", IntentTransactions},
		{"what did I spend", IntentTransactions},
		{"I lost my card!", IntentLostCard},
		{"my card was stolen", IntentLostCard},
		{"I don't recognise a charge", IntentUnrecognisedCharge},
		{"there's a transaction I don’t recognize", IntentUnrecognisedCharge},
		{"Talk to a person", IntentHuman},
		{"I want a human about my balance", IntentHuman},
		{"AGENT please", IntentHuman},
		{"hi", IntentGreeting},
		{"this is it", IntentUnknown},
		{"thanks!", IntentThanks},
		{"yes", IntentYes},
		{"never mind", IntentCancel},
		{"purple elephants", IntentUnknown},
		{"", IntentUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			t.Parallel()
			if got := Classify(tt.text); got != tt.want {
				t.Errorf("Classify(%q) = %v, want %v", tt.text, got, tt.want)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	menu := State{Offered: Menu()}
	debit := Card{ID: "card-1", AccountID: "acc-1", Last4: "1043"}
	credit := Card{ID: "card-2", AccountID: "acc-1", Last4: "7712"}
	_, choosing := CardsOffered([]Card{debit, credit})
	_, confirming := ConfirmBlock(debit)
	charge := Charge{Account: "users/u/accounts/b~a", Transaction: "users/u/accounts/b~a/transactions/t1", Label: "2031-03-04 Coffee -4.50 EUR"}
	_, chargeConfirm := ConfirmReport(charge)
	tests := []struct {
		name     string
		state    State
		in       Input
		wantDo   Do
		wantFlow Flow
		wantErr  error
		wantCard Card
	}{
		{"balance by text", menu, Input{Text: "balance"}, DoBalance, FlowNone, nil, Card{}},
		{"balance by postback", menu, Input{Postback: PayloadBalance}, DoBalance, FlowNone, nil, Card{}},
		{"balance by the button's title typed", menu, Input{Text: "Balance"}, DoBalance, FlowNone, nil, Card{}},
		{"transactions", menu, Input{Postback: PayloadTransactions}, DoTransactions, FlowNone, nil, Card{}},
		{"lost card lists cards", menu, Input{Text: "I lost my card"}, DoListCards, FlowNone, nil, Card{}},
		{"unrecognised charge lists charges", menu, Input{Postback: PayloadUnrecognisedCharge}, DoListCharges, FlowNone, nil, Card{}},
		{"a person", menu, Input{Text: "talk to a person"}, DoHandover, FlowNone, nil, Card{}},
		{"a postback not offered", menu, Input{Postback: PayloadConfirmBlock}, 0, FlowNone, ErrNotOffered, Card{}},
		{"a postback with no offer at all", State{}, Input{Postback: PayloadBalance}, 0, FlowNone, ErrNotOffered, Card{}},
		{"picking a card asks to confirm", choosing, Input{Postback: "BLOCK_CARD:card-2"}, DoReply, FlowCardConfirm, nil, Card{}},
		{"confirming blocks", confirming, Input{Postback: PayloadConfirmBlock}, DoBlockCard, FlowNone, nil, debit},
		{"a typed yes confirms", confirming, Input{Text: "yes please"}, DoBlockCard, FlowNone, nil, debit},
		{"cancel ends the flow", confirming, Input{Postback: PayloadCancel}, DoReply, FlowNone, nil, Card{}},
		{"confirming the report files it", chargeConfirm, Input{Postback: PayloadConfirmReport}, DoReportCharge, FlowNone, nil, Card{}},
		{"a greeting", menu, Input{Text: "hello"}, DoReply, FlowNone, nil, Card{}},
		{"not understood once asks again", menu, Input{Text: "purple elephants"}, DoReply, FlowNone, nil, Card{}},
		{"not understood ends a flow", confirming, Input{Text: "purple elephants"}, DoReply, FlowNone, nil, Card{}},
		{"not understood twice hands over", State{Offered: Menu(), Misunderstood: 1}, Input{Text: "purple elephants"}, DoHandover, FlowNone, nil, Card{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := Decide(tt.state, tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if d.Do != tt.wantDo || d.State.Flow != tt.wantFlow || d.Card != tt.wantCard {
				t.Errorf("Decide = %+v, want do %v flow %q card %+v", d, tt.wantDo, tt.wantFlow, tt.wantCard)
			}
			if d.Do == DoReply && !slices.Equal(d.State.Offered, d.Reply.QuickReplies) {
				t.Errorf("the state offers %v, the reply %v", d.State.Offered, d.Reply.QuickReplies)
			}
		})
	}
	t.Run("the report confirmation carries the charge", func(t *testing.T) {
		d, err := Decide(chargeConfirm, Input{Postback: PayloadConfirmReport})
		if err != nil || d.Charge != charge {
			t.Errorf("Decide = %+v, %v", d, err)
		}
	})
	t.Run("not understood counts", func(t *testing.T) {
		d, _ := Decide(menu, Input{Text: "purple elephants"})
		if d.State.Misunderstood != 1 || d.Understood {
			t.Errorf("state = %+v", d.State)
		}
		d, _ = Decide(d.State, Input{Text: "balance"})
		if !d.Understood {
			t.Error("an understood message is not")
		}
	})
}

func TestOffers(t *testing.T) {
	t.Parallel()
	debit := Card{ID: "card-1", AccountID: "acc-1", Last4: "1043"}
	credit := Card{ID: "card-2", AccountID: "acc-1", Last4: "7712"}
	titles := func(r Reply) (out []string) {
		for _, q := range r.QuickReplies {
			out = append(out, q.Title+"="+q.Payload)
		}
		return out
	}
	tests := []struct {
		name     string
		cards    []Card
		want     []string
		wantFlow Flow
	}{
		{"no card", nil, titles(Reply{QuickReplies: Menu()}), FlowNone},
		{"one card goes straight to the confirmation", []Card{debit}, []string{"Yes, block it=CONFIRM_BLOCK", "Cancel=CANCEL"}, FlowCardConfirm},
		{"two cards to choose from", []Card{debit, credit},
			[]string{"Block •••• 1043=BLOCK_CARD:card-1", "Block •••• 7712=BLOCK_CARD:card-2", "Cancel=CANCEL"}, FlowCardChoose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, st := CardsOffered(tt.cards)
			if got := titles(r); !slices.Equal(got, tt.want) || st.Flow != tt.wantFlow {
				t.Errorf("CardsOffered = %v, %q; want %v, %q", got, st.Flow, tt.want, tt.wantFlow)
			}
		})
	}
	t.Run("charges are offered by position, titles cut to 40 characters", func(t *testing.T) {
		long := strings.Repeat("x", 60)
		r, st := ChargesOffered([]Charge{{Label: "a"}, {Label: long}})
		if got := titles(r); !slices.Equal(got, []string{"a=CHARGE:1", strings.Repeat("x", 39) + "…=CHARGE:2", "Cancel=CANCEL"}) || st.Flow != FlowChargeChoose {
			t.Errorf("ChargesOffered = %v", got)
		}
	})
}

func TestFormatMoney(t *testing.T) {
	t.Parallel()
	tests := []struct {
		m    Money
		want string
	}{
		{Money{"EUR", 1234, 560000000}, "1234.56 EUR"},
		{Money{"EUR", -7, -50000000}, "-7.05 EUR"},
		{Money{"EUR", 0, -500000000}, "-0.50 EUR"},
		{Money{"EUR", 3, 0}, "3.00 EUR"},
		{Money{"BHD", 1, 5000000}, "1.005 BHD"},
		{Money{"EUR", 0, 1}, "0.000000001 EUR"},
		{Money{"EUR", -9223372036854775808, 0}, "-9223372036854775808.00 EUR"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			if got := FormatMoney(tt.m); got != tt.want {
				t.Errorf("FormatMoney(%+v) = %q, want %q", tt.m, got, tt.want)
			}
		})
	}
}

func TestBalancesAndTransactions(t *testing.T) {
	t.Parallel()
	r := Balances([]AccountBalances{
		{DisplayName: "Everyday", Last4: "4321", Balances: []BalanceLine{{Type: "CLOSING_BOOKED", Amount: Money{"EUR", 1, 0}}, {Type: "INTERIM_AVAILABLE", Amount: Money{"EUR", 12, 300000000}}}},
		{Last4: "8765", Failed: true},
	})
	want := "Here are your balances:\n• Everyday (•••• 4321): 12.30 EUR available\n• Account •••• 8765: not available right now"
	if r.Text != want {
		t.Errorf("Balances =\n%s\nwant\n%s", r.Text, want)
	}
	// The balance service's mark wins over the usual order: an available
	// balance that includes an overdraft is not what the product shows.
	r = Balances([]AccountBalances{{DisplayName: "Everyday", Last4: "4321", Balances: []BalanceLine{
		{Type: "INTERIM_AVAILABLE", Amount: Money{"EUR", 2387, 110000000}},
		{Type: "EXPECTED", Amount: Money{"EUR", 1887, 110000000}, Display: true},
	}}})
	if want := "Here are your balances:\n• Everyday (•••• 4321): 1887.11 EUR expected"; r.Text != want {
		t.Errorf("Balances with a marked balance =\n%s\nwant\n%s", r.Text, want)
	}
	day := time.Date(2031, 3, 4, 12, 0, 0, 0, time.UTC)
	r = Transactions([]TransactionLine{{Time: day, Description: "Coffee", Amount: Money{"EUR", -4, -500000000}}, {Amount: Money{"EUR", 10, 0}}})
	if want := "Your recent transactions:\n• 2031-03-04 Coffee -4.50 EUR\n• 10.00 EUR"; r.Text != want {
		t.Errorf("Transactions =\n%s\nwant\n%s", r.Text, want)
	}
}
