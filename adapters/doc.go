// Package adapters is the SDK bank integrators build on and the client
// bankbridge's services use to reach banks.
//
// For integrators: a bank adapter implements [Adapter] plus one small
// interface per capability it supports ([AccountsAdapter],
// [TransactionsAdapter], [SCAAdapter], [SupportAdapter], [FraudAdapter],
// [CardsAdapter], [EventsAdapter], and the optional [ConsentExtensionAdapter] and
// [PurchaseDetailsAdapter]). [NewServer] serves any such adapter over the
// bankbridge.adapter.v1 gRPC protocol; registered with [WithInProcess], the
// same adapter runs inside a bankbridge service instead, through the same
// request validation. The conformance kit (package conformance) proves an
// adapter, in Go or any other language; the sandbox bank (package sandbox)
// is a complete example.
//
// For bankbridge's services: [ParseConfig] reads banks.yaml, and a
// [Registry] turns it into one gRPC client per bank, remote or in-process,
// each behind the same resilience layer: a deadline, a rate limit, a circuit
// breaker, the bank's credentials from a [CredentialSource] on every call,
// error mapping onto bankbridge's ErrorInfo reasons, and validation of every
// response against the protocol's rules and the masking rule ([FindLeaks]).
//
// The module depends on the contracts in github.com/bankbridge/bankbridge/gen
// and little else.
package adapters
