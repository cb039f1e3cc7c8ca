package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// TestWhatGRPCGatewayCannotDecode holds the answers FuzzREST found wrong
// (decode.go) to what a caller sees: each a 4xx with a reason, never a
// 5xx, a dropped header or a reason-less body.
func TestWhatGRPCGatewayCannotDecode(t *testing.T) {
	t.Parallel()
	h, be := fuzzGateway(t)
	tests := []struct {
		name, method, target, body, purpose string
		status                              int
		reason                              string
		// violations are "field reason" of the BadRequest.
		violations []string
	}{
		{"a path variable that is no UTF-8", http.MethodGet, "/v1/users/%FF/accounts", "", "ACCOUNT_INFORMATION",
			http.StatusBadRequest, "INVALID_ARGUMENT", []string{"parent string.utf8"}},
		{"a query value that is no UTF-8", http.MethodGet, "/v1/users/alice/accounts?bank_id=%C3%28", "", "ACCOUNT_INFORMATION",
			http.StatusBadRequest, "INVALID_ARGUMENT", []string{"bank_id string.utf8"}},
		{"a query name that is no UTF-8", http.MethodGet, "/v1/users/alice/accounts?%FFx=1", "", "ACCOUNT_INFORMATION",
			http.StatusBadRequest, "INVALID_ARGUMENT", []string{"\uFFFDx string.utf8"}},
		{"a long unknown parameter cut inside a character", http.MethodGet, "/v1/users/alice/accounts?" + strings.Repeat("a", 63) + "%C3%A9=1", "", "ACCOUNT_INFORMATION",
			http.StatusBadRequest, "INVALID_ARGUMENT", []string{strings.Repeat("a", 63) + "... query_parameter.unknown"}},
		{"a purpose that is no ASCII", http.MethodGet, "/v1/users/alice/accounts", "", "ACCOUNT_INFORMATIÖN",
			http.StatusBadRequest, "INVALID_ARGUMENT", nil},
		{"a method the path does not take", http.MethodDelete, "/v1/users/alice/accounts", "", "ACCOUNT_INFORMATION",
			http.StatusNotFound, "NOT_FOUND", nil},
		{"a method no route takes", "PURGE", "/v1/users/alice/accounts", "", "ACCOUNT_INFORMATION",
			http.StatusNotFound, "NOT_FOUND", nil},
		{"no route", http.MethodGet, "/v1/nothing/here", "", "ACCOUNT_INFORMATION",
			http.StatusNotFound, "NOT_FOUND", nil},
		{"a body that is no JSON", http.MethodPost, "/v1/users/alice/links", `{"bank_id":`, "CONSENT_MANAGEMENT",
			http.StatusBadRequest, "INVALID_ARGUMENT", nil},
		{"a query value of the wrong type", http.MethodGet, "/v1/users/alice/accounts?page_size=abc", "", "ACCOUNT_INFORMATION",
			http.StatusBadRequest, "INVALID_ARGUMENT", nil},
		{"a valid call", http.MethodGet, "/v1/users/alice/accounts?page_size=3", "", "ACCOUNT_INFORMATION",
			http.StatusOK, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := wireRequest(tt.method, tt.target, tt.purpose, "idem-0001", []byte(tt.body))
			if !ok {
				t.Fatalf("%s %s is no request", tt.method, tt.target)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			var body map[string]any
			_ = json.Unmarshal(w.Body.Bytes(), &body)
			if w.Code != tt.status || reason(body) != tt.reason {
				t.Fatalf("status %d, reason %q; want %d %q; body %s", w.Code, reason(body), tt.status, tt.reason, w.Body)
			}
			if got := violations(body); !slices.Equal(got, tt.violations) {
				t.Errorf("field violations %q, want %q", got, tt.violations)
			}
			if strings.Contains(tt.purpose, "Ö") && (strings.Contains(w.Body.String(), "ÖN") || !strings.Contains(w.Body.String(), `"header":"Bankbridge-Purpose"`)) {
				t.Errorf("the refusal should name the header, never its value: %s", w.Body)
			}
		})
	}
	t.Run("the bearer token reaches the service once", func(t *testing.T) {
		r, _ := wireRequest(http.MethodGet, "/v1/users/alice/accounts", "ACCOUNT_INFORMATION", "idem-0001", nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if got := be.md.Load().Get("authorization"); w.Code != http.StatusOK || !slices.Equal(got, []string{"Bearer fuzz"}) {
			t.Errorf("status %d, the service got authorization %q; want 200 and it once", w.Code, got)
		}
	})
}
