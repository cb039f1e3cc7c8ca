// Package assistant is bankbridge's support assistant, as pure rules: no
// language model, no I/O. Decide reads the user's message against the
// assistant's state and says what to do: answer at once, or first fetch
// something or act at the bank (the caller does that, in internal/app,
// and renders the outcome with the functions of replies.go). The state
// says which flow the assistant is in and which quick replies it offered
// last; it lives in the conversation's row, never in the client.
package assistant

import (
	"errors"
	"slices"
	"strings"
	"unicode"
)

// QuickReply is one choice offered with a message.
type QuickReply struct {
	Title   string `json:"title"`
	Payload string `json:"payload"`
}

// Flow is the multi-step dialogue the assistant is in.
type Flow string

// The flows.
const (
	// FlowNone: no dialogue running; a message starts one.
	FlowNone Flow = ""
	// FlowCardChoose: the user's active cards were offered; one is picked.
	FlowCardChoose Flow = "card.choose"
	// FlowCardConfirm: blocking State.Cards[0] waits for a yes.
	FlowCardConfirm Flow = "card.confirm"
	// FlowChargeChoose: recent transactions were offered; one is picked.
	FlowChargeChoose Flow = "charge.choose"
	// FlowChargeConfirm: reporting State.Charges[0] waits for a yes.
	FlowChargeConfirm Flow = "charge.confirm"
)

// Card is a card the assistant offered: the bank's ids and the last four
// digits.
type Card struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
	Last4     string `json:"last4"`
}

// Charge is a transaction the assistant offered: its resource names and
// the label shown.
type Charge struct {
	// Account is users/{user}/accounts/{account}; Transaction is
	// Account/transactions/{transaction}.
	Account     string `json:"account"`
	Transaction string `json:"transaction"`
	Label       string `json:"label"`
}

// State is the assistant's memory of one conversation.
type State struct {
	Flow Flow `json:"flow,omitempty"`
	// Cards are the cards offered (FlowCardChoose) or the one chosen
	// (FlowCardConfirm).
	Cards []Card `json:"cards,omitempty"`
	// Charges are the transactions offered (FlowChargeChoose) or the one
	// chosen (FlowChargeConfirm).
	Charges []Charge `json:"charges,omitempty"`
	// Offered are the quick replies of the assistant's latest message: the
	// only postbacks accepted.
	Offered []QuickReply `json:"offered,omitempty"`
	// Misunderstood counts the user's consecutive messages the assistant
	// did not understand.
	Misunderstood int `json:"misunderstood,omitempty"`
}

// The payloads of the quick replies the assistant offers. A card's is
// PayloadBlockCardPrefix and the bank's card id; a charge's is
// PayloadChargePrefix and its position in the offer, from 1.
const (
	PayloadBalance            = "BALANCE"
	PayloadTransactions       = "TRANSACTIONS"
	PayloadLostCard           = "LOST_CARD"
	PayloadUnrecognisedCharge = "UNRECOGNISED_CHARGE"
	PayloadHuman              = "HUMAN"
	PayloadConfirmBlock       = "CONFIRM_BLOCK"
	PayloadConfirmReport      = "CONFIRM_REPORT"
	PayloadCancel             = "CANCEL"
	PayloadBlockCardPrefix    = "BLOCK_CARD:"
	PayloadChargePrefix       = "CHARGE:"
)

// Menu is the quick replies of the greeting and of every answer that
// ends a flow.
func Menu() []QuickReply {
	return []QuickReply{
		{Title: "Balance", Payload: PayloadBalance},
		{Title: "Recent transactions", Payload: PayloadTransactions},
		{Title: "Lost card", Payload: PayloadLostCard},
		{Title: "Unrecognised charge", Payload: PayloadUnrecognisedCharge},
		{Title: "Talk to a person", Payload: PayloadHuman},
	}
}

// MaxMisunderstood is how many consecutive messages the assistant may not
// understand before it hands the conversation to a person.
const MaxMisunderstood = 2

// ErrNotOffered is Decide's answer to a postback whose payload is not one
// of the quick replies of the assistant's latest message.
var ErrNotOffered = errors.New("assistant: postback payload was not offered")

