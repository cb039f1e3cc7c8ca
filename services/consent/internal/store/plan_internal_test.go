package store

import (
	"strings"
	"testing"

	"github.com/bankbridge/bankbridge/services/platform/events"
	"github.com/bankbridge/bankbridge/services/platform/storage"
)

// queryPlan is SQLite's plan for query on a freshly migrated consent
// store, its steps joined by "; ". The plan tests read SQLite's, as
// PostgreSQL keeps statistics and plans by them.
func queryPlan(t *testing.T, query string, args ...any) string {
	t.Helper()
	db, err := storage.Open(t.Context(), storage.SQLiteURL(t.TempDir(), "consent"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := events.Migrate(t.Context(), db); err != nil {
		t.Fatal(err)
	}
	if _, err := New(t.Context(), db, events.NewOutbox(db), nil); err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(t.Context(), `EXPLAIN QUERY PLAN `+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "; ")
}

// TestUserLinksReadsOnlyTheUsersRows pins the plan of the query every
// CheckConsent runs: a search on user_id (and bank_id), not a walk through
// every link at the bank, whose cost grows with the bank's users.
func TestUserLinksReadsOnlyTheUsersRows(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		where string
		args  []any
		want  string
	}{
		{"one bank", whereUserBank, []any{"u", "b"}, "(user_id=? AND bank_id=?)"},
		{"every bank", whereUser, []any{"u"}, "(user_id=?)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := queryPlan(t, `SELECT `+linkColumns+` FROM links `+tt.where, tt.args...)
			if !strings.HasPrefix(got, "SEARCH links USING ") || !strings.Contains(got, tt.want) {
				t.Errorf("plan = %q, want a SEARCH on %s", got, tt.want)
			}
		})
	}
}

// TestAccessByTraceUsesItsIndex pins the plan of the operator's look-up by
// trace id: a search on access_log_by_trace, not a scan of every user's
// log.
func TestAccessByTraceUsesItsIndex(t *testing.T) {
	t.Parallel()
	got := queryPlan(t, `SELECT `+accessColumns+` FROM access_log `+whereTrace, "4bf92f3577b34da6a3ce929d0e0e4736", 10)
	if !strings.HasPrefix(got, "SEARCH access_log USING INDEX access_log_by_trace (trace_id=?)") {
		t.Errorf("plan = %q, want a SEARCH using access_log_by_trace", got)
	}
}
