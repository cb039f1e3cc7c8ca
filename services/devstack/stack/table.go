package stack

import (
	"slices"

	"github.com/bankbridge/bankbridge/services/platform/bootstrap"
)

// Kind is what a process of the stack is; it decides the flags the stack
// gives it.
type Kind int

const (
	// Bank is a bank adapter server: --grpc-addr, --admin-addr and its API
	// key file (the key is also in Vault at bankbridge/banks/<name>); a
	// Bank that is also a Carrier pushes tracking events too.
	Bank Kind = iota
	// Gateway is the REST gateway on --addr, in dev mode: the token issuer
	// the services verify against, routing to every Service (--<name>-addr,
	// and --<name>-http-addr to one with a public HTTP listener).
	Gateway
	// Service is a bankbridge service: --grpc-addr and --admin-addr (and
	// --http-addr with Needs.HTTP), the gateway's dev issuer, the stack's
	// one --page-token-key (shared by every service, as by replicas), and
	// the flags of what its Needs declare.
	Service
	// Web is a web app people open in a browser, outside bankbridge (the
	// demo chat): plain HTTP on a loopback --addr (a browser's secure
	// context, no certificate to trust), a client of the gateway's public
	// REST API (--gateway-url, trusting --ca-file), which plays the world
	// outside the chat through the first Bank's admin listener
	// (--sandbox-admin-url) and a dev partner's credentials
	// (--partner-client, its secret in BANKBRIDGE_PARTNER_SECRET). It gets
	// no Vault token and no certificate.
	Web
)

// Process is one entry of the table: adding a service to the dev stack is
// adding one entry here.
type Process struct {
	// Name is the process name: its log prefix, its client id, and the
	// gateway's --<name>-addr flag.
	Name string
	// Package is its main package in the services module.
	Package string
	Kind    Kind
	// Port and AdminPort are the default ports of its gRPC (the gateway:
	// HTTP) and admin listeners; AdminPort 0 means none.
	Port, AdminPort int
	// HTTPPort is the default port of a Service's public HTTP listener,
	// which it has exactly when its Needs declare HTTP; the gateway passes
	// the service's public routes there (--<name>-http-addr).
	HTTPPort int
	// Carrier, on a Bank, is the carrier id it also pushes tracking events
	// as (the sandbox plays a carrier): the stack seeds a fresh signing
	// secret in Vault at bankbridge/carriers/<Carrier>, writes it to a file
	// for the process, and gives it the gateway's carrier endpoint
	// (--carrier-push-url, --carrier-secret-file, --carrier-step).
	Carrier string
	// Needs are its dependencies, as its main declares them to bootstrap:
	// Banks gives it banks.yaml (every Bank of the table) and Vault,
	// Consent the consent service and service credentials, Storage a data
	// directory, Bus the stack's NATS server (--nats-url, its token from
	// Vault), HTTP its public listener on HTTPPort. The processes it needs
	// start before it.
	Needs bootstrap.Needs
	// Calls are the Services it calls over gRPC: each gets --<name>-addr
	// with that service's address, and starts before it.
	Calls []string
	// Flags are added after the ones the stack derives.
	Flags []string
}

// table is the dev stack, in start order.
var table = []Process{
	{Name: "sandbox", Package: "./sandbox", Kind: Bank, Port: 9400, AdminPort: 9401, Carrier: "sandbox"},
	{Name: "gateway", Package: "./gateway", Kind: Gateway, Port: 8080, AdminPort: 9200},
	// Vault: the Transit key that signs access log heads.
	{Name: "consent", Package: "./consent", Kind: Service, Port: 9101, AdminPort: 9201,
		Needs: bootstrap.Needs{Banks: true, Storage: true, Bus: true, Vault: true}},
	{Name: "balance", Package: "./balance", Kind: Service, Port: 9102, AdminPort: 9202,
		Needs: bootstrap.Needs{Banks: true, Consent: true}},
	{Name: "receipts", Package: "./receipts", Kind: Service, Port: 9103, AdminPort: 9203,
		Needs: bootstrap.Needs{Banks: true, Consent: true, Storage: true, Bus: true}},
	// Vault: the carriers' signing secrets (bankbridge/carriers/<carrier>);
	// HTTP: their signed pushes, through the gateway.
	{Name: "shipping", Package: "./shipping", Kind: Service, Port: 9105, AdminPort: 9205, HTTPPort: 9305,
		Needs: bootstrap.Needs{Vault: true, Consent: true, Storage: true, Bus: true, HTTP: true}},
	{Name: "webhooks", Package: "./webhooks", Kind: Service, Port: 9106, AdminPort: 9206,
		Needs: bootstrap.Needs{Vault: true, Storage: true, Bus: true}},
	// The assistant asks the balance service for balances and
	// transactions, as the user.
	{Name: "support", Package: "./support", Kind: Service, Port: 9104, AdminPort: 9204,
		Needs: bootstrap.Needs{Banks: true, Consent: true, Storage: true, Bus: true}, Calls: []string{"balance"}},
	// The demo chat, on http://127.0.0.1:8088: what a product team's chat
	// looks like on the public REST API.
	{Name: "demochat", Package: "./demochat", Kind: Web, Port: 8088},
}

// Table is the dev stack's processes, in start order.
func Table() []Process { return slices.Clone(table) }

// dependencies are the processes p needs started first.
func (p Process) dependencies(table []Process) []string {
	var deps []string
	if p.Kind == Service || p.Kind == Web {
		deps = append(deps, "gateway") // the token issuer; the Web app's API
	}
	for _, q := range table {
		if q.Kind == Bank && (p.Needs.Banks || p.Kind == Web) {
			deps = append(deps, q.Name)
		}
	}
	if p.Needs.Consent {
		deps = append(deps, "consent")
	}
	return append(deps, p.Calls...)
}
