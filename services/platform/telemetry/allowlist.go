package telemetry

import "strings"

// Telemetry never carries personal data: account numbers, balances, amounts,
// message texts, tokens, and not even user ids or resource names (paths name
// users and accounts). Rather than hunt for such values, everything that
// leaves a process as a span attribute, span event attribute, log attribute
// or metric label is checked against this allow-list of keys whose values are
// known to be safe; any other key keeps its name with its value replaced by
// Redacted (logs, spans) or is dropped (metric labels, to bound cardinality).

// Redacted replaces the value of an attribute that is not allowed.
const Redacted = "[redacted]"

// allowedKeys are exact keys whose values are safe.
var allowedKeys = map[string]bool{
	// Logs.
	"time": true, "level": true, "msg": true, "source": true,
	"trace_id": true, "span_id": true, "error": true, "panic": true, "stack": true,
	"duration": true, "duration_ms": true, "addr": true, "signal": true,
	"service": true, "version": true, "component": true,
	// HTTP semantic conventions, without paths, queries and headers.
	"http.request.method": true, "http.request.method_original": true,
	"http.response.status_code": true, "http.route": true,
	"http.request.body.size": true, "http.response.body.size": true,
	"url.scheme": true, "user_agent.original": true,
	"network.protocol.name": true, "network.protocol.version": true,
	"network.peer.address": true, "network.peer.port": true, "network.transport": true, "network.type": true,
	"server.address": true, "server.port": true, "client.address": true, "client.port": true,
	"error.type": true, "exception.type": true, "exception.escaped": true,
	// Messaging events that otelgrpc records.
	"message.type": true, "message.id": true,
	"message.compressed_size": true, "message.uncompressed_size": true,
}

// allowedPrefixes are key prefixes whose values are safe.
var allowedPrefixes = []string{
	"rpc.",        // rpc.system, rpc.service, rpc.method, rpc.grpc.status_code
	"otel.",       // otel.status_code, otel.scope.*
	"telemetry.",  // SDK identity
	"service.",    // resource
	"grpc.",       // grpc-go's own
	"bankbridge.", // our attributes are chosen to be safe: see Attr* below
}

// Our own attribute keys. Only ids and enums: never names, numbers, amounts.
const (
	AttrBankID     = "bankbridge.bank_id"
	AttrClientID   = "bankbridge.client_id"
	AttrReason     = "bankbridge.reason"
	AttrIncidentID = "bankbridge.incident_id"
	AttrOutcome    = "bankbridge.outcome"
	// AttrLogType marks log lines of a kind on-call filters on, e.g. "security".
	AttrLogType = "bankbridge.log_type"
)

// Allowed reports whether an attribute with this key may leave the process
// with its value.
func Allowed(key string) bool {
	if allowedKeys[key] {
		return true
	}
	for _, p := range allowedPrefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}
