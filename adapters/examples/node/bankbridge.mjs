// bankbridge.mjs is the part of this example that any Node.js adapter can
// copy as it is: it loads the bankbridge.adapter.v1 contract from the
// repository's proto/ directory, builds the gRPC service for @grpc/grpc-js,
// and puts every call through the checks the Go SDK's server wrapper
// (adapters/server.go) makes, in the same order:
//
//  1. the API key in metadata bankbridge-credential-api_key, compared in
//     constant time (UNAUTHENTICATED, CREDENTIALS_REJECTED);
//  2. an RPC of a capability the adapter does not implement answers
//     UNIMPLEMENTED (CAPABILITY_NOT_SUPPORTED);
//  3. the request is validated against the protovalidate rules written in
//     the contract (INVALID_ARGUMENT with a google.rpc.BadRequest naming
//     each field);
//  4. the handler runs; an error it throws that is not a bankbridgeError
//     becomes INTERNAL with an incident id, logged here, never sent.
//
// Every error travels as the Go SDK sends it: the gRPC status code that
// the reason names in common.proto (option grpc_code, read from the
// contract, not copied), and a google.rpc.Status in the
// grpc-status-details-bin trailer whose details hold a google.rpc.ErrorInfo
// (domain "bankbridge"), plus BadRequest or RetryInfo where due.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';

import grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

const require = createRequire(import.meta.url);

/** The protocol version this example speaks (GetAdapterInfoResponse.protocol_version). */
export const PROTOCOL_VERSION = '1.0';
/** The metadata key of the credential "api_key" (Go: adapters.APIKeyMetadata). */
export const API_KEY_METADATA = 'bankbridge-credential-api_key';
/** The metadata key of the purpose bankbridge declares on data calls. */
export const PURPOSE_METADATA = 'bankbridge-purpose';
/** The ErrorInfo domain of every bankbridge error. */
export const DOMAIN = 'bankbridge';

const SERVICE = 'bankbridge.adapter.v1.BankAdapterService';

// Which capability each RPC belongs to, as adapter.proto's comments say;
// GetAdapterInfo and CheckHealth belong to none and are always implemented.
const CAPABILITY_OF = {
  StartSca: 'CAPABILITY_SCA',
  VerifySca: 'CAPABILITY_SCA',
  RevokeConsent: 'CAPABILITY_SCA',
  ExtendConsent: 'CAPABILITY_CONSENT_EXTENSION',
  ListAccounts: 'CAPABILITY_ACCOUNTS',
  GetBalances: 'CAPABILITY_BALANCES',
  SyncTransactions: 'CAPABILITY_TRANSACTIONS',
  GetPurchaseDetails: 'CAPABILITY_PURCHASE_DETAILS',
  StartSupportHandoff: 'CAPABILITY_SUPPORT_HANDOFF',
  SendSupportMessage: 'CAPABILITY_SUPPORT_HANDOFF',
  NotifyThreadControl: 'CAPABILITY_SUPPORT_HANDOFF',
  ReportFraud: 'CAPABILITY_FRAUD',
  AnswerFraudAlert: 'CAPABILITY_FRAUD',
  ListCards: 'CAPABILITY_CARDS',
  BlockCard: 'CAPABILITY_CARDS',
  StartCardUnblock: 'CAPABILITY_CARDS',
  VerifyCardUnblock: 'CAPABILITY_CARDS',
  StreamEvents: 'CAPABILITY_EVENTS',
};

/**
 * loadContract parses adapter.proto and what it imports. protoDir is the
 * repository's proto/ directory; its third_party/ holds the vendored
 * buf/validate and google/rpc protos (buf.yaml's second module: buf has no
 * registry here, so nothing else is vendored; error_details.proto there is
 * printed from the descriptor bankbridge's own Go code sends), and
 * google/protobuf/descriptor.proto comes with protobufjs (the other
 * well-known types are built into it).
 */
