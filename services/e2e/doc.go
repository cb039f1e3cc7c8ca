// Package e2e holds the end-to-end tests: they build and start the whole dev
// stack (devstack/stack) as real processes on 127.0.0.1 — real Vault, the
// sandbox bank, the services and the gateway — and call it over REST and
// gRPC as a product team would, while an in-process OTLP receiver collects
// every span the processes export.
package e2e
