package sandbox

import (
	"errors"
	"net/http"
	"strings"
	"sync"

	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// A sandbox bank can be made to leak, for tests of bankbridge's defence
// against adapters that show full numbers (adapters/leak.go, checked by adapters/runtime): while a
// customer's leak switch is on, every account ListAccounts returns for
// that customer shows a full number in its masked field, as a careless
// adapter that copies the bank's own field would. The switch is off for
// every customer until the admin endpoint turns it on (LeakHandler), and
// exists only on the sandbox, a test bank.

// The numbers a leaking sandbox shows: well-known test numbers, never a
// real customer's, that pass the Luhn check and ISO 13616 mod 97.
const (
	// LeakedCardNumber is a full card number (Visa's test PAN).
	LeakedCardNumber = "4111 1111 1111 1111"
	// LeakedIBAN is a full IBAN (ISO 13616's German example).
	LeakedIBAN = "DE89 3704 0044 0532 0130 00"
)

// Leak is what a leaking customer's accounts show.
type Leak string

// The leaks a customer's switch can turn on.
const (
	// LeakCard shows LeakedCardNumber in every account's masked number.
	LeakCard Leak = "card"
	// LeakIBAN shows LeakedIBAN in every account's masked number.
	LeakIBAN Leak = "iban"
)

// ErrUnknownLeak is returned by SetLeak for a Leak that is none of the
// above.
var ErrUnknownLeak = errors.New("sandbox: unknown leak: want card or iban")

// leakSwitch holds the customers whose accounts leak; its zero value
// leaks nothing.
type leakSwitch struct {
	mu sync.Mutex
	on map[string]Leak // by login
}

// SetLeak turns the leak switch of the customer with this login on (to
// leak) or, with leak "", off. It returns ErrUnknownCustomer or
// ErrUnknownLeak.
func (b *Bank) SetLeak(login string, leak Leak) error {
	if b.customers[login] == nil {
		return ErrUnknownCustomer
	}
	if leak != "" && leak != LeakCard && leak != LeakIBAN {
		return ErrUnknownLeak
	}
	b.leaks.mu.Lock()
	defer b.leaks.mu.Unlock()
	if leak == "" {
		delete(b.leaks.on, login)
		return nil
	}
	if b.leaks.on == nil {
		b.leaks.on = map[string]Leak{}
	}
	b.leaks.on[login] = leak
	return nil
}

// leakAccounts makes accounts, listed for login, show the full number of
// login's leak, if its switch is on.
func (l *leakSwitch) leakAccounts(login string, accounts []*adapterv1.Account) {
	l.mu.Lock()
	leak := l.on[login]
	l.mu.Unlock()
	number := map[Leak]string{LeakCard: LeakedCardNumber, LeakIBAN: LeakedIBAN}[leak]
	if number == "" {
		return
	}
	compact := strings.ReplaceAll(number, " ", "")
	for _, a := range accounts {
		a.MaskedNumber = &commonv1.MaskedAccountNumber{Last4: compact[len(compact)-4:], Display: number}
	}
}

// LeakHandler serves the leak switch, for tests only; AdminHandler
// mounts it:
//
//	POST /admin/leaks?user=<login>&leak=card|iban
//
// turns the customer's switch on: 200 with {"user": login, "leak": leak};
//
//	DELETE /admin/leaks?user=<login>
//
// turns it off: 200 with {"user": login, "leak": ""}. Both answer 404 for
// an unknown customer and 400 for a missing user or an unknown leak.
func (b *Bank) LeakHandler() http.Handler {
	mux := http.NewServeMux()
	set := func(w http.ResponseWriter, r *http.Request, leak Leak) {
		user := r.URL.Query().Get("user")
		if user == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "query parameter user is required"})
			return
		}
		switch err := b.SetLeak(user, leak); {
		case errors.Is(err, ErrUnknownCustomer):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no customer with this login"})
		case errors.Is(err, ErrUnknownLeak):
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "query parameter leak must be card or iban"})
		case err != nil:
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error"})
		default:
			writeJSON(w, http.StatusOK, map[string]string{"user": user, "leak": string(leak)})
		}
	}
	mux.HandleFunc("POST /admin/leaks", func(w http.ResponseWriter, r *http.Request) {
		leak := Leak(r.URL.Query().Get("leak"))
		if leak == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "query parameter leak must be card or iban"})
			return
		}
		set(w, r, leak)
	})
	mux.HandleFunc("DELETE /admin/leaks", func(w http.ResponseWriter, r *http.Request) {
		set(w, r, "")
	})
	return mux
}
