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
// Who owns which files (two engineers work in this package):
//
//   - the fraud, cards and alerts owner: internal/app/fraud*.go,
//     cards*.go, alerts*.go, ports_fraud.go and bankevents_fraud.go (the
//     FraudAlert and FraudCaseUpdated hooks the event consumer calls);
//     internal/store/fraud*.go and migrations/00002_fraud.sql;
//     internal/supportpb/fraud*.go (EventData's fraud payloads);
//     internal/transport/fraud*.go, cards*.go, alerts*.go.
//   - the conversations owner: everything else in services/support,
//     including the shared skeleton (main.go, service.go, ports.go,
//     store.go, server.go).
//
// It knows nothing of gRPC transport: transport calls it with names and
// domain values, and it reaches the database, the banks and the balance
// service through the ports in ports.go. Errors meant for the caller are
// apierr errors; anything else is an internal failure that the kit masks.
// Message texts never go into logs, span attributes, metrics or errors.
package app
