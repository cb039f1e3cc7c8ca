package server_test

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
)

func TestPanicAnswersInternalWithIncidentID(t *testing.T) {
	t.Parallel()
	e := startExample(t, exampleOpts{})
	_, err := e.balance.GetAccount(e.as(t, "alice"), getAccount("users/alice/accounts/sandbox~panic"))
	st := wantError(t, err, codes.Internal, "INTERNAL")
	id := errorInfo(st).GetMetadata()["incident_id"]
	if id == "" {
		t.Fatal("no incident_id in ErrorInfo.metadata")
	}
	reply := st.String() + st.Message()
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
	st := wantError(t, err, codes.Internal, "INTERNAL")
	if strings.Contains(st.Message(), "hunter2") {
		t.Errorf("reply %q leaks the error text", st.Message())
	}
	if id := errorInfo(st).GetMetadata()["incident_id"]; !strings.Contains(e.logs.String(), id) {
		t.Errorf("incident %s not logged", id)
	}
}
