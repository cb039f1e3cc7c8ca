package sandbox

import (
	"encoding/json"
	"errors"
	"net/http"
)

// AdminHandler serves the sandbox's admin endpoints, for development and
// tests only:
//
//	POST /admin/fraud-alerts?user=<login>
//
// makes the bank raise a fraud alert for the customer (see
// TriggerFraudAlert) and answers 200 with {"alert_ids": [...]}; 404 for an
// unknown customer, 409 when the customer has no active consent.
func (b *Bank) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin/fraud-alerts", func(w http.ResponseWriter, r *http.Request) {
		user := r.URL.Query().Get("user")
		if user == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "query parameter user is required"})
			return
		}
		ids, err := b.TriggerFraudAlert(user)
		switch {
		case errors.Is(err, ErrUnknownCustomer):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no customer with this login"})
		case errors.Is(err, ErrNoActiveConsent):
			writeJSON(w, http.StatusConflict, map[string]string{"error": "the customer has no active consent; link the bank first"})
		case err != nil:
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error"})
		default:
			writeJSON(w, http.StatusOK, map[string][]string{"alert_ids": ids})
		}
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
