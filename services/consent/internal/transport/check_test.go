package transport

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc/status"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	consentv1 "github.com/bankbridge/bankbridge/gen/bankbridge/consent/v1"
	"github.com/bankbridge/bankbridge/services/consent/internal/app"
	"github.com/bankbridge/bankbridge/services/consent/internal/store"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// brokenLog is a store whose access log cannot be written.
type brokenLog struct{ *store.Store }

func (brokenLog) AppendAccess(context.Context, []string, func(map[string]app.ChainHead) ([]app.AccessEntry, map[string]app.HeadSignature, error)) error {
	return errors.New("disk I/O error at /var/lib/bankbridge/consent.db")
}

func TestRecordAccessMasksAFailedAppend(t *testing.T) {
	t.Parallel()
	st, err := store.New(t.Context(), storagetest.OpenSQLite(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(brokenLog{st}, nil, app.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var logs bytes.Buffer
	s := NewCheckServer(a, slog.New(slog.NewTextHandler(&logs, nil)), nil)
	_, err = s.RecordAccess(t.Context(), &consentv1.RecordAccessRequest{User: "users/alice", Entry: &consentv1.AccessLogEntry{
		ClientId: "chat-app", Method: "/bankbridge.balance.v1.BalanceService/GetBalance", Resource: "users/alice/accounts/a1/balance",
		Purpose: commonv1.Purpose_PURPOSE_ACCOUNT_INFORMATION, Scope: commonv1.Scope_SCOPE_BALANCES,
		Outcome: consentv1.AccessOutcome_ACCESS_OUTCOME_ALLOWED,
	}})
	id := testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_INTERNAL)["incident_id"]
	if id == "" || !strings.Contains(logs.String(), id) {
		t.Errorf("incident id %q not in the log:\n%s", id, logs.String())
	}
	if strings.Contains(status.Convert(err).Message(), "disk") {
		t.Errorf("the cause reached the caller: %v", err)
	}
}
