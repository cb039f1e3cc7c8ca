// Package protocol holds what the adapter SDK's server and bankbridge's
// adapter runtime both need about the bankbridge.adapter.v1 protocol: one
// compiled set of its validation rules, and how a call's outcome is named
// in logs and metrics. It is internal: adapter authors never call it.
package protocol

import (
	"fmt"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/bankbridge/bankbridge/gen/apierr"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
)

// NewValidator compiles the protovalidate rules of every request and
// response of the adapter protocol up front, so that a broken rule fails at
// start-up rather than on a customer's call.
func NewValidator() (protovalidate.Validator, error) {
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

// DescribeViolations names where a message broke the rules, for operators:
// field paths and rule ids only, never values.
func DescribeViolations(err error) string {
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
