package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestDevTokens: the dev issuer mints a token that lives expires_in
// seconds (an hour by default), so a product can try what it does when
// one expires; and refuses a bad request the way every gateway error is
// written, with a reason and the field at fault.
func TestDevTokens(t *testing.T) {
	t.Parallel()
	f := start(t, true)
	tests := []struct {
		name, body string
		status     int
		reason     string
		field      string
		lifetime   float64
	}{
		{"an hour by default", `{"user":"alice"}`, http.StatusOK, "", "", 3600},
		{"a short one", `{"user":"alice","expires_in":5}`, http.StatusOK, "", "", 5},
		{"the client's own", `{"client_credentials":true,"expires_in":60}`, http.StatusOK, "", "", 60},
		{"longer than an hour", `{"user":"alice","expires_in":3601}`, http.StatusBadRequest, "INVALID_ARGUMENT", "expires_in", 0},
		{"a negative lifetime", `{"user":"alice","expires_in":-1}`, http.StatusBadRequest, "INVALID_ARGUMENT", "expires_in", 0},
		{"no user", `{}`, http.StatusBadRequest, "INVALID_ARGUMENT", "user", 0},
		{"a user with a slash", `{"user":"a/b"}`, http.StatusBadRequest, "INVALID_ARGUMENT", "user", 0},
		{"user and client_credentials", `{"user":"alice","client_credentials":true}`, http.StatusBadRequest, "INVALID_ARGUMENT", "user", 0},
		{"an unknown field", `{"user":"alice","ttl":5}`, http.StatusBadRequest, "INVALID_ARGUMENT", "", 0},
		{"no JSON", `user=alice`, http.StatusBadRequest, "INVALID_ARGUMENT", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, http.MethodPost, f.url+"/v1/dev/tokens", "", "", []byte(tt.body))
			if resp.StatusCode != tt.status || reason(body) != tt.reason {
				t.Fatalf("got %d %q, want %d %q; body %s", resp.StatusCode, reason(body), tt.status, tt.reason, mustJSON(body))
			}
			if tt.field != "" && !strings.Contains(mustJSON(body), `"field":"`+tt.field+`"`) {
				t.Errorf("no field violation naming %s in %s", tt.field, mustJSON(body))
			}
			if tt.status != http.StatusOK {
				return
			}
			if got, _ := body["expires_in"].(float64); got != tt.lifetime {
				t.Errorf("expires_in = %v, want %v", body["expires_in"], tt.lifetime)
			}
			tok, _ := body["access_token"].(string)
			if exp, iat := claims(t, tok); exp-iat != tt.lifetime {
				t.Errorf("token lives exp-iat = %v s, want %v", exp-iat, tt.lifetime)
			}
		})
	}
	t.Run("outside dev mode", func(t *testing.T) {
		resp, body := do(t, http.MethodPost, start(t, false).url+"/v1/dev/tokens", "", "", []byte(`{"user":"alice"}`))
		if resp.StatusCode != http.StatusNotFound || reason(body) != "NOT_FOUND" {
			t.Errorf("got %d %q, want 404 NOT_FOUND", resp.StatusCode, reason(body))
		}
	})
}

// TestDevOperatorToken: {"operator": true} mints the dev operator client's
// own token (sub and azp the operator client, as a client credentials
// grant gives it), which operator methods take; with a user or
// client_credentials it is refused, naming the operator field.
func TestDevOperatorToken(t *testing.T) {
	t.Parallel()
	f := start(t, true)
	resp, body := do(t, http.MethodPost, f.url+"/v1/dev/tokens", "", "", []byte(`{"operator":true}`))
	if resp.StatusCode != http.StatusOK || body["client_id"] != "dev-oncall" {
		t.Fatalf("got %d %s, want 200 for client dev-oncall", resp.StatusCode, mustJSON(body))
	}
	tok, _ := body["access_token"].(string)
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Sub, Azp string }
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	if c.Sub != "dev-oncall" || c.Azp != "dev-oncall" {
		t.Errorf("sub %q azp %q, want both dev-oncall", c.Sub, c.Azp)
	}
	for _, req := range []string{`{"operator":true,"user":"alice"}`, `{"operator":true,"client_credentials":true}`} {
		resp, body := do(t, http.MethodPost, f.url+"/v1/dev/tokens", "", "", []byte(req))
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(mustJSON(body), `"field":"operator"`) {
			t.Errorf("%s: got %d %s, want 400 naming operator", req, resp.StatusCode, mustJSON(body))
		}
	}
}

// claims reads a JWT's exp and iat, unverified: the issuer's own tests
// verify its signatures.
func claims(t *testing.T, tok string) (exp, iat float64) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Exp, Iat float64 }
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c.Exp, c.Iat
}
