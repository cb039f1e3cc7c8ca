// Package tools pins promtool (Prometheus v0.316.0), built by `make
// promtool` from this module's tool directive, and holds the test that
// every alert rule and dashboard expression of deploy/ parses as PromQL
// and reads only metrics bankbridge exposes (metrics.txt). It is a module
// of its own so that Prometheus's dependencies stay out of the product
// modules.
package tools
