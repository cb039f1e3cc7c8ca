// Package apierr builds the errors every bankbridge service returns: a gRPC
// status whose details hold a google.rpc.ErrorInfo with a reason from
// bankbridge.common.v1.ErrorReason and domain "bankbridge" (AIP-193), plus
// BadRequest or RetryInfo where they help the caller.
//
// The status code is never chosen here: each ErrorReason value names its own
// code in the contract (the grpc_code option), so a reason always travels
// with the same code on gRPC and the same HTTP status through the gateway.
//
// Messages must never carry personal data (account numbers, amounts, message
// texts, tokens): they are logged and traced by every hop.
//
// It lives beside the contracts, not in services/platform, because bank
// adapters (adapters module) build these errors too and product teams read
// them (Reason, Info); services/platform, adapters and clients all use this
// one package.
package apierr

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// Domain is the ErrorInfo domain of every bankbridge error.
const Domain = "bankbridge"

const reasonPrefix = "ERROR_REASON_"

// reasonCodes reads each reason's grpc_code option from the contract once.
var reasonCodes = sync.OnceValue(func() map[commonv1.ErrorReason]codes.Code {
	m := map[commonv1.ErrorReason]codes.Code{}
	values := commonv1.ErrorReason(0).Descriptor().Values()
	for i := range values.Len() {
		v := values.Get(i)
		c := proto.GetExtension(v.Options(), commonv1.E_GrpcCode).(code.Code)
		m[commonv1.ErrorReason(v.Number())] = codes.Code(c)
	}
	return m
})

// Code returns the status code the contract assigns to reason, or
// codes.Unknown for a reason without one (only UNSPECIFIED).
func Code(reason commonv1.ErrorReason) codes.Code {
	if c, ok := reasonCodes()[reason]; ok && c != codes.OK {
		return c
	}
	return codes.Unknown
}

// ReasonString is the reason as it travels in ErrorInfo.reason: the enum
// value's name without the ERROR_REASON_ prefix, e.g. "CONSENT_REQUIRED".
func ReasonString(reason commonv1.ErrorReason) string {
	return strings.TrimPrefix(reason.String(), reasonPrefix)
}

// ParseReason is the inverse of ReasonString; it returns UNSPECIFIED for an
// unknown string.
func ParseReason(s string) commonv1.ErrorReason {
	return commonv1.ErrorReason(commonv1.ErrorReason_value[reasonPrefix+s])
}

// FieldViolation names one request field that broke a rule, by its path as
// protovalidate reports it (e.g. "page_size", "link.scopes[0]").
type FieldViolation struct {
	Field       string
	Description string
	// Reason is the rule id, e.g. "int32.lte" or "money.sign_consistent".
	Reason string
}

// Option adds a detail to an error.
type Option func(*builder)

type builder struct {
	metadata   map[string]string
	violations []FieldViolation
	retryAfter time.Duration
}

// WithMetadata adds a key/value pair to ErrorInfo.metadata. Values must not
// be personal data.
func WithMetadata(key, value string) Option {
	return func(b *builder) {
		if b.metadata == nil {
			b.metadata = map[string]string{}
		}
		b.metadata[key] = value
	}
}

// WithFieldViolations adds a google.rpc.BadRequest listing the fields.
func WithFieldViolations(v ...FieldViolation) Option {
	return func(b *builder) { b.violations = append(b.violations, v...) }
}

// WithRetryAfter adds a google.rpc.RetryInfo telling the caller when to retry.
func WithRetryAfter(d time.Duration) Option {
	return func(b *builder) { b.retryAfter = d }
}

// New returns a status error with the reason's code, msg, and an ErrorInfo
// carrying the reason. msg is for developers; it must not carry personal data.
//
// Invalid UTF-8 in msg, metadata and field violations is replaced by U+FFFD
// (validUTF8): protobuf refuses to marshal such a string, so the detail
// holding it would otherwise be dropped, here or on the wire, and the
// caller would get a status without its reason.
func New(reason commonv1.ErrorReason, msg string, opts ...Option) error {
	var b builder
	for _, o := range opts {
		o(&b)
	}
	st := status.New(Code(reason), validUTF8(msg))
	var metadata map[string]string
	if b.metadata != nil {
		metadata = make(map[string]string, len(b.metadata))
		for k, v := range b.metadata {
			metadata[validUTF8(k)] = validUTF8(v)
		}
	}
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{
		Reason:   ReasonString(reason),
		Domain:   Domain,
		Metadata: metadata,
	}}
	if len(b.violations) > 0 {
		br := &errdetails.BadRequest{}
		for _, v := range b.violations {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
				Field: validUTF8(v.Field), Description: validUTF8(v.Description), Reason: validUTF8(v.Reason),
			})
		}
		details = append(details, br)
	}
	if b.retryAfter > 0 {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(b.retryAfter)})
	}
	withDetails, err := st.WithDetails(details...)
	if err != nil {
		// Only a nil detail can fail to marshal; keep the bare status.
		return st.Err()
	}
	return withDetails.Err()
}

// validUTF8 is s with each run of invalid UTF-8 replaced by U+FFFD.
func validUTF8(s string) string {
	return strings.ToValidUTF8(s, "\uFFFD")
}

// IncidentID returns a fresh random id that ties an INTERNAL reply to the
// server's log line about it.
func IncidentID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Internal masks an unexpected error: the caller sees INTERNAL with reason
// INTERNAL and an incident_id, never the cause's text. Whoever calls Internal
// logs the cause under the returned id (handle the error once).
func Internal() (incidentID string, err error) {
	id := IncidentID()
	return id, New(commonv1.ErrorReason_ERROR_REASON_INTERNAL,
		"internal error; quote incident "+id+" when reporting it",
		WithMetadata("incident_id", id))
}

// Info returns the ErrorInfo of err, or nil when err carries none.
func Info(err error) *errdetails.ErrorInfo {
	st, ok := status.FromError(err)
	if !ok {
		return nil
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

// Reason returns the ErrorReason of err, or UNSPECIFIED.
func Reason(err error) commonv1.ErrorReason {
	if info := Info(err); info != nil && info.GetDomain() == Domain {
		return ParseReason(info.GetReason())
	}
	return commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED
}

// RetryDelay is the delay err's RetryInfo asks a client to wait before it
// tries again, or 0 when it carries none.
func RetryDelay(err error) time.Duration {
	var target interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &target) {
		return 0
	}
	for _, d := range target.GRPCStatus().Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

// Is reports whether err is a bankbridge error with the given reason.
func Is(err error, reason commonv1.ErrorReason) bool {
	var target interface{ GRPCStatus() *status.Status }
	return errors.As(err, &target) && Reason(err) == reason
}