// Input is one user message: text, or the payload of a picked quick
// reply.
type Input struct {
	Text     string
	Postback string
}

// Do is what the caller must do with a Decision.
type Do int

// What a decision asks for.
const (
	// DoReply: send Reply; State is the new state.
	DoReply Do = iota
	// DoBalance: read the bank's accounts and balances, then Balances.
	DoBalance
	// DoTransactions: read recent transactions, then Transactions.
	DoTransactions
	// DoListCards: list the cards, then CardsOffered.
	DoListCards
	// DoBlockCard: block Decision.Card (reason LOST), then CardBlocked.
	DoBlockCard
	// DoListCharges: read recent transactions, then ChargesOffered.
	DoListCharges
	// DoReportCharge: file a fraud report on Decision.Charge, then
	// ChargeReported.
	DoReportCharge
	// DoHandover: pass control to the bank's agent, then HandedOver or
	// HandoverFailed.
	DoHandover
)

// Reply is one assistant message.
type Reply struct {
	Text         string
	QuickReplies []QuickReply
}

// Decision is what the assistant makes of a message.
type Decision struct {
	Do Do
	// Reply and State, for DoReply.
	Reply Reply
	State State
	// Card for DoBlockCard; Charge for DoReportCharge.
	Card   Card
	Charge Charge
	// Understood is false when the message matched nothing;
	// State.Misunderstood counts it.
	Understood bool
}

// Intent is what a text asks for.
type Intent int

// The intents the rules recognise.
const (
	IntentUnknown Intent = iota
	IntentHuman
	IntentUnrecognisedCharge
	IntentLostCard
	IntentTransactions
	IntentBalance
	IntentGreeting
	IntentThanks
	IntentYes
	IntentCancel
)

// rules map keywords to intents, tried in order: the first rule with a
// keyword in the text wins, so "talk to a person about my balance" is a
// handover and "a charge I don't recognise" is not a transactions list.
var rules = []struct {
	intent   Intent
	keywords []string
}{
	{IntentHuman, []string{"talk to a person", "real person", "a person", "human", "agent", "someone", "representative", "operator", "speak to"}},
	{IntentUnrecognisedCharge, []string{"recognise", "recognize", "unrecognised", "unrecognized", "unknown charge", "didn't make", "did not make", "not mine", "fraud", "suspicious"}},
	{IntentLostCard, []string{"lost my card", "lost card", "card lost", "lost", "stolen", "block my card", "block card", "missing card", "card is missing"}},
	{IntentTransactions, []string{"transaction", "transactions", "recent", "spend", "spent", "spending", "payments", "history", "statement"}},
	{IntentBalance, []string{"balance", "how much money", "how much do i have", "funds"}},
	{IntentCancel, []string{"cancel", "never mind", "nevermind", "stop"}},
	{IntentYes, []string{"yes", "yeah", "yep", "confirm", "sure", "ok", "okay", "please do"}},
	{IntentThanks, []string{"thank", "thanks", "cheers"}},
	{IntentGreeting, []string{"hello", "hi", "hey", "good morning", "good afternoon", "good evening"}},
}

// Classify returns the intent of a text by the keyword rules. Keywords
// match whole words (or phrases), case and punctuation aside.
func Classify(text string) Intent {
	norm := " " + normalise(text) + " "
	for _, r := range rules {
		for _, k := range r.keywords {
			if strings.Contains(norm, " "+k+" ") {
				return r.intent
			}
		}
	}
	return IntentUnknown
}

// normalise lowercases text, folds typographic apostrophes, and turns
// every other run of non-letters into one space.
func normalise(text string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.ToLower(text) {
		switch {
		case r == '\'' || r == '’':
			b.WriteRune('\'')
			space = false
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
			space = false
		default:
			if !space {
				b.WriteRune(' ')
				space = true
			}
		}
	}
	return strings.TrimSpace(b.String())
}

// Decide reads one user message in state. A postback must be one of
// state.Offered (else ErrNotOffered); a text that is a quick reply's title
// counts as picking it.
func Decide(state State, in Input) (Decision, error) {
	payload := in.Postback
	if payload != "" {
		if !slices.ContainsFunc(state.Offered, func(q QuickReply) bool { return q.Payload == payload }) {
			return Decision{}, ErrNotOffered
		}
	} else if q, ok := offeredByTitle(state.Offered, in.Text); ok {
		payload = q.Payload
	}
	if payload != "" {
		return decidePostback(state, payload), nil
	}
	return decideText(state, in.Text), nil
}

