// Package carrierpush is the shipping service's carrier endpoint,
// POST /v1/carriers/{carrier}/trackingEvents: the one bankbridge call that
// is not gRPC under a bearer token, because carriers and tracking
// aggregators send webhooks. A push is authenticated by its Standard
// Webhooks signature (adapters/stdwebhook) with the carrier's secret from
// Vault (bankbridge/carriers/<carrier>), its body is the contract's
// shipping.v1.CarrierPush in JSON, checked with its protovalidate rules,
// and a verified push is handed to an Ingester, which stores it once per
// webhook-id. Errors are google.rpc.Status in JSON, as the gateway writes
// them.
//
// Whether a carrier exists is never told: a push for an unknown carrier
// gets the very answer a push with a bad signature gets.
package carrierpush

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"buf.build/go/protovalidate"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bankbridge/bankbridge/adapters/stdwebhook"
	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	shippingv1 "github.com/bankbridge/bankbridge/gen/bankbridge/shipping/v1"
	"github.com/bankbridge/bankbridge/services/platform/credentials"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// Route is the endpoint's pattern, as http.ServeMux writes it.
const Route = "/v1/carriers/{carrier}/trackingEvents"

// DefaultMaxBodyBytes is the largest body accepted when Options sets none:
// a push holds at most 100 events.
const DefaultMaxBodyBytes = 1 << 20

// Ingester stores a verified carrier push (the shipping service implements
// it). It is called only with a push whose signature verified and whose
// body passed CarrierPush's rules. It records pushID in the transaction that
// stores the events, and answers ErrReplayed, storing nothing, when pushID
// was recorded before; otherwise it returns how many events were new and
// how many had been recorded before (by event_id). An error that is an
// apierr status reaches the carrier as it is; any other is masked as
// INTERNAL.
type Ingester interface {
	IngestCarrierPush(ctx context.Context, carrier, pushID string, push *shippingv1.CarrierPush) (recorded, duplicates int, err error)
}

// ErrReplayed: the push id was seen before; answered 401, nothing stored.
var ErrReplayed = errors.New("carrierpush: push id seen before")

// Secrets gives a carrier's signing secrets ("whsec_..."), current first;
// ErrUnknownCarrier when none is configured. An error matching
// credentials.ErrUnavailable (the store cannot be read now) is answered
// 503 CREDENTIALS_UNAVAILABLE, to be retried; any other is masked as
// INTERNAL.
type Secrets interface {
	CarrierSecrets(ctx context.Context, carrier string) ([]string, error)
}

// ErrUnknownCarrier reports that no signing secret is configured for the
// carrier. The handler answers it exactly as it answers a bad signature.
var ErrUnknownCarrier = errors.New("carrierpush: no signing secret configured for the carrier")

