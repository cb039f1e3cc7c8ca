package server_test

import (
	"strings"
	"testing"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

func TestPanicAnswersInternalWithIncidentID(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	_, err := e.balance.GetAccount(e.as(t, "alice"), getAccount("users/alice/accounts/sandbox~panic"))
	id := testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_INTERNAL)["incident_id"]
	if id == "" {
		t.Fatal("no incident_id in ErrorInfo.metadata")
	}
	reply := err.Error()
	for _, leak := range []string{"boom", "4111", "goroutine", ".go:"} {
		if strings.Contains(reply, leak) {
			t.Errorf("reply %q leaks %q", reply, leak)
		}
	}
	logs := e.logs.String()
	if !strings.Contains(logs, id) || !strings.Contains(logs, "panic in handler") || !strings.Contains(logs, "example_test.go") {
		t.Errorf("logs do not record the panic and its stack under incident %s:\n%s", id, logs)
	}
}

func TestUnexpectedErrorsAreMasked(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	_, err := e.balance.GetAccount(e.as(t, "alice"), getAccount("users/alice/accounts/sandbox~plainerr"))
	md := testkit.RequireReason(t, err, commonv1.ErrorReason_ERROR_REASON_INTERNAL)
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("reply %q leaks the error text", err)
	}
	if id := md["incident_id"]; !strings.Contains(e.logs.String(), id) {
		t.Errorf("incident %s not logged", id)
	}
}
