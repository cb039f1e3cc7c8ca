package adapters

import (
	"context"
	"strings"
	"time"

	"google.golang.org/grpc/metadata"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
)

// ProtocolVersion is the version of bankbridge.adapter.v1 this SDK speaks,
// for GetAdapterInfoResponse.protocol_version.
const ProtocolVersion = "1.0"

// MinKeepaliveTime is the shortest interval at which bankbridge pings an
// adapter's connection (banks.yaml keepalive.time): gRPC raises any shorter
// one to it, and [KeepaliveServerOption] permits pings this often.
const MinKeepaliveTime = 10 * time.Second

// CredentialMetadataPrefix starts the gRPC metadata key of every credential
// bankbridge sends a bank: the credential key K travels as
// CredentialMetadataPrefix + lowercase(K).
const CredentialMetadataPrefix = "bankbridge-credential-"

// APIKeyMetadata is the metadata key of the credential "api_key", the one
// [WithAPIKeys] checks.
const APIKeyMetadata = CredentialMetadataPrefix + "api_key"

// PurposeMetadata is the metadata key in which bankbridge declares why it
// asks for a user's data, e.g. "ACCOUNT_INFORMATION" (a
// bankbridge.common.v1.Purpose name). A bank may record it.
const PurposeMetadata = "bankbridge-purpose"

// WithPurpose returns ctx declaring to the bank, in PurposeMetadata, the
// purpose p of the calls made with it ("ACCOUNT_INFORMATION" for
// PURPOSE_ACCOUNT_INFORMATION): the one way every service tells a bank why.
func WithPurpose(ctx context.Context, p commonv1.Purpose) context.Context {
	return metadata.AppendToOutgoingContext(ctx, PurposeMetadata, strings.TrimPrefix(p.String(), "PURPOSE_"))
}

// Adapter is what every bank adapter implements: it describes itself and
// reports its health. A bank implements Adapter plus the capability
// interfaces it supports; the RPCs of the others answer UNIMPLEMENTED with
// reason CAPABILITY_NOT_SUPPORTED.
type Adapter interface {
	// Info describes the adapter. Its capabilities must be exactly those
	// the adapter implements: use [Capabilities] to list them. It must not
	// call the bank.
	Info(ctx context.Context) (*adapterv1.GetAdapterInfoResponse, error)
	// CheckHealth says whether the bank answers, from what recent calls
	// showed rather than by calling the bank each time; answer within a
	// second.
	CheckHealth(ctx context.Context, req *adapterv1.CheckHealthRequest) (*adapterv1.CheckHealthResponse, error)
}

// AccountsAdapter lists a customer's accounts and their balances
// (capabilities ACCOUNTS and BALANCES).
type AccountsAdapter interface {
	// ListAccounts returns the accounts the consent covers.
	ListAccounts(ctx context.Context, req *adapterv1.ListAccountsRequest) (*adapterv1.ListAccountsResponse, error)
	// GetBalances returns one account's balances.
	GetBalances(ctx context.Context, req *adapterv1.GetBalancesRequest) (*adapterv1.GetBalancesResponse, error)
}

// TransactionsAdapter syncs an account's transactions with a cursor
// (capability TRANSACTIONS).
type TransactionsAdapter interface {
	// SyncTransactions returns what changed since the request's cursor.
	SyncTransactions(ctx context.Context, req *adapterv1.SyncTransactionsRequest) (*adapterv1.SyncTransactionsResponse, error)
}

// SCAAdapter links a customer: it creates a consent at the bank, runs its
// strong customer authentication, and deletes the consent on revocation
// (capability SCA).
type SCAAdapter interface {
	// StartSca creates a consent and starts its challenge.
	StartSca(ctx context.Context, req *adapterv1.StartScaRequest) (*adapterv1.StartScaResponse, error)
	// VerifySca answers or polls the challenge.
	VerifySca(ctx context.Context, req *adapterv1.VerifyScaRequest) (*adapterv1.VerifyScaResponse, error)
	// RevokeConsent deletes the consent at the bank; unknown consents succeed.
	RevokeConsent(ctx context.Context, req *adapterv1.RevokeConsentRequest) (*adapterv1.RevokeConsentResponse, error)
}

