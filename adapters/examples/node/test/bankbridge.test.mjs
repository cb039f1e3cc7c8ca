// Unit tests of the parts an integrator copies; the proof that the adapter
// keeps the protocol is the conformance kit (services/e2e/conformance_node_test.go).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

import grpc from '@grpc/grpc-js';

import { BankbridgeError, authenticate, checkRulesKnown, loadContract, toGrpcError, validate } from '../bankbridge.mjs';
import { mask, parseMoney } from '../bank.mjs';

const contract = loadContract(fileURLToPath(new URL('../../../../proto/', import.meta.url)));

function decodeStatus(trailers) {
  const [bin] = trailers.get('grpc-status-details-bin');
  const st = contract.Status.decode(bin);
  const details = {};
  for (const any of st.details) {
    const name = any.type_url.replace('type.googleapis.com/', '');
    details[name] = contract.root.lookupType(name).decode(any.value);
  }
  return { st, details };
}

test('an error carries its reason code from common.proto and a google.rpc.Status in grpc-status-details-bin', () => {
  const e = toGrpcError(contract, new BankbridgeError('BANK_UNAVAILABLE', 'the bank did not answer', { retryAfterMs: 1500 }));
  assert.equal(e.code, grpc.status.UNAVAILABLE);
  const { st, details } = decodeStatus(e.metadata);
  assert.equal(st.code, grpc.status.UNAVAILABLE);
  assert.equal(st.message, 'the bank did not answer');
  assert.equal(details['google.rpc.ErrorInfo'].reason, 'BANK_UNAVAILABLE');
  assert.equal(details['google.rpc.ErrorInfo'].domain, 'bankbridge');
  const delay = details['google.rpc.RetryInfo'].retry_delay;
  assert.deepEqual([Number(delay.seconds), delay.nanos], [1, 500000000]);
});

test('reasons map to the codes the contract names', () => {
  for (const [reason, code] of [
    ['CONSENT_REVOKED_BY_BANK', grpc.status.PERMISSION_DENIED],
    ['CREDENTIALS_REJECTED', grpc.status.UNAUTHENTICATED],
    ['CAPABILITY_NOT_SUPPORTED', grpc.status.UNIMPLEMENTED],
    ['NOT_FOUND', grpc.status.NOT_FOUND],
    ['INVALID_ARGUMENT', grpc.status.INVALID_ARGUMENT],
  ]) {
    assert.equal(toGrpcError(contract, new BankbridgeError(reason, 'x')).code, code, reason);
  }
  assert.throws(() => toGrpcError(contract, new BankbridgeError('NO_SUCH_REASON', 'x')), /unknown ErrorReason/);
});

test('validation reads the rules from adapter.proto and names each field', () => {
  const req = contract.root.lookupType('bankbridge.adapter.v1.GetBalancesRequest');
  assert.deepEqual(validate(req, req.decode(req.encode({ bank_consent_id: 'consent-alice-1', bank_account_id: 'acc-1' }).finish())), []);
  const v = validate(req, req.decode(req.encode({ bank_consent_id: 'not a valid id!' }).finish()));
  assert.deepEqual(v.map((x) => [x.field, x.reason]), [['bank_consent_id', 'string.pattern'], ['bank_account_id', 'string.pattern']]);
  const e = toGrpcError(contract, new BankbridgeError('INVALID_ARGUMENT', 'invalid request', { violations: v }));
  const fv = decodeStatus(e.metadata).details['google.rpc.BadRequest'].field_violations;
  assert.deepEqual(fv.map((x) => [x.field, x.reason]), [['bank_consent_id', 'string.pattern'], ['bank_account_id', 'string.pattern']]);
});

test('a request type with rules this validator cannot evaluate is refused at start-up', () => {
  checkRulesKnown(contract.root.lookupType('bankbridge.adapter.v1.ListAccountsRequest'));
  assert.throws(() => checkRulesKnown(contract.root.lookupType('bankbridge.adapter.v1.StartScaRequest')), /not supported/);
});

test('the API key is checked as the Go SDK checks it', () => {
  const md = (...values) => {
    const m = new grpc.Metadata();
    for (const v of values) m.add('bankbridge-credential-api_key', v);
    return m;
  };
  const keys = () => ['old-key', 'new-key'];
  authenticate(md('new-key'), keys);
  authenticate(md('old-key'), keys);
  for (const bad of [md(), md('wrong'), md(''), md('new-key', 'new-key')]) {
    assert.throws(() => authenticate(bad, keys), (e) => e.reason === 'CREDENTIALS_REJECTED');
  }
  assert.throws(() => authenticate(md(''), () => ['']), (e) => e.reason === 'CREDENTIALS_REJECTED');
});

test('money is exact', () => {
  assert.deepEqual(parseMoney('GBP', '-42.50'), { currency_code: 'GBP', units: '-42', nanos: -500000000 });
  assert.deepEqual(parseMoney('EUR', '10250.00'), { currency_code: 'EUR', units: '10250', nanos: 0 });
  assert.deepEqual(parseMoney('EUR', '0.000000001'), { currency_code: 'EUR', units: '0', nanos: 1 });
  assert.deepEqual(parseMoney('EUR', '90071992547409931.10'), { currency_code: 'EUR', units: '90071992547409931', nanos: 100000000 });
  for (const bad of ['1e5', '1.2.3', '', '12.0000000001', ' 1']) assert.throws(() => parseMoney('EUR', bad), bad);
});

test('a masked number shows the last four characters only', () => {
  assert.deepEqual(mask('DE89 3704 0044 0532 0130 00'), { last4: '3000', display: 'DE•• •••• 3000' });
  assert.deepEqual(mask('5425 2334 3010 9903'), { last4: '9903', display: '•••• 9903' });
});
