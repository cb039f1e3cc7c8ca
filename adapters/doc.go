// Package adapters is the SDK bank integrators build on: the capability
// interfaces a bank implements, the registry that maps bank ids to adapters,
// the remote adapter client and server for the bankbridge.adapter.v1
// protocol, the sandbox bank and the conformance kit. It depends on the
// contracts in github.com/bankbridge/bankbridge/gen and little else.
package adapters