export function loadContract(protoDir) {
  const includeDirs = [protoDir, join(protoDir, 'third_party'), require.resolve('protobufjs/package.json').replace(/package\.json$/, '')];
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    for (const dir of includeDirs) {
      const p = join(dir, target);
      if (existsSync(p)) return p;
    }
    return target;
  };
  root.loadSync(
    ['bankbridge/adapter/v1/adapter.proto', 'google/rpc/status.proto', 'google/rpc/error_details.proto'],
    { keepCase: true },
  );
  root.resolveAll();

  // Each reason's status code, from its grpc_code option in common.proto.
  const reasons = root.lookupEnum('bankbridge.common.v1.ErrorReason');
  const codeOf = new Map();
  for (const [name, opts] of Object.entries(reasons.valuesOptions ?? {})) {
    const code = opts?.['(grpc_code)'];
    if (code !== undefined) codeOf.set(name.replace(/^ERROR_REASON_/, ''), grpc.status[code]);
  }
  return {
    root,
    service: root.lookupService(SERVICE),
    capabilities: root.lookupEnum('bankbridge.adapter.v1.Capability'),
    codeOf,
    Status: root.lookupType('google.rpc.Status'),
    ErrorInfo: root.lookupType('google.rpc.ErrorInfo'),
    BadRequest: root.lookupType('google.rpc.BadRequest'),
    RetryInfo: root.lookupType('google.rpc.RetryInfo'),
  };
}

/**
 * BankbridgeError is an error the adapter means to send: a reason from
 * bankbridge.common.v1.ErrorReason without its prefix (e.g.
 * "CONSENT_REVOKED_BY_BANK"), a message for developers (never personal
 * data), and optional details.
 */
export class BankbridgeError extends Error {
  /**
   * @param {string} reason e.g. "NOT_FOUND"
   * @param {string} message for developers; never personal data
   * @param {{metadata?: Record<string,string>, violations?: {field:string,description:string,reason:string}[], retryAfterMs?: number}} [details]
   */
  constructor(reason, message, details = {}) {
    super(message);
    this.name = 'BankbridgeError';
    this.reason = reason;
    this.metadata = details.metadata ?? {};
    this.violations = details.violations ?? [];
    this.retryAfterMs = details.retryAfterMs ?? 0;
  }
}

/** toGrpcError turns a BankbridgeError into what grpc-js sends: code, message, trailers. */
export function toGrpcError(contract, err) {
  const code = contract.codeOf.get(err.reason);
  if (code === undefined) throw new Error(`unknown ErrorReason ${err.reason}`);
  const any = (type, fields) => ({
    type_url: `type.googleapis.com/${type.fullName.replace(/^\./, '')}`,
    value: type.encode(type.fromObject(fields)).finish(),
  });
  const details = [any(contract.ErrorInfo, { reason: err.reason, domain: DOMAIN, metadata: err.metadata })];
  if (err.violations.length > 0) {
    details.push(any(contract.BadRequest, { field_violations: err.violations }));
  }
  if (err.retryAfterMs > 0) {
    const ms = err.retryAfterMs;
    details.push(any(contract.RetryInfo, { retry_delay: { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 } }));
  }
  const st = contract.Status.fromObject({ code, message: err.message, details });
  const trailers = new grpc.Metadata();
  trailers.set('grpc-status-details-bin', Buffer.from(contract.Status.encode(st).finish()));
  return { code, details: err.message, metadata: trailers };
}

// ---- Validation ----------------------------------------------------------
//
// The rules are read from the contract's (buf.validate.field) options. This
// evaluates the rule kinds the RPCs of bankbridge.adapter.v1 put on request
// fields, with protovalidate's rule ids and messages, so a caller sees the
// same BadRequest as from a Go adapter. A rule it does not know makes
// checkRulesKnown throw at start-up: an adapter must never serve a request
// whose rules it skipped. (In TypeScript with generated code, use
// @bufbuild/protovalidate instead.)

const KNOWN = {
  string: new Set(['pattern', 'min_len', 'max_len', 'prefix']),
  int32: new Set(['gte', 'lte', 'gt', 'lt']),
  int64: new Set(['gte', 'lte', 'gt', 'lt']),
  enum: new Set(['defined_only', 'not_in', 'in']),
  repeated: new Set(['min_items', 'max_items', 'unique', 'items']),
};

function fieldRules(field) {
  let rules = {};
  for (const o of field.parsedOptions ?? []) {
    if (o['(buf.validate.field)']) rules = { ...rules, ...o['(buf.validate.field)'] };
  }
  return rules;
}

function messageRules(type) {
  return (type.parsedOptions ?? []).filter((o) => o['(buf.validate.message)'] || o['(buf.validate.oneof)']);
}

