package adapters

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"buf.build/go/protovalidate"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/adapters/internal/protocol"
	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// RetryAfterBankFailure is the RetryInfo delay of a BANK_UNAVAILABLE that
// comes from one failed bank call (a timeout, a 5xx, a refused connection)
// rather than from a known outage. The server wrapper puts it on the
// errors it masks, and bankbridge's registry on the failures it sees
// itself; an adapter uses it too, unless the bank said when to come back
// (an HTTP Retry-After header, a maintenance window): then it passes that
// on, as apierr.WithRetryAfter(d).
const RetryAfterBankFailure = time.Second

// KeepaliveServerOption is the keepalive policy to give the grpc.Server
// that serves a remote adapter: it permits bankbridge's keepalive pings
// (see [Keepalive]), on idle connections too. gRPC's default policy allows
// one ping per 5 minutes and none without a call; with it, the server
// answers bankbridge's pings with GOAWAY too_many_pings and closes the
// connection, failing the calls on it. MinTime is half the shortest
// keepalive.time banks.yaml allows, so that a ping delayed on the network
// never looks early.
//
//	srv := grpc.NewServer(adapters.KeepaliveServerOption())
func KeepaliveServerOption() grpc.ServerOption {
	return grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: MinKeepaliveTime / 2, PermitWithoutStream: true})
}

// ServerOption configures [NewServer].
type ServerOption func(*serverOptions)

type serverOptions struct {
	apiKeys func() []string
	logger  *slog.Logger
	// quiet keeps the text of masked errors and panics out of the log, for
	// in-process adapters, whose log is bankbridge's own: that text may
	// carry a bank's raw answer.
	quiet bool
}

// WithQuietLogs is for a host that serves the adapter inside its own
// process, as bankbridge's registry does with an in-process adapter: the
// host's log is then the adapter's, and it logs every call itself. The
// server leaves the text of masked errors and panics out of the log (that
// text may carry a bank's raw answer) and writes no line per call. A
// remote adapter does not need it.
func WithQuietLogs() ServerOption {
	return func(o *serverOptions) { o.quiet = true }
}

// WithAPIKeys makes the server refuse every call whose
// bankbridge-credential-api_key metadata is not one of keys(), with
// UNAUTHENTICATED (CREDENTIALS_REJECTED). keys is called on every call, so
// it can follow a rotation; during one, return the old and the new key.
func WithAPIKeys(keys func() []string) ServerOption {
	return func(o *serverOptions) { o.apiKeys = keys }
}

// WithLogger sets where the server logs what it masks: adapter errors that
// carry no bankbridge ErrorInfo, and panics, each with its text under the
// incident id the caller sees; keep personal data out of such errors.
// Default slog.Default().
func WithLogger(l *slog.Logger) ServerOption {
	return func(o *serverOptions) { o.logger = l }
}

