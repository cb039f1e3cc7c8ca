// Package adapters is the SDK bank integrators build on: what a bank
// adapter implements and what it calls, and nothing of bankbridge's own.
//
// A bank adapter implements [Adapter] plus one small interface per
// capability it supports ([AccountsAdapter], [TransactionsAdapter],
// [SCAAdapter], [SupportAdapter], [FraudAdapter], [CardsAdapter],
// [EventsAdapter], and the optional [ConsentExtensionAdapter] and
// [PurchaseDetailsAdapter]); [Capabilities] lists what it implements for its
// Info. [NewServer] serves any such adapter over the bankbridge.adapter.v1
// gRPC protocol: it checks the API key, answers the capabilities the adapter
// lacks with CAPABILITY_NOT_SUPPORTED, validates every request, and masks
// errors that carry no bankbridge ErrorInfo. [NewInMemoryClient] reaches a
// server through real gRPC without a network, for tests and the conformance
// kit.
//
// What every adapter would otherwise write itself:
//   - [Credentials]: the credential bankbridge sent with the call, to call
//     the bank with; [KeyFile]: the API keys a remote adapter accepts,
//     reloaded on rotation.
//   - [Idempotency] with an [IdempotencyStore]: a retried write answered
//     once, never a transient failure replayed.
//   - [ParseMoney]: a bank's decimal amount as exact Money.
//   - [MaskNumber], [ScrubNumbers], [UnmaskedNumber], [FindLeaks]: account
//     and card numbers shown masked, and free text from the bank cleaned of
//     full card numbers and IBANs before it is passed on.
//   - [CursorCodec]: opaque, tamper-proof paging and sync cursors.
//
// The conformance kit (package conformance, and the bankbridge-conformance
// command) proves an adapter, in Go or any other language; the sandbox bank
// (package sandbox) is a complete example. bankbridge's own client of
// adapters (banks.yaml, the registry, resilience, checks of what a bank
// answers) is package runtime beside this one, which adapter authors never
// need.
//
// The package depends on the contracts in github.com/bankbridge/bankbridge/gen,
// gRPC and protovalidate, and nothing else.
package adapters
