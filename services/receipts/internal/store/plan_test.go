package store_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/receipts/internal/app"
	"github.com/bankbridge/bankbridge/services/receipts/internal/receiptpb"
	"github.com/bankbridge/bankbridge/services/receipts/internal/store"
)

// fill gives user n receipts, one a minute, straight into the table: the
// plan test needs many rows fast, not the ingest's checks.
func fill(t testing.TB, db *storage.DB, user string, n int) {
	t.Helper()
	ctx := t.Context()
	c := content("Nordic Outdoor Online", t0, 59_99)
	blob, err := receiptpb.MarshalContent(c)
	if err != nil {
		t.Fatal(err)
	}
	// One statement makes the rows inside the database: a recursive count.
	_, err = db.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT CAST(0 AS BIGINT) UNION ALL SELECT i + 1 FROM n WHERE i + 1 < CAST($1 AS BIGINT))
		INSERT INTO receipts (user_id, receipt_id, chain_id, version, partner, partner_receipt_id, client_id,
			merchant_key, purchase_time, content, content_hash, create_time)
		SELECT CAST($2 AS TEXT), CAST($2 AS TEXT) || '-' || i, CAST($2 AS TEXT) || '-' || i, 1, 'shop', 'P' || i, 'chat-app',
			CAST($3 AS TEXT), CAST($4 AS BIGINT) + i * 60000000, $5, 'h', CAST($4 AS BIGINT) FROM n`,
		n, user, app.MerchantKey(c.MerchantName), storage.Micros(t0), blob)
	if err != nil {
		t.Fatal(err)
	}
}

// TestListPageIsAnIndexScan checks the plan of a page of a user with
// 10,000 receipts: read backwards along an index, with no sort and no
// scan of the table.
func TestListPageIsAnIndexScan(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		open(t, db)
		fill(t, db, "heavy", 10_000)
		for _, u := range []string{"light-a", "light-b"} {
			fill(t, db, u, 300)
		}
		if db.Dialect() == storage.Postgres {
			if _, err := db.ExecContext(t.Context(), "ANALYZE receipts"); err != nil {
				t.Fatal(err)
			}
		}
		after := &pagetoken.Position{Time: t0.Add(5000 * time.Minute), ID: "heavy-5000"}
		tests := []struct {
			name  string
			f     app.Filter
			index string
		}{
			{"first page", app.Filter{}, "receipts_by_purchase"},
			{"merchant", app.Filter{MerchantKey: app.MerchantKey("Nordic Outdoor")}, "receipts_by_"},
			{"window", app.Filter{Start: t0, End: t0.Add(time.Hour)}, "receipts_by_purchase"},
		}
		for _, tt := range tests {
			for _, pos := range []*pagetoken.Position{nil, after} {
				t.Run(fmt.Sprintf("%s after %v", tt.name, pos != nil), func(t *testing.T) {
					q, args := store.ListQuery("heavy", tt.f, pos, 26)
					plan := explain(t, db, q, args...)
					if !strings.Contains(plan, tt.index) || !strings.Contains(plan, "receipts_by_amends") {
						t.Errorf("the page is not read along %s (and receipts_by_amends):\n%s", tt.index, plan)
					}
					for _, bad := range []string{"TEMP B-TREE", "Sort", "Seq Scan", "SCAN r\n", "SCAN n\n"} {
						if strings.Contains(plan+"\n", bad) {
							t.Errorf("the plan has %q:\n%s", bad, plan)
						}
					}
				})
			}
		}
	})
}

func explain(t *testing.T, db *storage.DB, q string, args ...any) string {
	t.Helper()
	prefix, col := "EXPLAIN ", 0
	if db.Dialect() == storage.SQLite {
		prefix, col = "EXPLAIN QUERY PLAN ", 3
	}
	rows, err := db.QueryContext(t.Context(), prefix+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var lines []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprint(vals[col]))
	}
	return strings.Join(lines, "\n")
}