// NewServer exposes a Go adapter as a bankbridge.adapter.v1 gRPC service:
// register it with adapterv1.RegisterBankAdapterServiceServer. On every call
// it checks the API key (with [WithAPIKeys]), answers the RPCs of
// capabilities a does not implement with UNIMPLEMENTED
// (CAPABILITY_NOT_SUPPORTED), validates the request against the protocol's
// rules (INVALID_ARGUMENT with a BadRequest naming each field), checks that
// Info lists exactly the implemented capabilities, and keeps a's failures
// from leaking: an error without a bankbridge ErrorInfo becomes UNAVAILABLE
// (BANK_UNAVAILABLE) and a panic INTERNAL, each logged under an incident id.
func NewServer(a Adapter, opts ...ServerOption) adapterv1.BankAdapterServiceServer {
	o := serverOptions{logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	s := &server{adapter: a, opts: o, capabilities: Capabilities(a)}
	s.validator, s.validatorErr = protocol.NewValidator()
	s.accounts, _ = a.(AccountsAdapter)
	s.transactions, _ = a.(TransactionsAdapter)
	s.sca, _ = a.(SCAAdapter)
	s.support, _ = a.(SupportAdapter)
	s.fraud, _ = a.(FraudAdapter)
	s.cards, _ = a.(CardsAdapter)
	s.events, _ = a.(EventsAdapter)
	s.extension, _ = a.(ConsentExtensionAdapter)
	s.purchases = purchaseDetails(a)
	return s
}

type server struct {
	adapterv1.UnimplementedBankAdapterServiceServer

	adapter      Adapter
	opts         serverOptions
	capabilities []adapterv1.Capability
	validator    protovalidate.Validator
	validatorErr error

	accounts     AccountsAdapter
	transactions TransactionsAdapter
	sca          SCAAdapter
	support      SupportAdapter
	fraud        FraudAdapter
	cards        CardsAdapter
	events       EventsAdapter
	extension    ConsentExtensionAdapter
	purchases    PurchaseDetailsAdapter // nil without TransactionsAdapter too
}

// unary runs one call through the server's checks. call is nil when the
// adapter does not implement capability.
func unary[Req, Resp proto.Message](ctx context.Context, s *server, method string, capability adapterv1.Capability, req Req, call func(context.Context, Req) (Resp, error)) (resp Resp, err error) {
	var zero Resp
	defer s.logCall(ctx, method, time.Now(), &err)
	if err := s.admit(ctx, method, capability, call != nil, req); err != nil {
		return zero, err
	}
	defer s.recoverPanic(ctx, method, &err)
	resp, err = call(ctx, req)
	if err != nil {
		return zero, s.mask(ctx, method, err)
	}
	if !resp.ProtoReflect().IsValid() {
		return zero, s.internal(ctx, method, errors.New("adapter returned neither a response nor an error"))
	}
	return resp, nil
}

// admit runs the checks every call passes before the adapter sees it: API
// key first, so that an unauthenticated caller learns nothing else.
func (s *server) admit(ctx context.Context, method string, capability adapterv1.Capability, implemented bool, req proto.Message) error {
	if err := s.authenticate(ctx); err != nil {
		return err
	}
	if !implemented {
		return notSupported(method, capability)
	}
	if s.validatorErr != nil {
		return s.internal(ctx, method, s.validatorErr)
	}
	if err := s.validator.Validate(req); err != nil {
		if apierr.ValidationViolations(err) == nil {
			return s.internal(ctx, method, fmt.Errorf("evaluate request rules: %w", err))
		}
		return apierr.FromValidation(err)
	}
	return nil
}

func notSupported(method string, capability adapterv1.Capability) error {
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_CAPABILITY_NOT_SUPPORTED,
		fmt.Sprintf("%s: this adapter does not implement capability %s", method, protocol.CapabilityName(capability)))
}

// authenticate compares the presented API key with every accepted one in
// constant time; hashing first makes the comparison independent of the
// keys' lengths too.
func (s *server) authenticate(ctx context.Context) error {
	if s.opts.apiKeys == nil {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	presented := md.Get(APIKeyMetadata)
	if len(presented) != 1 || presented[0] == "" {
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_REJECTED,
			"credentials metadata "+APIKeyMetadata+" is missing or given more than once")
	}
	got := sha256.Sum256([]byte(presented[0]))
	match := 0
	for _, k := range s.opts.apiKeys() {
		if k == "" {
			continue
		}
		want := sha256.Sum256([]byte(k))
		match |= subtle.ConstantTimeCompare(got[:], want[:])
	}
	if match != 1 {
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_REJECTED,
			"credentials metadata "+APIKeyMetadata+" is not accepted")
	}
	return nil
}

