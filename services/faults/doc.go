// Package faults is bankbridge's fault suite (`make faults`): it starts the
// dev stack (devstack/stack) as real processes with a Toxiproxy, run in
// this process, between the services and each of their dependencies — the
// sandbox bank, Vault, NATS, PostgreSQL and the consent service — runs a
// load of 1,000 linked users through it while one fault at a time is
// injected (a proxy's toxic, a signal to a process, a PostgreSQL or NATS
// restart), and prints one table: per row its hypothesis, availability,
// p99 latency, errors by reason, writes lost and writes applied twice,
// accesses served without an entry in their user's access log, and
// whether the hypothesis held.
//
// It is a test harness, not a product binary: nothing outside this package
// imports it, so Toxiproxy never ships in a service. The matrix runs as
// the test TestMatrix, only when BANKBRIDGE_FAULTS is set (make faults
// sets it; FAULTS picks a subset of rows).
package faults
