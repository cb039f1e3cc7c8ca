package e2e

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// TestWhatAChatShowsOverREST reads, over REST through the whole stack,
// the fields a chat needs to show a balance and recent transactions
// without guessing (issue 19): the one balance marked display, a date
// (transaction_time) on every pending transaction, and, once the user
// revoked their only link, ListAccounts' refusal with the reason the chat
// turns into "link your bank again" (CONSENT_REVOKED from the real consent
// service, not an empty list).
func TestWhatAChatShowsOverREST(t *testing.T) {
	const (
		user     = "showme"
		checking = "users/" + user + "/accounts/sandbox~acc-alice-checking"
		info     = "ACCOUNT_INFORMATION"
	)
	tok := devToken(t, user)
	link := linkLogin(t, tok, user, "alice") // as the sandbox's alice

	t.Run("the balance to show", func(t *testing.T) {
		r := call(t, http.MethodGet, "/v1/"+checking+"/balance", tok, info, nil)
		r.want(t, http.StatusOK, "")
		var got struct {
			Balance struct {
				Balances []struct {
					Type    string `json:"type"`
					Display *bool  `json:"display"`
					Amount  struct {
						Units string `json:"units"`
						Nanos int32  `json:"nanos"`
					} `json:"amount"`
				} `json:"balances"`
			} `json:"balance"`
		}
		if err := json.Unmarshal([]byte(r.raw), &got); err != nil {
			t.Fatal(err)
		}
		var shown []string
		for _, b := range got.Balance.Balances {
			if b.Display != nil && *b.Display {
				shown = append(shown, b.Type)
				// The sandbox's alice: EUR 1,951.60 booked, 64.49 pending.
				if b.Type != "BALANCE_TYPE_EXPECTED" || b.Amount.Units != "1887" || b.Amount.Nanos != 110000000 {
					t.Errorf("display on %s %s.%09d, want EXPECTED 1887.11 (her own money, not the overdraft)", b.Type, b.Amount.Units, b.Amount.Nanos)
				}
			}
		}
		if len(shown) != 1 {
			t.Errorf("display on %v, want exactly one balance: %s", shown, r.raw)
		}
	})

	t.Run("a date on every pending transaction", func(t *testing.T) {
		r := call(t, http.MethodGet, "/v1/"+checking+"/transactions?status=TRANSACTION_STATUS_PENDING", tok, info, nil)
		r.want(t, http.StatusOK, "")
		var got struct {
			Transactions []struct {
				Name            string `json:"name"`
				TransactionTime string `json:"transaction_time"`
				BookingTime     string `json:"booking_time"`
			} `json:"transactions"`
		}
		if err := json.Unmarshal([]byte(r.raw), &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Transactions) == 0 {
			t.Fatalf("no pending transaction to check: %s", r.raw)
		}
		for _, tx := range got.Transactions {
			at, err := time.Parse(time.RFC3339, tx.TransactionTime)
			if err != nil || at.After(time.Now().Add(24*time.Hour)) || at.Before(time.Now().Add(-7*24*time.Hour)) {
				t.Errorf("%s: transaction_time %q, want a recent RFC 3339 time", tx.Name, tx.TransactionTime)
			}
			if tx.BookingTime != "" {
				t.Errorf("%s: a pending transaction with booking_time %q", tx.Name, tx.BookingTime)
			}
		}
	})

	t.Run("every link lapsed: the reason, not an empty list", func(t *testing.T) {
		call(t, http.MethodPost, "/v1/"+link+":revoke", tok, "CONSENT_MANAGEMENT", map[string]any{}).want(t, http.StatusOK, "")
		call(t, http.MethodGet, "/v1/users/"+user+"/accounts", tok, info, nil).want(t, http.StatusForbidden, "CONSENT_REVOKED")
		call(t, http.MethodGet, "/v1/users/"+user+"/accounts?bank_id=sandbox", tok, info, nil).want(t, http.StatusForbidden, "CONSENT_REVOKED")
	})
}
