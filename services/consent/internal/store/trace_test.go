package store_test

import (
	"fmt"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"

	"github.com/bankbridge/bankbridge/gen/apierr"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
)

// TestLookupAccessByTrace runs the operator's look-up by trace id on
// SQLite and PostgreSQL: it finds one trace's entries across users, and
// writes the look-up into each affected user's log before answering.
func TestLookupAccessByTrace(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		st := open(t, db)
		svc := service(t, st, t0)
		const trace, other, lookupTrace = "00000000000000000000000000000abc", "00000000000000000000000000000def", "0000000000000000000000000000f00d"
		for i, user := range []string{"tb", "ta", "tb", "tc"} {
			e := entry(user, i+1)
			e.TraceID = trace
			if user == "tc" {
				e.TraceID = other
			}
			if _, err := svc.RecordAccess(t.Context(), e); err != nil {
				t.Fatal(err)
			}
		}

		got, err := st.AccessByTrace(t.Context(), trace, 100)
		if err != nil {
			t.Fatal(err)
		}
		var users []string
		for _, e := range got {
			users = append(users, e.User)
		}
		if fmt.Sprint(users) != "[tb ta tb]" {
			t.Fatalf("AccessByTrace users = %v, want [tb ta tb] (oldest first, trace %s only)", users, trace)
		}

		const method = "/bankbridge.consent.v1.ConsentOperatorService/LookupAccessByTrace"
		found, err := svc.LookupAccessByTrace(t.Context(), app.LookupByTraceInput{
			TraceID: trace, Operator: "oncall", Method: method,
			Purpose: commonv1.Purpose_PURPOSE_CUSTOMER_SUPPORT, CallTraceID: lookupTrace,
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(found) != 3 {
			t.Errorf("look-up found %d entries, want 3", len(found))
		}
		for _, user := range []string{"ta", "tb"} {
			log, err := st.AccessLog(t.Context(), user, app.AccessFilter{}, 0, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(log) != 1 || log[0].ClientID != "oncall" || log[0].Method != method ||
				log[0].Resource != "traces/"+trace || log[0].TraceID != lookupTrace {
				t.Errorf("%s's newest entry = %+v, want the operator's look-up of %s", user, log, trace)
			}
		}
		if log, err := st.AccessLog(t.Context(), "tc", app.AccessFilter{}, 0, 10); err != nil || len(log) != 1 {
			t.Errorf("tc, not in the trace, has %d entries (%v), want its own 1", len(log), err)
		}
		if err := svc.VerifyAllChains(t.Context()); err != nil {
			t.Errorf("chains after the look-up: %v", err)
		}

		tests := []struct {
			name, trace string
			reason      commonv1.ErrorReason
		}{
			{"unknown trace", "0000000000000000000000000000beef", commonv1.ErrorReason_ERROR_REASON_NOT_FOUND},
			{"upper case", "00000000000000000000000000000ABC", commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT},
			{"all zero", "00000000000000000000000000000000", commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT},
			{"too short", "abc", commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := svc.LookupAccessByTrace(t.Context(), app.LookupByTraceInput{TraceID: tt.trace, Operator: "oncall", Method: method})
				if got := apierr.Reason(err); got != tt.reason {
					t.Fatalf("reason = %v (%v), want %v", got, err, tt.reason)
				}
				if tt.reason == commonv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT {
					if f := violatedFields(err); fmt.Sprint(f) != "[trace_id]" {
						t.Errorf("field violations = %v, want [trace_id]", f)
					}
				}
			})
		}
	})
}

// violatedFields lists the field paths of err's BadRequest detail.
func violatedFields(err error) []string {
	var out []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out = append(out, v.GetField())
			}
		}
	}
	return out
}
