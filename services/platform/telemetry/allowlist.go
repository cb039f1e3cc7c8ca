package telemetry

import (
	"strings"

	"go.opentelemetry.io/otel/attribute"
)

// Telemetry never carries personal data: account numbers, balances, amounts,
// message texts, tokens, and not even user ids or resource names (paths name
// users and accounts). Rather than hunt for such values, everything that
// leaves a process as a span attribute, span event attribute, log attribute
// or metric label is checked against this allow-list of keys whose values are
// known to be safe; any other key keeps its name with its value replaced by
// Redacted (logs, spans) or is dropped (metric labels, to bound cardinality).
//
// Three kinds of key sit between allowed and not:
//   - free text (FreeText: error, panic, stack, and a few of ours that carry
//     a caller's text): the value leaves scrubbed of anything shaped like
//     personal data (Scrub), so a cause stays readable for on-call;
//   - bankbridge.* keys not listed below: a number, a boolean or a duration
//     leaves as it is (counts, ages, attempts), text is redacted, so a new
//     key cannot carry a name or an amount out before someone vets it;
//   - rpc.service and rpc.method, which name what the caller asked for:
//     only a method of a service this binary knows leaves (rpc.go).

// Redacted replaces the value of an attribute that is not allowed.
const Redacted = "[redacted]"

// allowedKeys are exact keys whose values are safe.
var allowedKeys = map[string]bool{
	// Logs.
	"time": true, "level": true, "msg": true, "source": true,
	"trace_id": true, "span_id": true,
	"duration": true, "duration_ms": true, "addr": true, "signal": true,
	"service": true, "version": true, "commit": true, "component": true,
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

	// Our own text keys whose values are vetted: ids we mint or configure,
	// and enums. Never names, numbers, amounts.
	AttrBankID: true, AttrClientID: true, AttrReason: true, AttrIncidentID: true,
	AttrOutcome: true, AttrLogType: true,
	"bankbridge.event_id": true, "bankbridge.event_type": true, "bankbridge.event_kind": true,
	"bankbridge.carrier": true, "bankbridge.partner_id": true, "bankbridge.vault_auth_method": true,
	"bankbridge.webhook_delivery_id": true, "bankbridge.webhook_endpoint_id": true,
	"bankbridge.tls_name": true, // the process's own name, its certificate's
	// Per-bank call metrics and the failed-call and access-log lines
	// (adapters/runtime/observe.go, the gateway's access log): a configured bank
	// id, an RPC's short name or an HTTP method, enum names, a route
	// template (never a path).
	"bank_id": true, "method": true, "outcome": true, "reason": true,
	"adapter_status": true, "breaker_state": true, "route": true, "status": true,
	// The sandbox bank's start-up line: which fixture customers fail on
	// purpose (a constant of adapters/sandbox).
	"bankbridge.fault_customers": true,
	// A bank's refused answer (adapters/runtime/leakcheck.go): the kind of number found
	// (card, iban) and where, as proto field paths of the adapter protocol,
	// which has no maps: names and list indexes only, never a value.
	"bankbridge.leak_kind": true, "bankbridge.field_path": true,
}

// freeTextKeys carry text written by code we do not control the words of
// (an error's text, a panic, a stack, a carrier's own push id, the rules a
// bank's data broke): scrubbed, not redacted, as on-call needs the cause.
var freeTextKeys = map[string]bool{
	"error": true, "panic": true, "stack": true,
	"bankbridge.push_id": true, "bankbridge.rules": true,
}

// allowedPrefixes are key prefixes whose values are safe.
var allowedPrefixes = []string{
	"rpc.",       // rpc.system, rpc.grpc.status_code; rpc.service and rpc.method are checked (rpc.go)
	"otel.",      // otel.status_code, otel.scope.*
	"telemetry.", // SDK identity
	"service.",   // resource
	"grpc.",      // grpc-go's own
}

// ourPrefix is the prefix of our own keys: numbers under it are safe,
// text only under the keys listed in allowedKeys.
const ourPrefix = "bankbridge."

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
// with any value. A key that is not may still leave with some values: see
// FreeText, and numbers under bankbridge.*.
func Allowed(key string) bool {
	if allowedKeys[key] {
		return true
	}
	if key == rpcServiceKey || key == rpcMethodKey {
		return false // only values naming a known method: see allowedValue
	}
	for _, p := range allowedPrefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// FreeText reports whether the value of key is free text that leaves the
// process scrubbed (Scrub) rather than redacted.
func FreeText(key string) bool { return freeTextKeys[key] }

// verdict is what happens to one attribute's value.
type verdict int

const (
	keep verdict = iota
	scrub
	redact
)

// judge decides on the value of key; text says whether the value is text
// (a string, or anything printed as one) rather than a number, a boolean
// or a duration; value is the text, for rpc.service and rpc.method.
func judge(key string, text bool, value string) verdict {
	switch {
	case Allowed(key):
		return keep
	case key == rpcServiceKey || key == rpcMethodKey:
		if knownRPCValue(key, value) {
			return keep
		}
		return redact
	case !text && (strings.HasPrefix(key, ourPrefix) || freeTextKeys[key]):
		return keep
	case freeTextKeys[key]:
		return scrub
	}
	return redact
}

// judgeAttr is judge for an OpenTelemetry attribute.
func judgeAttr(kv attribute.KeyValue) verdict {
	switch kv.Value.Type() {
	case attribute.BOOL, attribute.INT64, attribute.FLOAT64, attribute.BOOLSLICE, attribute.INT64SLICE, attribute.FLOAT64SLICE:
		return judge(string(kv.Key), false, "")
	case attribute.STRING:
		return judge(string(kv.Key), true, kv.Value.AsString())
	}
	return judge(string(kv.Key), true, kv.Value.Emit())
}

// allowedLabel reports whether a metric may keep this label; labels are
// dropped rather than scrubbed or redacted, which would only add series.
func allowedLabel(kv attribute.KeyValue) bool { return judgeAttr(kv) == keep }
