package adapters

import (
	"errors"
	"fmt"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// newProtocolValidator compiles the protovalidate rules of every request and
// response of the adapter protocol up front, so that a broken rule fails at
// start-up rather than on a customer's call.
func newProtocolValidator() (protovalidate.Validator, error) {
	sd := adapterv1.File_bankbridge_adapter_v1_adapter_proto.Services().ByName("BankAdapterService")
	var msgs []protoreflect.MessageDescriptor
	for i := range sd.Methods().Len() {
		m := sd.Methods().Get(i)
		msgs = append(msgs, m.Input(), m.Output())
	}
	v, err := protovalidate.New(protovalidate.WithMessageDescriptors(msgs...))
	if err != nil {
		return nil, fmt.Errorf("compile adapter protocol rules: %w", err)
	}
	return v, nil
}

// violations lists the field paths and rule ids protovalidate reported; nil
// when err is not a validation error (a rule that cannot be evaluated).
func violations(err error) []apierr.FieldViolation {
	var verr *protovalidate.ValidationError
	if !errors.As(err, &verr) {
		return nil
	}
	out := make([]apierr.FieldViolation, 0, len(verr.Violations))
	for _, v := range verr.Violations {
		out = append(out, apierr.FieldViolation{
			Field:       protovalidate.FieldPathString(v.Proto.GetField()),
			Description: v.Proto.GetMessage(),
			Reason:      v.Proto.GetRuleId(),
		})
	}
	return out
}

// ValidationError turns a protovalidate error into INVALID_ARGUMENT with a
// BadRequest naming each field path and rule id. Descriptions come from the
// rules, never from the values. The adapter server and bankbridge's own
// services both answer with it, so a caller sees one shape of validation
// error everywhere.
func ValidationError(err error) error {
	vs := violations(err)
	msg := "invalid request"
	if len(vs) > 0 {
		msg = fmt.Sprintf("invalid request: %s: %s", vs[0].Field, vs[0].Description)
	}
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, msg, apierr.WithFieldViolations(vs...))
}

// describeViolations names where a message broke the rules, for operators:
// field paths and rule ids only, never values.
func describeViolations(err error) string {
	vs := violations(err)
	if len(vs) == 0 {
		return "rules could not be evaluated"
	}
	s := ""
	for i, v := range vs {
		if i == 3 {
			s += fmt.Sprintf(" and %d more", len(vs)-i)
			break
		}
		if i > 0 {
			s += ", "
		}
		field := v.Field
		if field == "" {
			field = "(message)"
		}
		s += fmt.Sprintf("%s (%s)", field, v.Reason)
	}
	return s
}
