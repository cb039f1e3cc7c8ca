package sandbox

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
)

// AdminHandler serves the sandbox's admin endpoints, for development and
// tests only:
//
//	POST /admin/fraud-alerts?user=<login>
//
// makes the bank raise a fraud alert for the customer (see
// TriggerFraudAlert) and answers 200 with {"alert_ids": [...]}; 404 for an
// unknown customer, 409 when the customer has no active consent covering
// SCOPE_FRAUD_ALERTS.
//
//	GET /admin/fraud-alerts/{id}
//
// tells how the customer answered the alert (see AlertAnswer): 200 with
// {"alert_id": id, "answer": "RECOGNISED" | "NOT_RECOGNISED" | ""} (empty
// while unanswered); 404 for an alert the bank did not raise.
//
//	POST /admin/support/request-control?case=<case id>
//
// makes Anna ask bankbridge's assistant for thread control of the case
// (see RequestControl): 200 with {"case_id": id}; 404 for an unknown case,
// 409 when the case is closed or Anna holds control already.
//
//	POST /admin/support/pass-control?case=<case id>
//
// makes Anna hand thread control of the case back to the assistant on her
// own (see PassControl): 200 with {"case_id": id}; 404 for an unknown
// case, 409 when the case is closed or the assistant holds control.
//
// Both support endpoints also take ?user=<login> instead of case: the
// customer's latest open case (see CustomerCase); 404 when they have none.
//
//	POST /admin/leaks?user=<login>&leak=card|iban
//	DELETE /admin/leaks?user=<login>
//
// turn the customer's leak switch on and off (see LeakHandler): while on,
// the bank shows full numbers in the customer's masked account numbers,
// for tests of bankbridge's refusal of such answers.
//
// The sandbox carrier's endpoint is CarrierAdminHandler's.
func (b *Bank) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/admin/leaks", b.LeakHandler())
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
			writeJSON(w, http.StatusConflict, map[string]string{
				"error": "the customer has no active consent covering SCOPE_FRAUD_ALERTS; link the bank with that scope first",
			})
		case err != nil:
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error"})
		default:
			writeJSON(w, http.StatusOK, map[string][]string{"alert_ids": ids})
		}
	})
	mux.HandleFunc("GET /admin/fraud-alerts/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		answer, ok := b.AlertAnswer(id)
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "the bank raised no alert with this id"})
			return
		}
		name := ""
		if answer != adapterv1.FraudAlertAnswer_FRAUD_ALERT_ANSWER_UNSPECIFIED {
			name = strings.TrimPrefix(answer.String(), "FRAUD_ALERT_ANSWER_")
		}
		writeJSON(w, http.StatusOK, map[string]string{"alert_id": id, "answer": name})
	})
	mux.HandleFunc("POST /admin/support/request-control", b.supportAdmin(b.RequestControl,
		"the agent holds thread control already"))
	mux.HandleFunc("POST /admin/support/pass-control", b.supportAdmin(b.PassControl,
		"the assistant holds thread control; there is nothing to hand back"))
	return mux
}

// supportAdmin serves a support admin endpoint: it finds the case named by
// ?case= or ?user= and applies act to it, answering conflict's text when
// act reports ErrAgentHoldsControl or ErrAgentLacksControl.
func (b *Bank) supportAdmin(act func(caseID string) error, conflict string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, user := r.URL.Query().Get("case"), r.URL.Query().Get("user")
		if (id == "") == (user == "") {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "exactly one of the query parameters case and user is required"})
			return
		}
		var err error
		if user != "" {
			id, err = b.CustomerCase(user)
		}
		if err == nil {
			err = act(id)
		}
		switch {
		case errors.Is(err, ErrUnknownCustomer):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no customer with this login"})
		case errors.Is(err, ErrUnknownCase) && user != "":
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "the customer has no open support case; ask for a person in the chat first"})
		case errors.Is(err, ErrUnknownCase):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no support case with this id"})
		case errors.Is(err, ErrCaseClosed):
			writeJSON(w, http.StatusConflict, map[string]string{"error": "the case is closed"})
		case errors.Is(err, ErrAgentHoldsControl), errors.Is(err, ErrAgentLacksControl):
			writeJSON(w, http.StatusConflict, map[string]string{"error": conflict})
		case err != nil:
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error"})
		default:
			writeJSON(w, http.StatusOK, map[string]string{"case_id": id})
		}
	}
}

// CarrierAdminHandler serves the sandbox carrier's admin endpoint, for
// development and tests only; mount it at /admin/carrier/:
//
//	POST /admin/carrier/play?tracking_number=<number>
//
// plays one of TrackingNumbers in the background (see Carrier.Start) and
// answers 202 with {"tracking_number": ..., "steps": N}; 404 for a number
// that is not a sandbox one, 409 when c is nil (no carrier configured).
func CarrierAdminHandler(c *Carrier) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin/carrier/play", func(w http.ResponseWriter, r *http.Request) {
		number := r.URL.Query().Get("tracking_number")
		if number == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "query parameter tracking_number is required"})
			return
		}
		if c == nil {
			writeJSON(w, http.StatusConflict, map[string]string{"error": "no carrier is configured; give the sandbox a carrier push URL and secret"})
			return
		}
		steps, err := c.Start(number)
		switch {
		case errors.Is(err, ErrUnknownTrackingNumber):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "not a sandbox tracking number"})
		case errors.Is(err, ErrCarrierClosed):
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the carrier is shutting down"})
		case err != nil:
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error"})
		default:
			writeJSON(w, http.StatusAccepted, map[string]any{"tracking_number": number, "steps": steps})
		}
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
