package transport_test

import (
	"context"
	"sync"
	"testing"
	"time"

	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
	supportv1 "github.com/bankbridge/bankbridge/gen/bankbridge/support/v1"
	"github.com/bankbridge/bankbridge/services/platform/consentcheck"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/platform/storage/storagetest"
	"github.com/bankbridge/bankbridge/services/platform/testkit"
	"github.com/bankbridge/bankbridge/services/support/internal/app"
)

// gatedConsent is the consent service whose answers on whose a bank
// consent is (ResolveBankConsent) wait, while it is held, until it is let
// go or the caller gives up.
type gatedConsent struct {
	app.Consent
	mu   sync.Mutex
	gate chan struct{} // nil: answer at once
	// asked gets a value when an answer starts waiting.
	asked chan struct{}
}

func newGatedConsent() *gatedConsent { return &gatedConsent{asked: make(chan struct{}, 1)} }

func (c *gatedConsent) hold() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gate = make(chan struct{})
}

func (c *gatedConsent) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gate != nil {
		close(c.gate)
		c.gate = nil
	}
}

func (c *gatedConsent) ResolveBankConsent(ctx context.Context, bank, bankConsentID string, scope commonv1.Scope) (consentcheck.BankConsent, error) {
	c.mu.Lock()
	gate := c.gate
	c.mu.Unlock()
	if gate != nil {
		select {
		case c.asked <- struct{}{}:
		default:
		}
		select {
		case <-gate:
		case <-ctx.Done():
			return consentcheck.BankConsent{}, ctx.Err()
		}
	}
	return c.Consent.ResolveBankConsent(ctx, bank, bankConsentID, scope)
}

// TestSlowConsentServiceHoldsBackNoWriter: while the bank event consumer
// waits for the consent service's answer on a fraud alert's consent, the
// user's writes go on. Asking for a person is the write that waits longest
// behind the consumer: it takes turns with the bank's events on
// PostgreSQL too (LockBankEvents), and on SQLite every write transaction
// does. Once the answer comes, the alert's batch is applied.
func TestSlowConsentServiceHoldsBackNoWriter(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		consent := newGatedConsent()
		e := start(t, options{db: db, consent: func(c app.Consent) app.Consent {
			consent.Consent = c
			return consent
		}})
		t.Cleanup(consent.release)
		c := e.create(t)
		before := e.cursor(t)

		consent.hold()
		if _, err := e.sandbox.TriggerFraudAlert("alice"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-consent.asked:
		case <-time.After(10 * time.Second):
			t.Fatal("the consumer never asked the consent service about the alert's consent")
		}

		// Well below the consumer's wait for the consent service (5s) and
		// SQLite's busy timeout (5s): only a write that does not wait for
		// the consumer makes it.
		ctx, cancel := context.WithTimeout(e.as(t, "alice"), 2*time.Second)
		defer cancel()
		begun := time.Now()
		_, err := e.support.SendMessage(ctx, &supportv1.SendMessageRequest{Parent: c.GetName(), Message: &supportv1.Message{
			ClientMessageId: "cm-while-the-consumer-waits", Text: "talk to a person",
		}})
		if err != nil {
			t.Fatalf("SendMessage while the consumer waits for the consent service: %v (after %v)", err, time.Since(begun).Round(time.Millisecond))
		}
		if got := e.get(t, c.GetName()).GetController(); got != supportv1.Controller_CONTROLLER_BANK_AGENT {
			t.Errorf("controller = %v, want the bank's agent", got)
		}

		consent.release()
		testkit.Eventually(t, func() bool { return e.cursor(t) != before }, 10*time.Second)
	})
}