// mask lets an error with a bankbridge ErrorInfo through and turns any other
// into BANK_UNAVAILABLE, so that a bank's raw error text never reaches
// bankbridge; the text is logged under the incident id instead.
func (s *server) mask(ctx context.Context, method string, err error) error {
	if apierr.Reason(err) != commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
		return err
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		// The caller cancelled or its deadline passed: it has stopped
		// listening, and whether the bank was slow is the caller's call.
		return status.FromContextError(ctxErr).Err()
	}
	if errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded {
		// The adapter's own timeout on the bank.
		return apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE,
			"the bank did not answer in time", apierr.WithRetryAfter(RetryAfterBankFailure))
	}
	id := apierr.IncidentID()
	s.opts.logger.LogAttrs(ctx, slog.LevelWarn, "bank adapter error without a bankbridge ErrorInfo, answered BANK_UNAVAILABLE",
		s.errorAttrs(method, id, err)...)
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_BANK_UNAVAILABLE,
		"the bank call failed; quote incident "+id+" when reporting it",
		apierr.WithMetadata("incident_id", id), apierr.WithRetryAfter(RetryAfterBankFailure))
}

// internal logs cause under a fresh incident id and returns the masked
// INTERNAL error that quotes it.
func (s *server) internal(ctx context.Context, method string, cause error) error {
	id, err := apierr.Internal()
	s.opts.logger.LogAttrs(ctx, slog.LevelError, "bank adapter internal error", s.errorAttrs(method, id, cause)...)
	return err
}

