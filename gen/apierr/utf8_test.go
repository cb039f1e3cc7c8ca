package apierr_test

import (
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// TestInvalidUTF8NeverLosesADetail: a detail whose strings are not valid
// UTF-8 (a bank's bytes, a field path of a malformed request) still
// reaches the caller, the bad bytes replaced by U+FFFD: the reason, the
// field violation and the retry hint survive the round trip through the
// wire form of the status (what grpc-go sends as grpc-status-details-bin).
func TestInvalidUTF8NeverLosesADetail(t *testing.T) {
	t.Parallel()
	err := apierr.New(commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, "bad \xff request",
		apierr.WithMetadata("bank\xfe", "sand\xffbox"),
		apierr.WithFieldViolations(apierr.FieldViolation{Field: "links[0].na\xc3me", Description: "must be \xe2\x82", Reason: "string.\xffpattern"}),
		apierr.WithRetryAfter(2*time.Second))

	wire, merr := proto.Marshal(status.Convert(err).Proto())
	if merr != nil {
		t.Fatalf("the status does not marshal: %v", merr)
	}
	var back spb.Status
	if err := proto.Unmarshal(wire, &back); err != nil {
		t.Fatal(err)
	}
	got := status.FromProto(&back).Err()
	if r := apierr.Reason(got); r != commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT {
		t.Fatalf("reason = %v, want INVALID_ARGUMENT; status %v", r, &back)
	}
	if d := apierr.RetryDelay(got); d != 2*time.Second {
		t.Errorf("retry delay = %v, want 2s", d)
	}
	if msg := status.Convert(got).Message(); msg != "bad \uFFFD request" {
		t.Errorf("message = %q", msg)
	}
	if md := apierr.Info(got).GetMetadata(); md["bank\uFFFD"] != "sand\uFFFDbox" || len(md) != 1 {
		t.Errorf("metadata = %q", md)
	}
	var violations []*errdetails.BadRequest_FieldViolation
	for _, d := range status.Convert(got).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			violations = br.GetFieldViolations()
		}
	}
	if len(violations) != 1 {
		t.Fatalf("field violations = %v, want one", violations)
	}
	v := violations[0]
	if v.GetField() != "links[0].na\uFFFDme" || v.GetDescription() != "must be \uFFFD" || v.GetReason() != "string.\uFFFDpattern" {
		t.Errorf("field violation = %q %q %q", v.GetField(), v.GetDescription(), v.GetReason())
	}
}
