package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/bankbridge/bankbridge/services/platform/testkit"
)

// TestAccessLog: every request is one JSON line with its trace id (the one
// the response's X-Trace-Id names), the route template rather than the
// path, the method, the status, an error's reason and the duration; never
// the user or the account the path names.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	logs := &testkit.SyncBuffer{}
	f := startLogged(t, true, logs)
	alice := f.token(t, "alice")
	tests := []struct {
		name, path, token string
		status            int
		route, reason     string
	}{
		{"a balance", "/v1/users/alice/accounts/sandbox~a1/balance", alice, http.StatusOK, "/v1/users/{user}/accounts/{account}/balance", ""},
		{"refused", "/v1/users/alice/accounts/sandbox~a1/balance", "", http.StatusUnauthorized, "/v1/users/{user}/accounts/{account}/balance", "TOKEN_INVALID"},
		{"a list", "/v1/users/alice/accounts", alice, http.StatusOK, "/v1/users/{user}/accounts", ""},
		{"no route", "/v1/users/alice/nothing", alice, http.StatusNotFound, "/v1/", "NOT_FOUND"},
		{"outside the REST mux", "/openapi.json", "", http.StatusOK, "/openapi.json", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := do(t, http.MethodGet, f.url+tt.path, tt.token, "ACCOUNT_INFORMATION", nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			trace := resp.Header.Get("X-Trace-Id")
			line := accessLine(t, logs.String(), trace)
			if line["route"] != tt.route || line["method"] != "GET" || line["status"] != float64(tt.status) || line["duration_ms"] == nil {
				t.Errorf("access line %v; want route %s, GET, status %d, a duration", line, tt.route, tt.status)
			}
			if got, _ := line["reason"].(string); got != tt.reason {
				t.Errorf("reason %q, want %q", got, tt.reason)
			}
			raw, _ := json.Marshal(line)
			if strings.Contains(string(raw), "alice") || strings.Contains(string(raw), "sandbox~a1") {
				t.Errorf("the access line names the user or the account: %s", raw)
			}
		})
	}
}

// accessLine finds the access line of trace in logs.
func accessLine(t *testing.T, logs, trace string) map[string]any {
	t.Helper()
	for l := range strings.SplitSeq(logs, "\n") {
		var line map[string]any
		if json.Unmarshal([]byte(l), &line) == nil && line["msg"] == "access" && line["trace_id"] == trace {
			return line
		}
	}
	t.Fatalf("no access line with trace id %q in:\n%s", trace, logs)
	return nil
}

func TestRouteTemplate(t *testing.T) {
	t.Parallel()
	tests := []struct{ pattern, want string }{
		{"/v1/{name=users/*/accounts/*}/balance", "/v1/users/{user}/accounts/{account}/balance"},
		{"/v1/{parent=users/*}/accounts", "/v1/users/{user}/accounts"},
		{"/v1/{name=users/*/links/*}:verify", "/v1/users/{user}/links/{link}:verify"},
		{"/v1/{parent=users/*}/fraudReports", "/v1/users/{user}/fraudReports"},
		{"/v1/{name=users/*/deliveries/*}", "/v1/users/{user}/deliveries/{delivery}"},
		{"/v1/clients/{client}/receipts:ingest", "/v1/clients/{client}/receipts:ingest"},
		{"/v1/{name=*}", "/v1/{name}"},
	}
	for _, tt := range tests {
		if got := routeTemplate(tt.pattern); got != tt.want {
			t.Errorf("routeTemplate(%q) = %q, want %q", tt.pattern, got, tt.want)
		}
	}
}
