// Package app is the support service's logic: conversations between a user,
// bankbridge's assistant and the bank's human agent (conversations.go,
// messages.go, handover.go), the assistant's glue to the banks and the
// balance service (assistant.go; its rules live in internal/assistant),
// the bank adapters' event stream held by one replica per bank
// (bankevents.go, lease.go), the outbox workers that reach the banks
// (outbound.go), and the sweeps: idle agents, retention, revoked consent
// (sweep.go, revocation.go). Fraud reports, cards and alerts live beside
// them in fraud*.go, cards*.go and alerts*.go.
//
// It knows nothing of gRPC transport: transport calls it with names and
// domain values, and it reaches the database, the banks and the balance
// service through the ports in ports.go. Errors meant for the caller are
// apierr errors; anything else is an internal failure that the kit masks.
// Message texts never go into logs, span attributes, metrics or errors.
package app