// ConsentExtensionAdapter extends a valid consent when the customer
// reconfirms it in bankbridge, without a new SCA where the bank allows it
// and with one, completed through [SCAAdapter.VerifySca], where it does not
// (capability CONSENT_EXTENSION). An adapter that implements it implements
// SCAAdapter too.
type ConsentExtensionAdapter interface {
	// ExtendConsent extends the consent, or starts the challenge that must
	// come first; the bank's maximum validity caps what it grants.
	ExtendConsent(ctx context.Context, req *adapterv1.ExtendConsentRequest) (*adapterv1.ExtendConsentResponse, error)
}

// PurchaseDetailsAdapter tells what a card purchase bought, as the card
// issuer knows it from the merchant (enhanced transaction data, Level 3):
// the merchant, the line items and the summary behind one card
// transaction (capability PURCHASE_DETAILS). It is optional: an issuer
// without purchase data leaves it out. An adapter that implements it
// implements [TransactionsAdapter] too, since it names the transactions
// SyncTransactions returned; without one it is not a capability.
type PurchaseDetailsAdapter interface {
	// GetPurchaseDetails returns the purchase behind one card transaction
	// of the account, adding up (total = subtotal + shipping_cost + tax -
	// the adjustments) and in one currency; NOT_FOUND when the account has
	// no such transaction or the bank no purchase details for it.
	GetPurchaseDetails(ctx context.Context, req *adapterv1.GetPurchaseDetailsRequest) (*adapterv1.GetPurchaseDetailsResponse, error)
}

// SupportAdapter hands support conversations to the bank's human agents
// (capability SUPPORT_HANDOFF), after Messenger's handover protocol:
// bankbridge's assistant is the primary receiver and holds thread control
// first; the bank's agent is the secondary receiver and holds it from the
// handoff until it passes control back. What the agents do (joining,
// writing, passing or requesting control, closing the case) comes back as
// events ([EventsAdapter]).
type SupportAdapter interface {
	// StartSupportHandoff opens a case at the bank: the assistant passes
	// control to the bank's agents.
	StartSupportHandoff(ctx context.Context, req *adapterv1.StartSupportHandoffRequest) (*adapterv1.StartSupportHandoffResponse, error)
	// SendSupportMessage passes the user's next message to the case.
	SendSupportMessage(ctx context.Context, req *adapterv1.SendSupportMessageRequest) (*adapterv1.SendSupportMessageResponse, error)
	// NotifyThreadControl tells the bank what the assistant did to the
	// case's thread: PASS (control back to the agent, who asked for it),
	// TAKE (the assistant took control without asking), REQUEST (the
	// assistant asks the agent to pass control back) or CLOSE (the
	// conversation ended; close the case). A retry with the same
	// idempotency key is answered once.
	NotifyThreadControl(ctx context.Context, req *adapterv1.NotifyThreadControlRequest) (*adapterv1.NotifyThreadControlResponse, error)
}

// FraudAdapter files fraud reports and takes the customer's answers to the
// bank's fraud alerts (capability FRAUD). The cases' progress and the
// alerts come back as events ([EventsAdapter]).
type FraudAdapter interface {
	// ReportFraud files a fraud report, blocking the card when asked.
	ReportFraud(ctx context.Context, req *adapterv1.ReportFraudRequest) (*adapterv1.ReportFraudResponse, error)
	// AnswerFraudAlert records the customer's answer to an alert:
	// RECOGNISED ("this was me") or NOT_RECOGNISED ("not me"). The same
	// answer again succeeds; another answer is FAILED_PRECONDITION.
	AnswerFraudAlert(ctx context.Context, req *adapterv1.AnswerFraudAlertRequest) (*adapterv1.AnswerFraudAlertResponse, error)
}

