package assistant

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxTitle is the longest quick reply title the contract allows, in
// characters.
const maxTitle = 40

// Greeting is the assistant's first message in a conversation.
func Greeting() Reply {
	return Reply{Text: "Hi! I'm your bank's assistant. I can show your balance and recent transactions, block a lost card, " +
		"or report a charge you don't recognise. You can also talk to a person at your bank. What can I do for you?", QuickReplies: Menu()}
}

// Welcome answers a greeting in the middle of a conversation.
func Welcome() Reply {
	return Reply{Text: "Hello! What can I do for you?", QuickReplies: Menu()}
}

// YoureWelcome answers thanks.
func YoureWelcome() Reply {
	return Reply{Text: "You're welcome! Anything else I can do for you?", QuickReplies: Menu()}
}

// Cancelled ends a flow the user cancelled.
func Cancelled() Reply {
	return Reply{Text: "OK, I've cancelled that. Anything else I can do for you?", QuickReplies: Menu()}
}

// NotUnderstood asks again; a second one in a row hands over instead.
func NotUnderstood() Reply {
	return Reply{Text: "Sorry, I didn't understand that. You can pick one of these, or ask to talk to a person.", QuickReplies: Menu()}
}

// BankUnavailable says the bank (or bankbridge's balance service) could
// not answer. It never repeats what the bank said.
func BankUnavailable() Reply {
	return Reply{Text: "I couldn't reach your bank just now. Please try again in a few minutes, or ask to talk to a person.", QuickReplies: Menu()}
}

// NotSupported says the bank offers no such thing through bankbridge.
func NotSupported() Reply {
	return Reply{Text: "Your bank doesn't offer that through this chat yet. Please contact your bank directly, or pick something else.", QuickReplies: Menu()}
}

// NotShared says the user has not shared what it takes with bankbridge.
func NotShared() Reply {
	return Reply{Text: "I can't see that: you haven't shared it with us for this bank. You can share more when you link your bank again.", QuickReplies: Menu()}
}

// HandedOver says a person at the bank will answer.
func HandedOver() Reply {
	return Reply{Text: "I've passed the conversation to a person at your bank. They'll answer here as soon as they can."}
}

// HandoverFailed apologises for a handover that did not happen.
func HandoverFailed() Reply {
	return Reply{Text: "Sorry, I couldn't reach a person at your bank just now. Please try again in a few minutes; meanwhile I can help with these.", QuickReplies: Menu()}
}

// HandoverNotSupported says the bank has no agents in this chat.
func HandoverNotSupported() Reply {
	return Reply{Text: "Sorry, your bank doesn't offer chat with a person here. Please contact your bank directly; meanwhile I can help with these.", QuickReplies: Menu()}
}

// Back is the assistant's message when control comes back to it.
func Back() Reply {
	return Reply{Text: "I'm back. Anything else I can do for you?", QuickReplies: Menu()}
}

// TookOver is the assistant's message when it took control from an agent
// who went quiet.
func TookOver() Reply {
	return Reply{Text: "Sorry for the wait: the person at your bank hasn't answered, so I'm back. You can ask to talk to a person again at any time.", QuickReplies: Menu()}
}

// chargePayload is the payload of the charge at index i of an offer.
func chargePayload(i int) string { return PayloadChargePrefix + strconv.Itoa(i+1) }

// cardTitle is how a card is offered: "Block •••• 1234".
func cardTitle(c Card) string { return "Block •••• " + c.Last4 }

// ConfirmBlock asks to confirm blocking c.
func ConfirmBlock(c Card) (Reply, State) {
	r := Reply{
		Text:         fmt.Sprintf("Block the card ending in %s? Payments with it will be declined until it is unblocked.", c.Last4),
		QuickReplies: []QuickReply{{Title: "Yes, block it", Payload: PayloadConfirmBlock}, {Title: "Cancel", Payload: PayloadCancel}},
	}
	return r, State{Flow: FlowCardConfirm, Cards: []Card{c}, Offered: r.QuickReplies}
}

// ConfirmReport asks to confirm reporting c.
func ConfirmReport(c Charge) (Reply, State) {
	r := Reply{
		Text:         "Report this transaction to your bank as one you don't recognise? " + c.Label,
		QuickReplies: []QuickReply{{Title: "Yes, report it", Payload: PayloadConfirmReport}, {Title: "Cancel", Payload: PayloadCancel}},
	}
	return r, State{Flow: FlowChargeConfirm, Charges: []Charge{c}, Offered: r.QuickReplies}
}

// CardsOffered answers "I lost my card" with the active cards: none, one
// (straight to the confirmation), or a choice.
func CardsOffered(active []Card) (Reply, State) {
	switch len(active) {
	case 0:
		r := Reply{Text: "I couldn't find an active card at your bank. If you think that's wrong, ask to talk to a person.", QuickReplies: Menu()}
		return r, State{Offered: r.QuickReplies}
	case 1:
		return ConfirmBlock(active[0])
	}
	if len(active) > 12 {
		active = active[:12] // the contract allows 13 quick replies; one is Cancel
	}
	r := Reply{Text: "Which card did you lose?"}
	for _, c := range active {
		r.QuickReplies = append(r.QuickReplies, QuickReply{Title: cardTitle(c), Payload: PayloadBlockCardPrefix + c.ID})
	}
	r.QuickReplies = append(r.QuickReplies, QuickReply{Title: "Cancel", Payload: PayloadCancel})
	return r, State{Flow: FlowCardChoose, Cards: active, Offered: r.QuickReplies}
}

// BlockOutcome is what the bank made of a block.
type BlockOutcome int