/** checkRulesKnown throws when type (or a message it holds) carries a rule this validator cannot evaluate. */
export function checkRulesKnown(type, seen = new Set()) {
  if (seen.has(type)) return;
  seen.add(type);
  if (messageRules(type).length > 0) throw new Error(`${type.fullName}: message-level rules are not supported here`);
  for (const field of type.fieldsArray) {
    const rules = fieldRules(field);
    for (const [kind, body] of Object.entries(rules)) {
      if (kind === 'required' || kind === 'ignore') continue;
      checkKind(type, field, kind, body);
    }
    if (field.resolvedType instanceof protobuf.Type) checkRulesKnown(field.resolvedType, seen);
  }
}

function checkKind(type, field, kind, body) {
  const known = KNOWN[kind];
  if (!known) throw new Error(`${type.fullName}.${field.name}: rule kind ${kind} is not supported here`);
  for (const [rule, inner] of Object.entries(body)) {
    if (!known.has(rule)) throw new Error(`${type.fullName}.${field.name}: rule ${kind}.${rule} is not supported here`);
    if (rule === 'items') {
      for (const [k, b] of Object.entries(inner)) checkKind(type, field, k, b);
    }
  }
}

/** validate returns the field violations of msg (a decoded message of type), protovalidate style. */
export function validate(type, msg, prefix = '') {
  const out = [];
  for (const field of type.fieldsArray) {
    const rules = fieldRules(field);
    const path = prefix + field.name;
    const value = msg[field.name];
    const isZero = zero(field, value);
    if (rules.required && isZero) {
      out.push({ field: path, description: 'value is required', reason: 'required' });
      continue;
    }
    if (rules.ignore === 'IGNORE_IF_ZERO_VALUE' && isZero) continue;
    if (field.repeated) {
      const items = value ?? [];
      const r = rules.repeated ?? {};
      if (r.min_items !== undefined && items.length < r.min_items) {
        out.push({ field: path, description: `value must contain at least ${r.min_items} item(s)`, reason: 'repeated.min_items' });
      }
      if (r.max_items !== undefined && items.length > r.max_items) {
        out.push({ field: path, description: `value must contain no more than ${r.max_items} item(s)`, reason: 'repeated.max_items' });
      }
      if (r.unique && new Set(items.map(String)).size !== items.length) {
        out.push({ field: path, description: 'repeated value must contain unique items', reason: 'repeated.unique' });
      }
      items.forEach((item, i) => out.push(...scalar(field, r.items ?? {}, item, `${path}[${i}]`)));
      continue;
    }
    if (field.resolvedType instanceof protobuf.Type) {
      if (value) out.push(...validate(field.resolvedType, value, `${path}.`));
      continue;
    }
    out.push(...scalar(field, rules, value, path));
  }
  return out;
}

function zero(field, value) {
  if (field.repeated) return !value || value.length === 0;
  if (field.resolvedType instanceof protobuf.Type) return value == null;
  return value == null || value === '' || value === 0 || value === false || (typeof value === 'object' && typeof value.isZero === 'function' && value.isZero());
}

function scalar(field, rules, value, path) {
  const out = [];
  const s = rules.string;
  if (s) {
    const len = [...(value ?? '')].length;
    if (s.min_len !== undefined && len < Number(s.min_len)) out.push({ field: path, description: `value length must be at least ${s.min_len} characters`, reason: 'string.min_len' });
    if (s.max_len !== undefined && len > Number(s.max_len)) out.push({ field: path, description: `value length must be at most ${s.max_len} characters`, reason: 'string.max_len' });
    if (s.prefix !== undefined && !String(value ?? '').startsWith(s.prefix)) out.push({ field: path, description: `value does not have prefix \`${s.prefix}\``, reason: 'string.prefix' });
    // The contract's patterns are RE2; the ones it uses mean the same in JavaScript ('u' for code points).
    if (s.pattern !== undefined && !new RegExp(s.pattern, 'u').test(value ?? '')) out.push({ field: path, description: `value does not match regex pattern \`${s.pattern}\``, reason: 'string.pattern' });
  }
  for (const kind of ['int32', 'int64']) {
    const n = rules[kind];
    if (!n) continue;
    const v = Number(value ?? 0);
    if (n.gte !== undefined && v < Number(n.gte)) out.push({ field: path, description: `value must be greater than or equal to ${n.gte}`, reason: `${kind}.gte` });
    if (n.lte !== undefined && v > Number(n.lte)) out.push({ field: path, description: `value must be less than or equal to ${n.lte}`, reason: `${kind}.lte` });
    if (n.gt !== undefined && v <= Number(n.gt)) out.push({ field: path, description: `value must be greater than ${n.gt}`, reason: `${kind}.gt` });
    if (n.lt !== undefined && v >= Number(n.lt)) out.push({ field: path, description: `value must be less than ${n.lt}`, reason: `${kind}.lt` });
  }
  const e = rules.enum;
  if (e) {
    const v = Number(value ?? 0);
    const defined = Object.values(field.resolvedType?.values ?? {});
    if (e.defined_only && !defined.includes(v)) out.push({ field: path, description: 'value must be one of the defined enum values', reason: 'enum.defined_only' });
    if (e.not_in && [].concat(e.not_in).map(Number).includes(v)) out.push({ field: path, description: `value must not be in list [${[].concat(e.not_in).join(', ')}]`, reason: 'enum.not_in' });
    if (e.in && ![].concat(e.in).map(Number).includes(v)) out.push({ field: path, description: `value must be in list [${[].concat(e.in).join(', ')}]`, reason: 'enum.in' });
  }
  return out;
}