// Options tune the handler; the zero value of each field takes its default.
type Options struct {
	// Logger gets one line per push; default slog.Default().
	Logger *slog.Logger
	// Now is the clock the signature's timestamp and the body's time rules
	// are checked against; default time.Now.
	Now func() time.Time
	// MaxBodyBytes is the largest body accepted (413 above it); default
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// carrierPattern is what a carrier id looks like; anything else cannot
// have a secret, and is refused without asking Vault.
var carrierPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{1,31}$`)

// Log attribute keys (bankbridge.* passes the telemetry allow-list): ids,
// counts and outcomes only, never the body, tracking numbers, names or
// secrets.
const (
	attrCarrier    = "bankbridge.carrier"
	attrPushID     = "bankbridge.push_id"
	attrEvents     = "bankbridge.event_count"
	attrRecorded   = "bankbridge.recorded_count"
	attrDuplicates = "bankbridge.duplicate_count"
	attrStatus     = "http.response.status_code"
)

// maxLoggedPushID bounds the carrier-chosen id in a log line.
const maxLoggedPushID = 128

// credentialsRetryAfter is when a carrier should retry while the signing
// secrets cannot be read.
const credentialsRetryAfter = 5 * time.Second

type handler struct {
	ing       Ingester
	sec       Secrets
	log       *slog.Logger
	now       func() time.Time
	maxBody   int64
	validator protovalidate.Validator
}

// NewHandler returns the carrier endpoint: POST Route, and a 404 for any
// other path. It compiles CarrierPush's validation rules at once and panics
// if they do not compile, as regexp.MustCompile does: the rules are built
// into the binary, and the tests compile them.
func NewHandler(ing Ingester, sec Secrets, opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	v, err := protovalidate.New(
		protovalidate.WithMessages(&shippingv1.CarrierPush{}),
		protovalidate.WithNowFunc(func() *timestamppb.Timestamp { return timestamppb.New(opts.Now()) }),
	)
	if err != nil {
		panic(fmt.Sprintf("carrierpush: compile CarrierPush rules: %v", err))
	}
	h := &handler{ing: ing, sec: sec, log: opts.Logger, now: opts.Now, maxBody: opts.MaxBodyBytes, validator: v}
	mux := http.NewServeMux()
	mux.HandleFunc(Route, h.serve)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, status.New(codes.NotFound, "not found").Proto())
	})
	return mux
}

// push is what the log line of one push says.
type push struct {
	carrier  string
	id       string
	events   int
	recorded int
	dups     int
	outcome  string
	security bool   // an authentication failure, for the security log
	incident string // the id an INTERNAL answer carries
	cause    error  // logged with an incident, never answered
}

func (h *handler) serve(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	p := &push{carrier: r.PathValue("carrier")}
	if !carrierPattern.MatchString(p.carrier) {
		p.carrier = "" // not an id: keep the caller's text out of the log
	}
	a := h.handle(r.Context(), w, r, p)
	if a.code == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	if a.st != nil {
		writeJSON(w, a.code, a.st.Proto())
	} else {
		writeJSON(w, http.StatusOK, &shippingv1.CarrierPushResponse{RecordedCount: int32(p.recorded), DuplicateCount: int32(p.dups)})
	}
	h.logPush(r.Context(), p, a, h.now().Sub(start))
}

// answer is what a push is answered: 200 with the counts when st is nil,
// otherwise code with st as a JSON google.rpc.Status.
type answer struct {
	code int
	st   *status.Status
}

func refusal(code int, err error) answer {
	st, _ := status.FromError(err)
	return answer{code: code, st: st}
}

// handle runs one push. The cheap refusals come first: the method, then
// the signature headers and the timestamp, which need neither the body nor
// the carrier's secrets.
func (h *handler) handle(ctx context.Context, w http.ResponseWriter, r *http.Request, p *push) answer {
	if r.Method != http.MethodPost {
		p.outcome = "method_not_allowed"
		return answer{code: http.StatusMethodNotAllowed, st: status.New(codes.Unimplemented, "method not allowed; use POST")}
	}
	now := h.now()
	if a, ok := h.checkHeaders(r.Header, now, p); !ok {
		return a
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			p.outcome = "too_large"
			return refusal(http.StatusRequestEntityTooLarge, apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT,
				fmt.Sprintf("request body larger than %d bytes", h.maxBody)))
		}
		p.outcome = "body_unreadable"
		return refusal(http.StatusBadRequest, apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "request body could not be read"))
	}
	id, a, ok := h.verify(ctx, r.Header, body, now, p)
	if !ok {
		return a
	}
	p.id = id

	msg := &shippingv1.CarrierPush{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(body, msg); err != nil {
		p.outcome = "malformed"
		// protojson names the offending field; its text goes back only to
		// the carrier that sent the body, never to the log.
		return refusal(http.StatusBadRequest, apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT,
			"request body is not a CarrierPush in JSON: "+err.Error()))
	}
	p.events = len(msg.GetEvents())
	if err := h.validator.Validate(msg); err != nil {
		p.outcome = "invalid"
		return refusal(http.StatusBadRequest, apierr.FromValidation(err))
	}

	recorded, dups, err := h.ing.IngestCarrierPush(ctx, p.carrier, id, msg)
	switch {
	case errors.Is(err, ErrReplayed):
		p.outcome, p.security = "replayed", true
		return refusal(http.StatusUnauthorized, apierr.New(commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID,
			"webhook-id was seen before; a push is accepted once"))
	case err != nil:
		return h.failed(ctx, err, p)
	}
	p.outcome, p.recorded, p.dups = "ok", recorded, dups
	return answer{code: http.StatusOK}
}

// unauthenticated refuses a push that does not prove it comes from the
// carrier.
func unauthenticated(p *push, outcome, msg string) answer {
	p.outcome, p.security = outcome, true
	return refusal(http.StatusUnauthorized, apierr.New(commonv1.ErrorReason_ERROR_REASON_TOKEN_INVALID, msg))
}

// badSignature is the one answer to a signature that does not verify,
// whether the carrier is unknown or the signature wrong.
const badSignature = "no webhook-signature matches the carrier's signing secret"

// checkHeaders refuses a push without the three signature headers or with
// a timestamp outside the tolerance. It runs before the carrier's secrets
// are looked up, so its answers cannot tell a known carrier from an
// unknown one.
func (h *handler) checkHeaders(hdr http.Header, now time.Time, p *push) (answer, bool) {
	// With no secrets, Verify checks only the headers and the timestamp.
	switch _, err := stdwebhook.Verify(nil, hdr, nil, now, stdwebhook.DefaultTolerance); {
	case errors.Is(err, stdwebhook.ErrMissingHeaders):
		return unauthenticated(p, "unsigned", "webhook-id, webhook-timestamp and webhook-signature are required (Standard Webhooks)"), false
	case errors.Is(err, stdwebhook.ErrTimestamp):
		return unauthenticated(p, "stale", "webhook-timestamp is malformed or more than 5 minutes from the server's clock"), false
	}
	return answer{}, true
}

// verify checks the push's signature with the carrier's secrets and
// returns its webhook-id. An unknown carrier gets the answer of a bad
// signature.
func (h *handler) verify(ctx context.Context, hdr http.Header, body []byte, now time.Time, p *push) (string, answer, bool) {
	if p.carrier == "" {
		return "", unauthenticated(p, "unknown_carrier", badSignature), false
	}
	secrets, err := h.sec.CarrierSecrets(ctx, p.carrier)
	switch {
	case errors.Is(err, ErrUnknownCarrier):
		return "", unauthenticated(p, "unknown_carrier", badSignature), false
	case err != nil:
		return "", h.failed(ctx, err, p), false
	}
	id, err := stdwebhook.Verify(secrets, hdr, body, now, stdwebhook.DefaultTolerance)
	switch {
	case errors.Is(err, stdwebhook.ErrSecret):
		// Vault holds something that is no signing secret: ours to fix.
		return "", h.failed(ctx, fmt.Errorf("carrier %s: %w", p.carrier, err), p), false
	case err != nil:
		return "", unauthenticated(p, "bad_signature", badSignature), false
	}
	return id, answer{}, true
}

// failed answers an error from the secrets or the Ingester: a bankbridge
// status as it is, secrets that cannot be read now
// (credentials.ErrUnavailable) as CREDENTIALS_UNAVAILABLE, anything else
// masked as INTERNAL behind an incident id.
func (h *handler) failed(ctx context.Context, err error, p *push) answer {
	switch {
	case ctx.Err() != nil:
		p.outcome = "cancelled"
		return answer{code: runtime.HTTPStatusFromCode(codes.Canceled), st: status.New(codes.Canceled, "request cancelled")}
	case errors.Is(err, credentials.ErrUnavailable):
		p.outcome, p.cause = "credentials_unavailable", err
		return refusal(http.StatusServiceUnavailable, apierr.New(commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_UNAVAILABLE,
			"the carrier's signing secret cannot be read right now; retry later",
			apierr.WithRetryAfter(credentialsRetryAfter)))
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.OK && apierr.Info(err) != nil {
		p.outcome = "refused"
		return answer{code: runtime.HTTPStatusFromCode(st.Code()), st: st}
	}
	id, masked := apierr.Internal()
	p.outcome, p.incident, p.cause = "internal", id, err
	return refusal(http.StatusInternalServerError, masked)
}

// jsonOut writes what the gateway writes: proto field names, no unset
// fields.
var jsonOut = protojson.MarshalOptions{UseProtoNames: true}

// writeJSON writes m in JSON with the HTTP status code.
func writeJSON(w http.ResponseWriter, code int, m proto.Message) {
	body, err := jsonOut.Marshal(m)
	if err != nil {
		code, body = http.StatusInternalServerError, []byte(`{"code":13,"message":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

func (h *handler) logPush(ctx context.Context, p *push, a answer, took time.Duration) {
	code, st := a.code, a.st
	level := slog.LevelInfo
	switch {
	case code >= 500:
		level = slog.LevelError
	case code >= 400:
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String(attrCarrier, p.carrier),
		slog.String(telemetry.AttrOutcome, p.outcome),
		slog.Int(attrStatus, code),
		slog.Int(attrEvents, p.events),
		slog.Int(attrRecorded, p.recorded),
		slog.Int(attrDuplicates, p.dups),
		slog.Float64("duration_ms", float64(took.Microseconds())/1000),
	}
	if p.id != "" {
		id := p.id
		if len(id) > maxLoggedPushID {
			id = id[:maxLoggedPushID]
		}
		attrs = append(attrs, slog.String(attrPushID, id))
	}
	if st != nil {
		if info := apierr.Info(st.Err()); info != nil {
			attrs = append(attrs, slog.String(telemetry.AttrReason, info.GetReason()))
		}
	}
	if p.security {
		attrs = append(attrs, slog.String(telemetry.AttrLogType, "security"))
	}
	if p.incident != "" {
		attrs = append(attrs, slog.String(telemetry.AttrIncidentID, p.incident))
	}
	if p.cause != nil {
		attrs = append(attrs, slog.String("error", p.cause.Error()))
	}
	h.log.LogAttrs(ctx, level, "carrier push", attrs...)
}