// The outcomes of a block.
const (
	BlockDone BlockOutcome = iota
	BlockPending
	BlockFailed
)

// CardBlocked says what became of blocking c.
func CardBlocked(c Card, o BlockOutcome) Reply {
	var text string
	switch o {
	case BlockDone:
		text = fmt.Sprintf("Done: the card ending in %s is blocked. Anything else I can do for you?", c.Last4)
	case BlockPending:
		text = fmt.Sprintf("Your bank is blocking the card ending in %s; it takes effect shortly. Anything else I can do for you?", c.Last4)
	default:
		text = fmt.Sprintf("Your bank couldn't block the card ending in %s. Please call your bank now, or ask to talk to a person.", c.Last4)
	}
	return Reply{Text: text, QuickReplies: Menu()}
}

// ChargesOffered answers "I don't recognise a charge" with recent
// transactions to pick from.
func ChargesOffered(charges []Charge) (Reply, State) {
	if len(charges) == 0 {
		r := Reply{Text: "I couldn't find recent transactions on your accounts. If you think that's wrong, ask to talk to a person.", QuickReplies: Menu()}
		return r, State{Offered: r.QuickReplies}
	}
	if len(charges) > 12 {
		charges = charges[:12]
	}
	r := Reply{Text: "Which transaction don't you recognise?"}
	for i, c := range charges {
		r.QuickReplies = append(r.QuickReplies, QuickReply{Title: Truncate(c.Label, maxTitle), Payload: chargePayload(i)})
	}
	r.QuickReplies = append(r.QuickReplies, QuickReply{Title: "Cancel", Payload: PayloadCancel})
	return r, State{Flow: FlowChargeChoose, Charges: charges, Offered: r.QuickReplies}
}

// ChargeReported says the report was filed.
func ChargeReported() Reply {
	return Reply{Text: "I've reported the transaction to your bank. They'll look into it, and you can follow the report in the app. " +
		"Anything else I can do for you?", QuickReplies: Menu()}
}

// AccountBalances are one account's balances, for Balances.
type AccountBalances struct {
	DisplayName string
	Last4       string
	Balances    []BalanceLine
	// Failed is true when the account's balances could not be read.
	Failed bool
}

// BalanceLine is one balance: its ISO 20022 type without prefix (e.g.
// INTERIM_AVAILABLE) and amount.
type BalanceLine struct {
	Type   string
	Amount Money
	// Display marks the balance bankbridge tells products to show.
	Display bool
}

// Balances answers "what's my balance".
func Balances(accounts []AccountBalances) Reply {
	if len(accounts) == 0 {
		return Reply{Text: "I couldn't find an account at your bank that you've shared with us.", QuickReplies: Menu()}
	}
	var b strings.Builder
	b.WriteString("Here are your balances:")
	for _, a := range accounts {
		b.WriteString("\n• " + accountLabel(a.DisplayName, a.Last4) + ": ")
		if a.Failed || len(a.Balances) == 0 {
			b.WriteString("not available right now")
			continue
		}
		line := preferredBalance(a.Balances)
		b.WriteString(FormatMoney(line.Amount) + " " + balanceWord(line.Type))
	}
	return Reply{Text: b.String(), QuickReplies: Menu()}
}

// preferredBalance is the balance a person means by "my balance": the
// one the balance service marks to show (the same figure a product's
// screen shows, docs/api.md "Which balance to show"), or, from a service
// that marks none, the first of the usual types.
func preferredBalance(lines []BalanceLine) BalanceLine {
	for _, l := range lines {
		if l.Display {
			return l
		}
	}
	for _, want := range []string{"INTERIM_AVAILABLE", "EXPECTED", "INTERIM_BOOKED", "CLOSING_BOOKED", "OPENING_BOOKED"} {
		for _, l := range lines {
			if l.Type == want {
				return l
			}
		}
	}
	return lines[0]
}

func balanceWord(t string) string {
	switch t {
	case "INTERIM_AVAILABLE", "FORWARD_AVAILABLE":
		return "available"
	case "EXPECTED":
		return "expected"
	case "CLOSING_BOOKED", "INTERIM_BOOKED", "OPENING_BOOKED":
		return "booked"
	case "CREDIT_LIMIT":
		return "credit limit"
	case "NON_INVOICED":
		return "not yet invoiced"
	}
	return ""
}

func accountLabel(name, last4 string) string {
	switch {
	case name != "" && last4 != "":
		return name + " (•••• " + last4 + ")"
	case last4 != "":
		return "Account •••• " + last4
	case name != "":
		return name
	}
	return "Account"
}

// TransactionLine is one transaction, for Transactions and charge labels.
type TransactionLine struct {
	Time        time.Time
	Description string
	Amount      Money
}

// Label is how a transaction is shown: "2025-01-31 Coffee shop -3.50 EUR".
func (t TransactionLine) Label() string {
	var parts []string
	if !t.Time.IsZero() {
		parts = append(parts, t.Time.UTC().Format(time.DateOnly))
	}
	if t.Description != "" {
		parts = append(parts, t.Description)
	}
	parts = append(parts, FormatMoney(t.Amount))
	return strings.Join(parts, " ")
}

// Transactions answers "show my recent transactions".
func Transactions(lines []TransactionLine) Reply {
	if len(lines) == 0 {
		return Reply{Text: "I couldn't find recent transactions on your accounts.", QuickReplies: Menu()}
	}
	var b strings.Builder
	b.WriteString("Your recent transactions:")
	for _, l := range lines {
		b.WriteString("\n• " + l.Label())
	}
	return Reply{Text: b.String(), QuickReplies: Menu()}
}

// Truncate cuts s to at most n characters, ending in "…" when cut.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
