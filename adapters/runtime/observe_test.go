package runtime_test

import (
	"encoding/json"
	"github.com/bankbridge/bankbridge/adapters/internal/adaptertest"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/bankbridge/bankbridge/adapters/runtime"
)

// calls returns the bankbridge.adapter.calls counter's value per outcome
// for bank "test" and method ListAccounts, and the histogram's count.
func (r metricReader) calls(t *testing.T) (counted map[string]int64, timed map[string]uint64) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	counted, timed = map[string]int64{}, map[string]uint64{}
	ours := func(s attribute.Set) (string, bool) {
		bank, _ := s.Value("bank_id")
		method, _ := s.Value("method")
		outcome, _ := s.Value("outcome")
		return outcome.AsString(), bank.AsString() == "test" && method.AsString() == "ListAccounts"
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch m.Name {
			case "bankbridge.adapter.calls":
				for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
					if o, ok := ours(dp.Attributes); ok {
						counted[o] += dp.Value
					}
				}
			case "bankbridge.adapter.duration":
				if m.Unit != "s" {
					t.Errorf("duration unit %q, want s", m.Unit)
				}
				for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
					if o, ok := ours(dp.Attributes); ok {
						timed[o] += dp.Count
					}
				}
			}
		}
	}
	return counted, timed
}

// TestRegistryCountsEveryCallByBankAndOutcome: every call is counted and
// timed under bank_id, method and outcome, the breaker's refusals too
// (with their reason), and /banks shows the breaker open with the last
// error's reason and the recent error rate, as JSON and as text.
func TestRegistryCountsEveryCallByBankAndOutcome(t *testing.T) {
	t.Parallel()
	a := newFaultBank()
	a.fail = func(n int) bool { return n >= 2 } // two answers, then the bank is down
	reader := newMetricReader()
	var logs adaptertest.SyncBuffer
	bank := runtime.Bank{ID: "test", DisplayName: "Test Bank", Kind: runtime.KindInProcess, InProcess: "fault",
		Retry: runtime.Retry{Disabled: true}, RateLimit: runtime.RateLimit{PerSecond: 10_000, Burst: 10_000},
		Breaker: runtime.Breaker{MinRequests: 10, FailureRatio: 0.5}}
	reg := adaptertest.NewRegistry(t, []runtime.Bank{bank}, runtime.WithInProcess("fault", a), reader.option(),
		runtime.WithRegistryLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	c := adaptertest.Client(t, reg, "test")

	for range 15 {
		_ = listAccounts(t.Context(), c)
	}
	reached := a.callsOf("ListAccounts")
	counted, timed := reader.calls(t)
	if counted["ok"] != 2 || counted["BANK_UNAVAILABLE"] != 13 {
		t.Errorf("counted %v, want ok 2 and BANK_UNAVAILABLE 13 (the bank's %d failures and the open breaker's refusals)", counted, reached-2)
	}
	if timed["ok"] != 2 || timed["BANK_UNAVAILABLE"] != 13 {
		t.Errorf("timed %v, want the same counts as the counter", timed)
	}
	if reached == 15 {
		t.Error("every call reached the bank: the breaker never opened")
	}

	health := reg.Health()
	if len(health) != 1 {
		t.Fatalf("Health() = %+v, want one bank", health)
	}
	h := health[0]
	if h.BankID != "test" || h.Breaker != runtime.BreakerOpen || h.BreakerValue != 2 || h.LastErrorReason != "BANK_UNAVAILABLE" ||
		h.RecentCalls != 15 || h.RecentErrors != 13 || h.LastSuccess == nil || h.LastError == nil {
		t.Errorf("Health() = %+v, want test open, 13 of 15 recent calls failed, last error BANK_UNAVAILABLE", h)
	}

	rec := httptest.NewRecorder()
	reg.BanksHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/banks", nil))
	var page struct {
		Banks []runtime.BankHealth `json:"banks"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || len(page.Banks) != 1 || page.Banks[0].Breaker != "open" {
		t.Errorf("/banks JSON: %v %s", err, rec.Body)
	}
	rec = httptest.NewRecorder()
	reg.BanksHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/banks?format=text", nil))
	if !regexp.MustCompile(`(?m)^test\s+open\s+86\.7% of 15\s.*BANK_UNAVAILABLE$`).MatchString(rec.Body.String()) {
		t.Errorf("/banks text:\n%s", rec.Body)
	}

	// Each failure is one WARN line naming the bank, the reason and the
	// breaker's state, never the bank's words ("bank down").
	var warned, open int
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var l map[string]any
		if json.Unmarshal([]byte(line), &l) != nil || l["msg"] != "bank call failed" {
			continue
		}
		warned++
		if l["level"] != "WARN" || l["bank_id"] != "test" || l["reason"] != "BANK_UNAVAILABLE" || l["method"] != "ListAccounts" {
			t.Errorf("failed-call line %v", l)
		}
		if l["breaker_state"] == "open" {
			open++
		}
	}
	if warned != 13 || open == 0 {
		t.Errorf("%d failed-call lines (%d with the breaker open), want 13, some open", warned, open)
	}
	if strings.Contains(logs.String(), "bank down") {
		t.Error("the bank's error text is in the log")
	}
}