// ---- Authentication ------------------------------------------------------

const sha256 = (s) => createHash('sha256').update(s, 'utf8').digest();

/**
 * authenticate checks the API key bankbridge sent, as the Go SDK's
 * WithAPIKeys does: exactly one non-empty bankbridge-credential-api_key,
 * equal to one of keys() (old and new during a rotation), compared as
 * SHA-256 digests in constant time so neither content nor length leaks.
 */
export function authenticate(metadata, keys) {
  const presented = metadata.get(API_KEY_METADATA);
  if (presented.length !== 1 || presented[0] === '' || typeof presented[0] !== 'string') {
    throw new BankbridgeError('CREDENTIALS_REJECTED', `credentials metadata ${API_KEY_METADATA} is missing or given more than once`);
  }
  const got = sha256(presented[0]);
  let match = false;
  for (const k of keys()) {
    if (k === '') continue;
    match = timingSafeEqual(got, sha256(k)) || match;
  }
  if (!match) throw new BankbridgeError('CREDENTIALS_REJECTED', `credentials metadata ${API_KEY_METADATA} is not accepted`);
}

// ---- The server ----------------------------------------------------------

// BLAMED are the outcomes the bank or the adapter is to blame for (Go:
// protocol.Failed), logged as WARN.
const BLAMED = new Set(['BANK_UNAVAILABLE', 'RATE_LIMITED', 'INTERNAL', 'CREDENTIALS_REJECTED']);

/** incidentId ties an INTERNAL answer to the log line about it. */
export const incidentId = () => randomBytes(8).toString('hex');

// traceId reads the caller's W3C traceparent, "00-<trace id>-<span id>-<flags>".
function traceId(metadata) {
  const tp = metadata.get('traceparent');
  if (tp.length !== 1) return '';
  const parts = String(tp[0]).split('-');
  return parts.length === 4 && /^[0-9a-f]{32}$/.test(parts[1]) && !/^0+$/.test(parts[1]) ? parts[1] : '';
}

/**
 * serviceDefinition builds the grpc-js service for adapter, an object with
 * info() (a GetAdapterInfoResponse as a plain object, capabilities by
 * name), health(), and one async handler per implemented RPC, named as the
 * RPC (ListAccounts(request, metadata) => response object). An RPC with a
 * handler must belong to a capability that info() lists, and the other way
 * round: serviceDefinition throws otherwise.
 */