// offeredByTitle finds the offered quick reply whose title the text is.
func offeredByTitle(offered []QuickReply, text string) (QuickReply, bool) {
	norm := normalise(text)
	for _, q := range offered {
		if norm != "" && normalise(q.Title) == norm {
			return q, true
		}
	}
	return QuickReply{}, false
}

// decidePostback handles a picked quick reply.
func decidePostback(state State, payload string) Decision {
	switch {
	case payload == PayloadBalance:
		return understood(DoBalance)
	case payload == PayloadTransactions:
		return understood(DoTransactions)
	case payload == PayloadLostCard:
		return understood(DoListCards)
	case payload == PayloadUnrecognisedCharge:
		return understood(DoListCharges)
	case payload == PayloadHuman:
		return understood(DoHandover)
	case payload == PayloadCancel:
		return reply(State{}, Cancelled())
	case payload == PayloadConfirmBlock && state.Flow == FlowCardConfirm && len(state.Cards) == 1:
		return Decision{Do: DoBlockCard, Card: state.Cards[0], Understood: true}
	case payload == PayloadConfirmReport && state.Flow == FlowChargeConfirm && len(state.Charges) == 1:
		return Decision{Do: DoReportCharge, Charge: state.Charges[0], Understood: true}
	case strings.HasPrefix(payload, PayloadBlockCardPrefix) && state.Flow == FlowCardChoose:
		id := strings.TrimPrefix(payload, PayloadBlockCardPrefix)
		for _, c := range state.Cards {
			if c.ID == id {
				r, st := ConfirmBlock(c)
				return reply(st, r)
			}
		}
	case strings.HasPrefix(payload, PayloadChargePrefix) && state.Flow == FlowChargeChoose:
		for i, c := range state.Charges {
			if payload == chargePayload(i) {
				r, st := ConfirmReport(c)
				return reply(st, r)
			}
		}
	}
	// An offered payload the state no longer explains: start afresh.
	return reply(State{}, Greeting())
}

// decideText handles a typed message.
func decideText(state State, text string) Decision {
	switch intent := Classify(text); intent {
	case IntentHuman:
		return understood(DoHandover)
	case IntentUnrecognisedCharge:
		return understood(DoListCharges)
	case IntentLostCard:
		return understood(DoListCards)
	case IntentTransactions:
		return understood(DoTransactions)
	case IntentBalance:
		return understood(DoBalance)
	case IntentYes:
		switch {
		case state.Flow == FlowCardConfirm && len(state.Cards) == 1:
			return Decision{Do: DoBlockCard, Card: state.Cards[0], Understood: true}
		case state.Flow == FlowChargeConfirm && len(state.Charges) == 1:
			return Decision{Do: DoReportCharge, Charge: state.Charges[0], Understood: true}
		}
	case IntentCancel:
		if state.Flow != FlowNone {
			return reply(State{}, Cancelled())
		}
		return reply(State{}, Welcome())
	case IntentThanks:
		return reply(State{}, YoureWelcome())
	case IntentGreeting:
		return reply(State{}, Welcome())
	}
	// Not understood: ask again, or hand over after MaxMisunderstood in a
	// row.
	n := state.Misunderstood + 1
	if n >= MaxMisunderstood {
		return Decision{Do: DoHandover, State: State{Misunderstood: n}}
	}
	// The flow ends: what it offered is no longer the latest offer.
	r := NotUnderstood()
	return Decision{Do: DoReply, Reply: r, State: State{Misunderstood: n, Offered: r.QuickReplies}}
}

func understood(do Do) Decision { return Decision{Do: do, Understood: true} }

// reply is a DoReply decision: r, with state offering r's quick replies.
func reply(state State, r Reply) Decision {
	state.Offered = r.QuickReplies
	state.Misunderstood = 0
	return Decision{Do: DoReply, Reply: r, State: state, Understood: true}
}
