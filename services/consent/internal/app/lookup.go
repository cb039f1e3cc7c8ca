package app

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/telemetry"
)

// MaxTraceLookup is the most entries one look-up by trace id returns: a
// trace is one call and its fan-out, a few entries; more means a bug or a
// replayed trace id, and the first ones are what on-call needs.
const MaxTraceLookup = 500

// LookupByTraceInput is what LookupAccessByTrace needs: the trace looked
// up, and who looks it up, as the look-up's own access-log entries record
// it.
type LookupByTraceInput struct {
	// TraceID is the trace looked up: 32 lowercase hex digits, not all zero.
	TraceID string
	// Operator is the operator client's id, the entries' client_id.
	Operator string
	// SubjectID is the pseudonymous id of the operator token's subject.
	SubjectID string
	// Method is the look-up's own full gRPC method name.
	Method string
	// Purpose is the purpose the look-up's entries record.
	Purpose commonv1.Purpose
	// CallTraceID is the look-up call's own trace id; empty when untraced.
	CallTraceID string
}

// LookupAccessByTrace returns the access-log entries, of any user, recorded
// under in.TraceID, oldest first. Before it returns them it appends, to the
// log of each user they concern, one entry saying that in.Operator looked
// up the trace (resource traces/{trace_id}): audit before data, as for
// every access. When one of those entries cannot be appended nothing is
// returned (AUDIT_UNAVAILABLE). An unknown trace is NOT_FOUND and touches no log.
func (s *Service) LookupAccessByTrace(ctx context.Context, in LookupByTraceInput) ([]AccessEntry, error) {
	if !isLowerHex(in.TraceID, traceIDLen) || strings.Trim(in.TraceID, "0") == "" {
		return nil, invalid("trace_id", "must be 32 lowercase hex digits, not all zero", "string.pattern")
	}
	found, err := s.store.AccessByTrace(ctx, in.TraceID, MaxTraceLookup)
	if err != nil {
		return nil, fmt.Errorf("look up access by trace: %w", err)
	}
	if len(found) == 0 {
		return nil, apierr.New(commonv1.ErrorReason_ERROR_REASON_NOT_FOUND, "no access-log entry carries this trace id")
	}
	seen := map[string]bool{}
	for _, e := range found {
		if seen[e.User] {
			continue
		}
		seen[e.User] = true
		_, err := s.RecordAccess(ctx, AccessEntry{
			User: e.User, ClientID: in.Operator, SubjectID: in.SubjectID, Method: in.Method,
			Resource: TraceResource(in.TraceID), Purpose: in.Purpose, Outcome: OutcomeAllowed, TraceID: in.CallTraceID,
		})
		if err != nil {
			return nil, s.lookupNotRecorded(ctx, err)
		}
	}
	return found, nil
}

// lookupNotRecorded is the answer when a look-up could not be written to
// an affected user's log: nothing is returned, as for any access that
// cannot be recorded, and the cause is logged under the incident id.
func (s *Service) lookupNotRecorded(ctx context.Context, err error) error {
	id := apierr.IncidentID()
	s.log.ErrorContext(ctx, "operator look-up not recorded; refusing to answer",
		slog.String(telemetry.AttrIncidentID, id), slog.String("error", err.Error()))
	return apierr.New(commonv1.ErrorReason_ERROR_REASON_AUDIT_UNAVAILABLE,
		"the look-up could not be recorded in the affected users' access logs, so nothing was returned; retry shortly",
		apierr.WithMetadata("incident_id", id), apierr.WithRetryAfter(time.Second))
}

// TraceResource is the resource an operator's look-up of traceID records
// in the affected users' access logs.
func TraceResource(traceID string) string { return "traces/" + traceID }

// ResourceKind is the kind of an entry's resource ("balance", "link", ...),
// never its name: what an operator may see of it. A look-up's own entry is
// "trace".
func ResourceKind(resource string) string {
	if strings.HasPrefix(resource, "traces/") {
		return "trace"
	}
	return names.KindOf(resource)
}
