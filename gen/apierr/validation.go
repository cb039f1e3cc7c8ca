package apierr

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// validationError is what protovalidate's *ValidationError offers. Matching
// the method rather than the type keeps protovalidate's runtime (CEL and its
// parser) out of this module: product teams import apierr to read errors and
// should not compile a rule engine for it. The violations' proto form comes
// from the buf.validate package gen already depends on.
type validationError interface {
	error
	ToProto() *validate.Violations
}

// FromValidation turns the error of a protovalidate Validate call into
// INVALID_ARGUMENT with a google.rpc.BadRequest naming each field path and
// rule id. Descriptions come from the rules, never from the values. Services
// and adapters both answer with it, so a caller sees one shape of validation
// error everywhere. An err that is not a validation error (a rule that could
// not be evaluated) gives INVALID_ARGUMENT without field violations; callers
// that treat that as their own fault check [ValidationViolations] first.
func FromValidation(err error) error {
	vs := ValidationViolations(err)
	msg := "invalid request"
	if len(vs) > 0 {
		msg = fmt.Sprintf("invalid request: %s: %s", vs[0].Field, vs[0].Description)
	}
	return New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, msg, WithFieldViolations(vs...))
}

// ValidationViolations lists the field paths, rule messages and rule ids a
// protovalidate error reports, or nil when err is not a validation error.
// Paths are written as protovalidate writes them: "page_size",
// "link.scopes[0]", `labels["k"]`.
func ValidationViolations(err error) []FieldViolation {
	var verr validationError
	if !errors.As(err, &verr) {
		return nil
	}
	pvs := verr.ToProto().GetViolations()
	out := make([]FieldViolation, 0, len(pvs))
	for _, v := range pvs {
		out = append(out, FieldViolation{
			Field:       fieldPath(v.GetField()),
			Description: v.GetMessage(),
			Reason:      v.GetRuleId(),
		})
	}
	return out
}

// fieldPath writes a path the way protovalidate.FieldPathString does; a test
// in the adapters module, which links protovalidate, holds the two together.
func fieldPath(p *validate.FieldPath) string {
	var b strings.Builder
	for i, e := range p.GetElements() {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(e.GetFieldName())
		var sub string
		switch e.WhichSubscript() {
		case validate.FieldPathElement_Index_case:
			sub = strconv.FormatUint(e.GetIndex(), 10)
		case validate.FieldPathElement_BoolKey_case:
			sub = strconv.FormatBool(e.GetBoolKey())
		case validate.FieldPathElement_IntKey_case:
			sub = strconv.FormatInt(e.GetIntKey(), 10)
		case validate.FieldPathElement_UintKey_case:
			sub = strconv.FormatUint(e.GetUintKey(), 10)
		case validate.FieldPathElement_StringKey_case:
			sub = strconv.Quote(e.GetStringKey())
		default:
			continue
		}
		b.WriteString("[" + sub + "]")
	}
	return b.String()
}
