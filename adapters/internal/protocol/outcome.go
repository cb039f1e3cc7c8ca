package protocol

import (
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// Outcome names a call's result for metrics, logs and /banks: "ok", the
// ErrorReason without its ERROR_REASON_ prefix, or for an error without
// one (the caller cancelled, its deadline passed) the gRPC code in the
// same upper-case style.
func Outcome(err error) string {
	if err == nil {
		return "ok"
	}
	if r := apierr.Reason(err); r != commonv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
		return strings.TrimPrefix(r.String(), "ERROR_REASON_")
	}
	return CodeName(status.Code(err))
}

// CodeName is a gRPC code as the protocol spells it (DEADLINE_EXCEEDED).
func CodeName(c codes.Code) string {
	switch c {
	case codes.Canceled:
		return "CANCELLED"
	case codes.DeadlineExceeded:
		return "DEADLINE_EXCEEDED"
	case codes.Unavailable:
		return "UNAVAILABLE"
	case codes.Internal:
		return "INTERNAL"
	}
	var b strings.Builder
	for i, r := range c.String() {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}

// Failed says whether err counts against the bank on /banks: the bank (or
// bankbridge's protection of it: breaker, bulkhead, rate limit) did not
// serve the call; business answers such as NOT_FOUND do not count.
func Failed(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Internal, codes.Unknown, codes.DataLoss, codes.ResourceExhausted:
		return true
	}
	return apierr.Is(err, commonv1.ErrorReason_ERROR_REASON_CREDENTIALS_REJECTED)
}