// CardsAdapter lists the customer's payment cards, blocks them, and lifts
// a block after a two-factor step (capability CARDS).
type CardsAdapter interface {
	// ListCards returns the cards of the accounts the consent covers,
	// masked, with their state.
	ListCards(ctx context.Context, req *adapterv1.ListCardsRequest) (*adapterv1.ListCardsResponse, error)
	// BlockCard blocks one card, or every card, of an account, until an
	// unblock lifts it.
	BlockCard(ctx context.Context, req *adapterv1.BlockCardRequest) (*adapterv1.BlockCardResponse, error)
	// StartCardUnblock starts the challenge that lifting a block needs;
	// FAILED_PRECONDITION for a card that is not blocked or whose block
	// cannot be lifted.
	StartCardUnblock(ctx context.Context, req *adapterv1.StartCardUnblockRequest) (*adapterv1.StartCardUnblockResponse, error)
	// VerifyCardUnblock answers or polls the challenge; FINALISED means the
	// card is unblocked.
	VerifyCardUnblock(ctx context.Context, req *adapterv1.VerifyCardUnblockRequest) (*adapterv1.VerifyCardUnblockResponse, error)
}

// EventsAdapter streams the bank's events: fraud alerts, the progress of
// fraud cases, and what agents do on support cases (capability EVENTS).
type EventsAdapter interface {
	// StreamEvents sends the events after req.resume_cursor (or, with an
	// empty cursor, those kept that happened from req.start_time on, and
	// without one those from now on) through send, in order, until ctx
	// ends or send fails; it returns nil to end the stream cleanly.
	StreamEvents(ctx context.Context, req *adapterv1.StreamEventsRequest, send func(*adapterv1.StreamEventsResponse) error) error
}

// Capabilities returns the capabilities a implements, judged by the
// capability interfaces it satisfies, in the enum's order. An adapter's
// Info lists exactly these.
func Capabilities(a Adapter) []adapterv1.Capability {
	var caps []adapterv1.Capability
	if _, ok := a.(AccountsAdapter); ok {
		caps = append(caps, adapterv1.Capability_CAPABILITY_ACCOUNTS, adapterv1.Capability_CAPABILITY_BALANCES)
	}
	if _, ok := a.(TransactionsAdapter); ok {
		caps = append(caps, adapterv1.Capability_CAPABILITY_TRANSACTIONS)
	}
	if _, ok := a.(SCAAdapter); ok {
		caps = append(caps, adapterv1.Capability_CAPABILITY_SCA)
	}
	if _, ok := a.(SupportAdapter); ok {
		caps = append(caps, adapterv1.Capability_CAPABILITY_SUPPORT_HANDOFF)
	}
	if _, ok := a.(FraudAdapter); ok {
		caps = append(caps, adapterv1.Capability_CAPABILITY_FRAUD)
	}
	if _, ok := a.(EventsAdapter); ok {
		caps = append(caps, adapterv1.Capability_CAPABILITY_EVENTS)
	}
	if _, ok := a.(ConsentExtensionAdapter); ok {
		caps = append(caps, adapterv1.Capability_CAPABILITY_CONSENT_EXTENSION)
	}
	if purchaseDetails(a) != nil {
		caps = append(caps, adapterv1.Capability_CAPABILITY_PURCHASE_DETAILS)
	}
	if _, ok := a.(CardsAdapter); ok {
		caps = append(caps, adapterv1.Capability_CAPABILITY_CARDS)
	}
	return caps
}

// purchaseDetails returns a as a PurchaseDetailsAdapter when it serves
// capability PURCHASE_DETAILS: only together with TRANSACTIONS, whose
// transaction ids its requests name.
func purchaseDetails(a Adapter) PurchaseDetailsAdapter {
	p, ok := a.(PurchaseDetailsAdapter)
	if _, tx := a.(TransactionsAdapter); !ok || !tx {
		return nil
	}
	return p
}

// Credentials returns the credentials bankbridge sent with the incoming call
// in ctx, keyed by their credential key in lowercase (e.g. "api_key"), for
// an adapter served with [NewServer] that needs them to call its bank. Never
// log them.
func Credentials(ctx context.Context) map[string]string {
	md, _ := metadata.FromIncomingContext(ctx)
	creds := map[string]string{}
	for k, v := range md {
		if name, ok := strings.CutPrefix(k, CredentialMetadataPrefix); ok && name != "" && len(v) > 0 {
			creds[name] = v[0]
		}
	}
	return creds
}
