// Package berlingroup is a bankbridge adapter for banks that speak the
// Berlin Group NextGenPSD2 Access-to-Account interface, Implementation
// Guidelines 1.3.x, account information (AIS): it maps the adapter
// protocol (bankbridge.adapter.v1) to consents, their authorisations
// (EMBEDDED with an OTP, DECOUPLED, REDIRECT), accounts, balances and
// transactions. It is the template for a real bank's adapter: README.md
// has the mapping tables and what to change for a real ASPSP.
//
// Every answer of the bank is input: its status, headers and JSON are
// checked before use, and its texts (tppMessages text, challengeData,
// psuMessage) never reach bankbridge; errors carry bankbridge's own words
// and a reason chosen from the bank's HTTP status and tppMessage code.
package berlingroup

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bankbridge/bankbridge/adapters"
	adapterv1 "github.com/bankbridge/bankbridge/gen/bankbridge/adapter/v1"
)

// Version is the adapter's version, as GetAdapterInfo reports it.
const Version = "0.1.0"

// Options configure an [Adapter]. BaseURL and HTTPClient are required.
type Options struct {
	// BankID is the bank's id in banks.yaml; default "xs2a-sandbox".
	BankID string
	// DisplayName is the bank's name as its customers know it; default
	// "XS2A Sandbox Bank".
	DisplayName string
	// BaseURL is where the bank's NextGenPSD2 API lives, e.g.
	// "https://xs2a.bank.example" (the /v1/... paths go below it).
	BaseURL string
	// HTTPClient calls the bank. Give it a transport with the TPP's client
	// certificate (mutual TLS): see [ClientTLS]. Its Timeout, if any,
	// caps every call besides the deadline bankbridge sets.
	HTTPClient *http.Client
	// PSUIPAddress is sent as PSU-IP-Address on consent creation, which
	// the specification requires while the PSU is present. The adapter
	// protocol does not carry the user's address: set the address of the
	// bankbridge installation's edge, as agreed with the bank; default
	// "0.0.0.0" is refused by strict banks. Account calls carry none:
	// they are TPP-initiated and count against frequencyPerDay.
	PSUIPAddress string
	// ScaMethods are the SCA approaches the bank offers, its default
	// first; default EMBEDDED (OTP), DECOUPLED, REDIRECT.
	ScaMethods []adapterv1.ScaMethod
	// HistoryDays is how far back the first transaction sync reads
	// (dateFrom); default 89, inside the 90 days PSD2 banks serve without
	// a new SCA.
	HistoryDays int
	// FrequencyPerDay is the consent's frequencyPerDay: how many
	// TPP-initiated reads a day the bank allows per account; default 4.
	FrequencyPerDay int
	// MaxPages bounds how many _links.next pages one sync follows;
	// default 100.
	MaxPages int
	// Now is the adapter's clock; default time.Now.
	Now func() time.Time
	// IdempotencyStore keeps the first answers of StartSca and VerifySca
	// for 24 hours; default adapters.NewMemoryIdempotencyStore(), which a
	// restart forgets and replicas do not share: give replicas a shared
	// store.
	IdempotencyStore adapters.IdempotencyStore
	// CursorKey seals SyncTransactions' cursors (adapters.CursorKeySize
	// secret bytes, the same on every replica); default a random key, so
	// that cursors do not outlive the process (bankbridge then syncs
	// again from the start). OldCursorKeys still open cursors sealed
	// before a rotation.
	CursorKey     []byte
	OldCursorKeys [][]byte
}

// Adapter is a NextGenPSD2 bank seen through bankbridge's adapter
// protocol. It implements adapters.Adapter, AccountsAdapter,
// TransactionsAdapter and SCAAdapter, and is safe for concurrent use.
type Adapter struct {
	opts    Options
	base    *url.URL
	idem    *adapters.Idempotency
	cursors *adapters.CursorCodec

	mu     sync.Mutex
	health healthState
}

var (
	_ adapters.AccountsAdapter     = (*Adapter)(nil)
	_ adapters.TransactionsAdapter = (*Adapter)(nil)
	_ adapters.SCAAdapter          = (*Adapter)(nil)
)