export function serviceDefinition(contract, adapter, { apiKeys, log }) {
  const implemented = new Set(
    Object.entries(CAPABILITY_OF).filter(([rpc]) => typeof adapter[rpc] === 'function').map(([, cap]) => cap),
  );
  // A capability is implemented when every one of its RPCs has a handler.
  for (const [rpc, cap] of Object.entries(CAPABILITY_OF)) {
    if (implemented.has(cap) && typeof adapter[rpc] !== 'function') throw new Error(`${rpc} of ${cap} has no handler`);
  }
  const listed = new Set(adapter.info().capabilities);
  for (const cap of implemented) if (!listed.has(cap)) throw new Error(`info() omits ${cap}, which the adapter implements`);
  for (const cap of listed) if (!implemented.has(cap)) throw new Error(`info() lists ${cap}, which the adapter does not implement`);

  const handlers = {
    GetAdapterInfo: async () => adapter.info(),
    CheckHealth: async () => adapter.health(),
  };
  const definition = {};
  const implementation = {};
  for (const method of contract.service.methodsArray) {
    const name = method.name;
    const req = method.resolvedRequestType;
    const resp = method.resolvedResponseType;
    const capability = CAPABILITY_OF[name];
    const handler = handlers[name] ?? (typeof adapter[name] === 'function' ? adapter[name].bind(adapter) : undefined);
    if (handler && method.responseStream) throw new Error(`${name}: streaming RPCs are not supported by this example`);
    if (handler) checkRulesKnown(req);
    definition[name] = {
      path: `/${SERVICE}/${name}`,
      requestStream: false,
      responseStream: Boolean(method.responseStream),
      requestSerialize: (m) => Buffer.from(req.encode(m).finish()),
      requestDeserialize: (b) => req.decode(b),
      responseSerialize: (obj) => {
        const m = resp.fromObject(obj);
        return Buffer.from(resp.encode(m).finish());
      },
      responseDeserialize: (b) => resp.decode(b),
    };

    // admit runs the checks every call passes before the handler sees it:
    // the API key first, so that an unauthenticated caller learns nothing else.
    const admit = (call) => {
      authenticate(call.metadata, apiKeys);
      if (!handler) {
        throw new BankbridgeError('CAPABILITY_NOT_SUPPORTED',
          `${name}: this adapter does not implement capability ${capability.replace(/^CAPABILITY_/, '')}`);
      }
      const violations = validate(req, call.request);
      if (violations.length > 0) {
        throw new BankbridgeError('INVALID_ARGUMENT', `invalid request: ${violations[0].field}: ${violations[0].description}`, { violations });
      }
    };
    // fail answers err: a BankbridgeError as it is, anything else masked as INTERNAL.
    const fail = (err, trace) => {
      if (err instanceof BankbridgeError) return toGrpcError(contract, err);
      const id = incidentId();
      // Its text is logged, as the Go SDK logs it for a remote adapter:
      // keep personal data out of the errors your code throws.
      log('error', 'bank adapter internal error', { method: name, incident_id: id, error_type: err?.name ?? typeof err, error: String(err?.message ?? err), trace_id: trace });
      return toGrpcError(contract, new BankbridgeError('INTERNAL', `internal error; quote incident ${id} when reporting it`, { metadata: { incident_id: id } }));
    };
    // answerError sends fail(err); should building that error fail too, a
    // bare INTERNAL, so that the call ends and the server keeps serving.
    const answerError = (send, err, trace) => {
      try {
        send(fail(err, trace));
      } catch (e) {
        log('error', 'building an error answer failed', { method: name, error_type: e?.name ?? typeof e, trace_id: trace });
        send({ code: grpc.status.INTERNAL, details: 'internal error' });
      }
    };
    // logCall writes one line per call: method, outcome, duration and the
    // caller's trace id; a WARN when the bank or the adapter is to blame, as
    // the Go SDK does. Never the request or the response.
    const logCall = (start, trace, err) => {
      const outcome = err ? (err.reason ?? 'INTERNAL') : 'ok';
      const fields = { method: name, outcome, duration_ms: Number((performance.now() - start).toFixed(3)) };
      if (trace) fields.trace_id = trace;
      log(BLAMED.has(outcome) ? 'warn' : 'info', 'bank call', fields);
    };

    if (method.responseStream) {
      implementation[name] = (call) => {
        const start = performance.now();
        const trace = traceId(call.metadata);
        try {
          admit(call); // no handler (refused above): this throws CAPABILITY_NOT_SUPPORTED
        } catch (err) {
          logCall(start, trace, err);
          answerError((e) => call.emit('error', e), err, trace);
        }
      };
      continue;
    }
    implementation[name] = async (call, callback) => {
      const start = performance.now();
      const trace = traceId(call.metadata);
      try {
        admit(call);
        const answer = await handler(call.request, call.metadata);
        logCall(start, trace);
        callback(null, answer);
      } catch (err) {
        logCall(start, trace, err);
        answerError(callback, err, trace);
      }
    };
  }
  return { definition, implementation };
}
