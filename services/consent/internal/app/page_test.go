package app_test

import (
	"slices"
	"testing"
	"time"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/consent/internal/store"
	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// withTokens is a service whose page tokens run on clk.
func withTokens(t *testing.T, clk *testkit.Clock) *app.Service {
	t.Helper()
	st, err := store.New(t.Context(), storagetest.OpenSQLite(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := pagetoken.New([]byte("0123456789abcdef0123456789abcdef"), pagetoken.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := app.New(st, newFakeBank(), app.Config{Now: clk.Now, PageTokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	return svc
}

func requirePageTokenInvalid(t *testing.T, err error) {
	t.Helper()
	testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_PAGE_TOKEN_INVALID)
	testkit.RequireFieldViolation(t, err, "page_token")
}

func TestListLinksTokenIsBoundToItsUser(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for range 3 {
		f.create(t, "alice")
		f.create(t, "bob")
		f.clock.Add(time.Second)
	}
	_, next, err := f.svc.ListLinks(t.Context(), app.ListLinksInput{User: "alice", PageSize: 1})
	if err != nil || next == "" {
		t.Fatalf("first page: next %q, %v", next, err)
	}
	_, _, err = f.svc.ListLinks(t.Context(), app.ListLinksInput{User: "bob", PageSize: 1, PageToken: next})
	requirePageTokenInvalid(t, err)
}

func TestAccessLogPaging(t *testing.T) {
	t.Parallel()
	clk := testkit.NewClock(time.Now().UTC())
	svc := withTokens(t, clk)
	for i := range 5 {
		e := app.AccessEntry{User: "alice", ClientID: "chat-app", Method: "/m", Resource: "users/alice", Outcome: app.OutcomeAllowed}
		if i%2 == 1 {
			e.Outcome, e.Reason = app.OutcomeDenied, "CONSENT_REQUIRED"
		}
		if _, err := svc.RecordAccess(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}

	var seqs []int64
	token := ""
	for {
		page, next, err := svc.ListAccessLog(t.Context(), app.ListAccessLogInput{User: "alice", PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			seqs = append(seqs, e.Sequence)
		}
		if token = next; token == "" {
			break
		}
	}
	if want := []int64{5, 4, 3, 2, 1}; !slices.Equal(seqs, want) {
		t.Errorf("pages gave sequences %v, want %v", seqs, want)
	}

	_, next, err := svc.ListAccessLog(t.Context(), app.ListAccessLogInput{User: "alice", PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("refuses a token with other filters", func(t *testing.T) {
		_, _, err := svc.ListAccessLog(t.Context(), app.ListAccessLogInput{User: "alice", PageToken: next, Filter: app.AccessFilter{Outcome: app.OutcomeDenied}})
		requirePageTokenInvalid(t, err)
	})
	t.Run("refuses another user's token", func(t *testing.T) {
		_, _, err := svc.ListAccessLog(t.Context(), app.ListAccessLogInput{User: "bob", PageToken: next})
		requirePageTokenInvalid(t, err)
	})
	t.Run("refuses an expired token", func(t *testing.T) {
		clk.Add(pagetoken.TTL)
		_, _, err := svc.ListAccessLog(t.Context(), app.ListAccessLogInput{User: "alice", PageToken: next})
		requirePageTokenInvalid(t, err)
	})
}
