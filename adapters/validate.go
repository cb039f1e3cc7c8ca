package adapters

import (
	"fmt"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
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

// describeViolations names where a message broke the rules, for operators:
// field paths and rule ids only, never values.
func describeViolations(err error) string {
	vs := apierr.ValidationViolations(err)
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