// New returns an adapter for the bank at opts.BaseURL.
func New(opts Options) (*Adapter, error) {
	if opts.HTTPClient == nil {
		return nil, errors.New("berlingroup: Options.HTTPClient is required")
	}
	base, err := url.Parse(strings.TrimSuffix(opts.BaseURL, "/"))
	if err != nil || base.Scheme != "https" || base.Host == "" || base.RawQuery != "" {
		return nil, errors.New("berlingroup: Options.BaseURL must be an https URL without query")
	}
	if opts.BankID == "" {
		opts.BankID = "xs2a-sandbox"
	}
	if opts.DisplayName == "" {
		opts.DisplayName = "XS2A Sandbox Bank"
	}
	if opts.PSUIPAddress == "" {
		opts.PSUIPAddress = "0.0.0.0"
	}
	if len(opts.ScaMethods) == 0 {
		opts.ScaMethods = []adapterv1.ScaMethod{
			adapterv1.ScaMethod_SCA_METHOD_OTP, adapterv1.ScaMethod_SCA_METHOD_DECOUPLED, adapterv1.ScaMethod_SCA_METHOD_REDIRECT,
		}
	}
	if opts.HistoryDays <= 0 {
		opts.HistoryDays = 89
	}
	if opts.FrequencyPerDay <= 0 {
		opts.FrequencyPerDay = 4
	}
	if opts.MaxPages <= 0 {
		opts.MaxPages = 100
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.IdempotencyStore == nil {
		opts.IdempotencyStore = adapters.NewMemoryIdempotencyStore()
	}
	if opts.CursorKey == nil {
		opts.CursorKey = make([]byte, adapters.CursorKeySize)
		if _, err := rand.Read(opts.CursorKey); err != nil {
			return nil, fmt.Errorf("berlingroup: cursor key: %w", err)
		}
	}
	cursors, err := adapters.NewCursorCodec(opts.CursorKey, opts.OldCursorKeys...)
	if err != nil {
		return nil, fmt.Errorf("berlingroup: %w", err)
	}
	return &Adapter{
		opts: opts, base: base, cursors: cursors,
		idem: adapters.NewIdempotency(opts.IdempotencyStore, adapters.WithIdempotencyClock(opts.Now)),
	}, nil
}

// Info implements adapters.Adapter.
func (a *Adapter) Info(context.Context) (*adapterv1.GetAdapterInfoResponse, error) {
	return &adapterv1.GetAdapterInfoResponse{
		BankId:          a.opts.BankID,
		DisplayName:     a.opts.DisplayName,
		ProtocolVersion: adapters.ProtocolVersion,
		AdapterVersion:  Version,
		Capabilities:    adapters.Capabilities(a),
		ScaMethods:      a.opts.ScaMethods,
	}, nil
}

// healthState is what the last bank calls showed.
type healthState struct {
	failuresInARow int
	since          time.Time
}

// downAfter is how many failed bank calls in a row make the adapter DOWN;
// one makes it DEGRADED.
const downAfter = 3

// observe records whether a bank call reached a working bank: transport
// failures and 5xx count against it, any other answer for it.
func (a *Adapter) observe(bankFailed bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !bankFailed {
		a.health = healthState{}
		return
	}
	if a.health.failuresInARow == 0 {
		a.health.since = a.opts.Now()
	}
	a.health.failuresInARow++
}

// CheckHealth implements adapters.Adapter from what recent calls showed:
// SERVING until a call fails, DEGRADED after one failed call, DOWN after
// [downAfter] in a row, SERVING again after the next call that reaches the
// bank. bankbridge's breaker lets a trial call through when it is open,
// and that call is what notices recovery.
func (a *Adapter) CheckHealth(context.Context, *adapterv1.CheckHealthRequest) (*adapterv1.CheckHealthResponse, error) {
	a.mu.Lock()
	h := a.health
	a.mu.Unlock()
	switch {
	case h.failuresInARow >= downAfter:
		return &adapterv1.CheckHealthResponse{Status: adapterv1.HealthStatus_HEALTH_STATUS_DOWN,
			Detail: "bank API failing since " + h.since.UTC().Format(time.TimeOnly) + " UTC"}, nil
	case h.failuresInARow > 0:
		return &adapterv1.CheckHealthResponse{Status: adapterv1.HealthStatus_HEALTH_STATUS_DEGRADED,
			Detail: "last bank API call failed"}, nil
	}
	return &adapterv1.CheckHealthResponse{Status: adapterv1.HealthStatus_HEALTH_STATUS_SERVING}, nil
}
