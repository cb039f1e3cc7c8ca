// Package runtime is bankbridge's own client of bank adapters, the half of
// the adapter protocol that adapter authors never call (they use package
// adapters, the SDK).
//
// [ParseConfig] and [LoadConfig] read banks.yaml, and a [Registry] turns it
// into one gRPC client per bank, remote or in-process ([WithInProcess]),
// each behind the same resilience layer: a deadline, a rate limit, a
// bulkhead, a circuit breaker, retries of safe reads, the bank's
// credentials from a [CredentialSource] on every call, error mapping onto
// bankbridge's ErrorInfo reasons, and validation of every answer against
// the protocol's rules and the masking rule (adapters.FindLeaks): what a
// bank says is input, not truth. [Registry.Health] and
// [Registry.BanksHandler] show each bank's state to on-call engineers, and
// [WithMeterProvider] sends the per-bank metrics to OpenTelemetry.
package runtime
