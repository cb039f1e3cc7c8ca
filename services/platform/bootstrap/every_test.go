package bootstrap_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// A periodic task runs at once and then at every tick; a failed run is
// logged with an incident id and tried again, a run that did something is
// logged with its count, and the task ends with its ctx.
func TestPeriodic(t *testing.T) {
	t.Parallel()
	var logs testkit.SyncBuffer
	results := []struct {
		n   int
		err error
	}{{0, errors.New("database gone")}, {3, nil}, {0, nil}}
	ran := make(chan int, 10)
	runs := 0
	ctx, cancel := context.WithCancel(t.Context())
	p := bootstrap.Periodic{
		What: "test sweep", Every: 10 * time.Millisecond, Done: "things swept", Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		Run: func(context.Context) (int, error) {
			r := results[min(runs, len(results)-1)]
			runs++
			ran <- runs
			return r.n, r.err
		},
	}
	done := make(chan error, 1)
	go func() { done <- p.Task(ctx) }()
	for n := range ran {
		if n == len(results) {
			break
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Task = %v, want nil once its ctx ends", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the task did not end with its ctx")
	}
	got := logs.String()
	if !strings.Contains(got, `"msg":"test sweep failed; retrying at the next tick"`) || !strings.Contains(got, `"bankbridge.incident_id":`) ||
		!strings.Contains(got, "database gone") {
		t.Errorf("logs = %s, want the failure with an incident id", got)
	}
	if strings.Count(got, `"msg":"things swept"`) != 1 || !strings.Contains(got, `"bankbridge.count":3`) {
		t.Errorf("logs = %s, want the one run that swept something, with its count", got)
	}
}