// errorAttrs describes a masked error for the log: its type and code
// always, its text unless the server is quiet.
func (s *server) errorAttrs(method, incidentID string, err error) []slog.Attr {
	attrs := []slog.Attr{
		slog.String("method", method),
		slog.String("incident_id", incidentID),
		slog.String("error_type", fmt.Sprintf("%T", err)),
		slog.String("code", status.Code(err).String()),
	}
	if !s.opts.quiet {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	return attrs
}

// recoverPanic turns a panic in the adapter into INTERNAL, so that an
// in-process adapter cannot take its host service down.
func (s *server) recoverPanic(ctx context.Context, method string, err *error) {
	p := recover()
	if p == nil {
		return
	}
	id, e := apierr.Internal()
	attrs := []slog.Attr{slog.String("method", method), slog.String("incident_id", id), slog.String("stack", string(debug.Stack()))}
	if !s.opts.quiet {
		attrs = append(attrs, slog.String("panic", fmt.Sprint(p)))
	}
	s.opts.logger.LogAttrs(ctx, slog.LevelError, "bank adapter panicked", attrs...)
	*err = e
}

// logCall writes one line per call: method, outcome and duration, with
// the caller's trace id, so that on-call can follow a trace into the bank.
// A failure the bank is blamed for is a WARN with its reason. Never the
// request or the response: they hold customers' data. In-process adapters
// (quiet) log nothing per call: the registry that calls them counts and
// logs each call already.
func (s *server) logCall(ctx context.Context, method string, start time.Time, err *error) {
	if s.opts.quiet {
		return
	}
	level := slog.LevelInfo
	if *err != nil && protocol.Failed(*err) {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("method", method),
		slog.String("outcome", protocol.Outcome(*err)),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
	}
	if id := incomingTraceID(ctx); id != "" {
		attrs = append(attrs, slog.String("trace_id", id))
	}
	s.opts.logger.LogAttrs(ctx, level, "bank call", attrs...)
}

// incomingTraceID is the caller's trace id when no span in ctx carries it
// (an adapter served without OpenTelemetry): read from the W3C traceparent
// metadata bankbridge sends, "00-<trace id>-<span id>-<flags>". With a span,
// a log handler that adds trace ids (bankbridge's does) has it already.
func incomingTraceID(ctx context.Context) string {
	if trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	md, _ := metadata.FromIncomingContext(ctx)
	tp := md.Get("traceparent")
	if len(tp) != 1 {
		return ""
	}
	parts := strings.Split(tp[0], "-")
	if len(parts) != 4 || len(parts[1]) != 32 {
		return ""
	}
	id, err := trace.TraceIDFromHex(parts[1])
	if err != nil || !id.IsValid() {
		return ""
	}
	return id.String()
}

// GetAdapterInfo implements adapterv1.BankAdapterServiceServer.
func (s *server) GetAdapterInfo(ctx context.Context, req *adapterv1.GetAdapterInfoRequest) (*adapterv1.GetAdapterInfoResponse, error) {
	return unary(ctx, s, "GetAdapterInfo", adapterv1.Capability_CAPABILITY_UNSPECIFIED, req,
		func(ctx context.Context, _ *adapterv1.GetAdapterInfoRequest) (*adapterv1.GetAdapterInfoResponse, error) {
			info, err := s.adapter.Info(ctx)
			if err != nil {
				return nil, err
			}
			if err := protocol.CheckCapabilities(info, s.capabilities); err != nil {
				return nil, s.internal(ctx, "GetAdapterInfo", err)
			}
			return info, nil
		})
}

// CheckHealth implements adapterv1.BankAdapterServiceServer.
func (s *server) CheckHealth(ctx context.Context, req *adapterv1.CheckHealthRequest) (*adapterv1.CheckHealthResponse, error) {
	return unary(ctx, s, "CheckHealth", adapterv1.Capability_CAPABILITY_UNSPECIFIED, req, s.adapter.CheckHealth)
}

// StartSca implements adapterv1.BankAdapterServiceServer.
func (s *server) StartSca(ctx context.Context, req *adapterv1.StartScaRequest) (*adapterv1.StartScaResponse, error) {
	var call func(context.Context, *adapterv1.StartScaRequest) (*adapterv1.StartScaResponse, error)
	if s.sca != nil {
		call = s.sca.StartSca
	}
	return unary(ctx, s, "StartSca", adapterv1.Capability_CAPABILITY_SCA, req, call)
}

// VerifySca implements adapterv1.BankAdapterServiceServer.
func (s *server) VerifySca(ctx context.Context, req *adapterv1.VerifyScaRequest) (*adapterv1.VerifyScaResponse, error) {
	var call func(context.Context, *adapterv1.VerifyScaRequest) (*adapterv1.VerifyScaResponse, error)
	if s.sca != nil {
		call = s.sca.VerifySca
	}
	return unary(ctx, s, "VerifySca", adapterv1.Capability_CAPABILITY_SCA, req, call)
}

// RevokeConsent implements adapterv1.BankAdapterServiceServer.
func (s *server) RevokeConsent(ctx context.Context, req *adapterv1.RevokeConsentRequest) (*adapterv1.RevokeConsentResponse, error) {
	var call func(context.Context, *adapterv1.RevokeConsentRequest) (*adapterv1.RevokeConsentResponse, error)
	if s.sca != nil {
		call = s.sca.RevokeConsent
	}
	return unary(ctx, s, "RevokeConsent", adapterv1.Capability_CAPABILITY_SCA, req, call)
}

// ExtendConsent implements adapterv1.BankAdapterServiceServer.
func (s *server) ExtendConsent(ctx context.Context, req *adapterv1.ExtendConsentRequest) (*adapterv1.ExtendConsentResponse, error) {
	var call func(context.Context, *adapterv1.ExtendConsentRequest) (*adapterv1.ExtendConsentResponse, error)
	if s.extension != nil {
		call = s.extension.ExtendConsent
	}
	return unary(ctx, s, "ExtendConsent", adapterv1.Capability_CAPABILITY_CONSENT_EXTENSION, req, call)
}

// ListAccounts implements adapterv1.BankAdapterServiceServer.
func (s *server) ListAccounts(ctx context.Context, req *adapterv1.ListAccountsRequest) (*adapterv1.ListAccountsResponse, error) {
	var call func(context.Context, *adapterv1.ListAccountsRequest) (*adapterv1.ListAccountsResponse, error)
	if s.accounts != nil {
		call = s.accounts.ListAccounts
	}
	return unary(ctx, s, "ListAccounts", adapterv1.Capability_CAPABILITY_ACCOUNTS, req, call)
}

// GetBalances implements adapterv1.BankAdapterServiceServer.
func (s *server) GetBalances(ctx context.Context, req *adapterv1.GetBalancesRequest) (*adapterv1.GetBalancesResponse, error) {
	var call func(context.Context, *adapterv1.GetBalancesRequest) (*adapterv1.GetBalancesResponse, error)
	if s.accounts != nil {
		call = s.accounts.GetBalances
	}
	return unary(ctx, s, "GetBalances", adapterv1.Capability_CAPABILITY_BALANCES, req, call)
}

// SyncTransactions implements adapterv1.BankAdapterServiceServer.
func (s *server) SyncTransactions(ctx context.Context, req *adapterv1.SyncTransactionsRequest) (*adapterv1.SyncTransactionsResponse, error) {
	var call func(context.Context, *adapterv1.SyncTransactionsRequest) (*adapterv1.SyncTransactionsResponse, error)
	if s.transactions != nil {
		call = s.transactions.SyncTransactions
	}
	return unary(ctx, s, "SyncTransactions", adapterv1.Capability_CAPABILITY_TRANSACTIONS, req, call)
}

// GetPurchaseDetails implements adapterv1.BankAdapterServiceServer.
func (s *server) GetPurchaseDetails(ctx context.Context, req *adapterv1.GetPurchaseDetailsRequest) (*adapterv1.GetPurchaseDetailsResponse, error) {
	var call func(context.Context, *adapterv1.GetPurchaseDetailsRequest) (*adapterv1.GetPurchaseDetailsResponse, error)
	if s.purchases != nil {
		call = s.purchases.GetPurchaseDetails
	}
	return unary(ctx, s, "GetPurchaseDetails", adapterv1.Capability_CAPABILITY_PURCHASE_DETAILS, req, call)
}

// StartSupportHandoff implements adapterv1.BankAdapterServiceServer.
func (s *server) StartSupportHandoff(ctx context.Context, req *adapterv1.StartSupportHandoffRequest) (*adapterv1.StartSupportHandoffResponse, error) {
	var call func(context.Context, *adapterv1.StartSupportHandoffRequest) (*adapterv1.StartSupportHandoffResponse, error)
	if s.support != nil {
		call = s.support.StartSupportHandoff
	}
	return unary(ctx, s, "StartSupportHandoff", adapterv1.Capability_CAPABILITY_SUPPORT_HANDOFF, req, call)
}

// SendSupportMessage implements adapterv1.BankAdapterServiceServer.
func (s *server) SendSupportMessage(ctx context.Context, req *adapterv1.SendSupportMessageRequest) (*adapterv1.SendSupportMessageResponse, error) {
	var call func(context.Context, *adapterv1.SendSupportMessageRequest) (*adapterv1.SendSupportMessageResponse, error)
	if s.support != nil {
		call = s.support.SendSupportMessage
	}
	return unary(ctx, s, "SendSupportMessage", adapterv1.Capability_CAPABILITY_SUPPORT_HANDOFF, req, call)
}

// ReportFraud implements adapterv1.BankAdapterServiceServer.
func (s *server) ReportFraud(ctx context.Context, req *adapterv1.ReportFraudRequest) (*adapterv1.ReportFraudResponse, error) {
	var call func(context.Context, *adapterv1.ReportFraudRequest) (*adapterv1.ReportFraudResponse, error)
	if s.fraud != nil {
		call = s.fraud.ReportFraud
	}
	return unary(ctx, s, "ReportFraud", adapterv1.Capability_CAPABILITY_FRAUD, req, call)
}

// NotifyThreadControl implements adapterv1.BankAdapterServiceServer.
func (s *server) NotifyThreadControl(ctx context.Context, req *adapterv1.NotifyThreadControlRequest) (*adapterv1.NotifyThreadControlResponse, error) {
	var call func(context.Context, *adapterv1.NotifyThreadControlRequest) (*adapterv1.NotifyThreadControlResponse, error)
	if s.support != nil {
		call = s.support.NotifyThreadControl
	}
	return unary(ctx, s, "NotifyThreadControl", adapterv1.Capability_CAPABILITY_SUPPORT_HANDOFF, req, call)
}

// AnswerFraudAlert implements adapterv1.BankAdapterServiceServer.
func (s *server) AnswerFraudAlert(ctx context.Context, req *adapterv1.AnswerFraudAlertRequest) (*adapterv1.AnswerFraudAlertResponse, error) {
	var call func(context.Context, *adapterv1.AnswerFraudAlertRequest) (*adapterv1.AnswerFraudAlertResponse, error)
	if s.fraud != nil {
		call = s.fraud.AnswerFraudAlert
	}
	return unary(ctx, s, "AnswerFraudAlert", adapterv1.Capability_CAPABILITY_FRAUD, req, call)
}

// ListCards implements adapterv1.BankAdapterServiceServer.
func (s *server) ListCards(ctx context.Context, req *adapterv1.ListCardsRequest) (*adapterv1.ListCardsResponse, error) {
	var call func(context.Context, *adapterv1.ListCardsRequest) (*adapterv1.ListCardsResponse, error)
	if s.cards != nil {
		call = s.cards.ListCards
	}
	return unary(ctx, s, "ListCards", adapterv1.Capability_CAPABILITY_CARDS, req, call)
}

// BlockCard implements adapterv1.BankAdapterServiceServer.
func (s *server) BlockCard(ctx context.Context, req *adapterv1.BlockCardRequest) (*adapterv1.BlockCardResponse, error) {
	var call func(context.Context, *adapterv1.BlockCardRequest) (*adapterv1.BlockCardResponse, error)
	if s.cards != nil {
		call = s.cards.BlockCard
	}
	return unary(ctx, s, "BlockCard", adapterv1.Capability_CAPABILITY_CARDS, req, call)
}

// StartCardUnblock implements adapterv1.BankAdapterServiceServer.
func (s *server) StartCardUnblock(ctx context.Context, req *adapterv1.StartCardUnblockRequest) (*adapterv1.StartCardUnblockResponse, error) {
	var call func(context.Context, *adapterv1.StartCardUnblockRequest) (*adapterv1.StartCardUnblockResponse, error)
	if s.cards != nil {
		call = s.cards.StartCardUnblock
	}
	return unary(ctx, s, "StartCardUnblock", adapterv1.Capability_CAPABILITY_CARDS, req, call)
}

// VerifyCardUnblock implements adapterv1.BankAdapterServiceServer.
func (s *server) VerifyCardUnblock(ctx context.Context, req *adapterv1.VerifyCardUnblockRequest) (*adapterv1.VerifyCardUnblockResponse, error) {
	var call func(context.Context, *adapterv1.VerifyCardUnblockRequest) (*adapterv1.VerifyCardUnblockResponse, error)
	if s.cards != nil {
		call = s.cards.VerifyCardUnblock
	}
	return unary(ctx, s, "VerifyCardUnblock", adapterv1.Capability_CAPABILITY_CARDS, req, call)
}

// StreamEvents implements adapterv1.BankAdapterServiceServer.
func (s *server) StreamEvents(req *adapterv1.StreamEventsRequest, stream grpc.ServerStreamingServer[adapterv1.StreamEventsResponse]) (err error) {
	const method = "StreamEvents"
	ctx := stream.Context()
	defer s.logCall(ctx, method, time.Now(), &err)
	if err := s.admit(ctx, method, adapterv1.Capability_CAPABILITY_EVENTS, s.events != nil, req); err != nil {
		return err
	}
	defer s.recoverPanic(ctx, method, &err)
	if err := s.events.StreamEvents(ctx, req, stream.Send); err != nil {
		return s.mask(ctx, method, err)
	}
	return nil
}
