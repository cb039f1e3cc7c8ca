// bank.mjs is the bank-specific part: a small in-file bank and the
// adapter that serves it, with capabilities ACCOUNTS and BALANCES only.
// A real adapter replaces the Bank class with calls to the bank's API and
// keeps the mapping below: bank answer -> contract message, bank failure ->
// bankbridge reason.

import { BankbridgeError, PROTOCOL_VERSION } from './bankbridge.mjs';

/** The RetryInfo delay of a BANK_UNAVAILABLE that comes from one failed bank call (as the Go SDK's). */
export const RETRY_AFTER_BANK_FAILURE_MS = 1000;

// parseMoney turns a decimal string in the currency's major unit into
// bankbridge.common.v1.Money, exactly (no floating point): "-42.50" ->
// units -42, nanos -500000000.
export function parseMoney(currency, decimal) {
  const m = /^(-)?(\d+)(?:\.(\d{1,9}))?$/.exec(decimal);
  if (!m) throw new Error('not a decimal amount');
  const sign = m[1] ? -1n : 1n;
  const units = sign * BigInt(m[2]);
  const nanos = sign * BigInt((m[3] ?? '').padEnd(9, '0'));
  return { currency_code: currency, units: units.toString(), nanos: Number(nanos) };
}

// mask shows only the last four characters of an account number, with the
// country prefix of an IBAN kept as the contract's examples do.
export function mask(number) {
  const compact = number.replace(/\s+/g, '');
  const last4 = compact.slice(-4);
  const iban = /^[A-Z]{2}[0-9]{2}/.test(compact);
  return { last4, display: iban ? `${compact.slice(0, 2)}•• •••• ${last4}` : `•••• ${last4}` };
}

const day = 24 * 60 * 60 * 1000;

/**
 * Bank is the in-file bank: customers, their consents and accounts. Full
 * account numbers stay in here; only mask() of them leaves.
 */
export class Bank {
  constructor(now = Date.now()) {
    const yesterday = new Date(now - day);
    yesterday.setUTCHours(0, 0, 0, 0);
    this.closedAt = yesterday; // the business day the closing balances refer to
    this.changedAt = new Date(now - 5 * 60 * 1000); // last intraday change
    // Consents the bank granted, by id. Each names its customer, scopes and validity.
    this.consents = new Map([
      ['consent-alice-1', { customer: 'alice', scopes: ['ACCOUNTS', 'BALANCES'], validUntil: now + 90 * day }],
      ['consent-bob-1', { customer: 'bob', scopes: ['ACCOUNTS', 'BALANCES'], validUntil: now + 90 * day }],
      // Accounts only: GetBalances answers CONSENT_REQUIRED.
      ['consent-alice-accounts-only', { customer: 'alice', scopes: ['ACCOUNTS'], validUntil: now + 90 * day }],
      // Over: every call answers CONSENT_EXPIRED.
      ['consent-alice-expired', { customer: 'alice', scopes: ['ACCOUNTS', 'BALANCES'], validUntil: now - day }],
      // Dave's branch is down: every data call answers BANK_UNAVAILABLE.
      ['consent-dave-1', { customer: 'dave', scopes: ['ACCOUNTS', 'BALANCES'], validUntil: now + 90 * day }],
    ]);
    this.down = new Set(['dave']);
    this.accounts = new Map([
      ['alice', [
        { id: 'acc-alice-current', name: 'Everyday account', number: 'DE89 3704 0044 0532 0130 00', type: 'ACCOUNT_TYPE_CURRENT', currency: 'EUR', booked: '1520.35', available: '1490.35' },
        { id: 'acc-alice-savings', name: 'Rainy day savings', number: 'DE02 1203 0000 0000 2020 51', type: 'ACCOUNT_TYPE_SAVINGS', currency: 'EUR', booked: '10250.00', available: '10250.00' },
      ]],
      ['bob', [
        { id: 'acc-bob-current', name: 'Current account', number: '20-00-00 55779911', type: 'ACCOUNT_TYPE_CURRENT', currency: 'GBP', booked: '-42.50', available: '457.50', overdraft: '500.00' },
        { id: 'acc-bob-card', name: 'Cashback credit card', number: '5425 2334 3010 9903', type: 'ACCOUNT_TYPE_CARD', currency: 'GBP', booked: '-120.99', available: '1879.01', limit: '2000.00' },
      ]],
      ['dave', [
        { id: 'acc-dave-current', name: 'Current account', number: 'FR76 3000 6000 0112 3456 7890 189', type: 'ACCOUNT_TYPE_CURRENT', currency: 'EUR', booked: '300.00', available: '300.00' },
      ]],
    ]);
  }

  // consent returns the consent id names, refused as the contract demands.
  consent(id, scope, now = Date.now()) {
    const c = this.consents.get(id);
    // Unknown (never granted, deleted, lost): never NOT_FOUND, which would
    // read as "no such account" and keep a dead link alive.
    if (!c) throw new BankbridgeError('CONSENT_REVOKED_BY_BANK', 'the bank knows no such consent');
    if (c.validUntil <= now) throw new BankbridgeError('CONSENT_EXPIRED', 'the consent has expired at the bank');
    if (this.down.has(c.customer)) {
      throw new BankbridgeError('BANK_UNAVAILABLE', 'the bank did not answer', { retryAfterMs: RETRY_AFTER_BANK_FAILURE_MS });
    }
    if (!c.scopes.includes(scope)) throw new BankbridgeError('CONSENT_REQUIRED', `the consent does not cover ${scope.toLowerCase()}`);
    return c;
  }
}

/** BankAdapter serves a Bank over bankbridge.adapter.v1: ACCOUNTS and BALANCES. */
export class BankAdapter {
  constructor(bank, { bankId = 'node-example', displayName = 'Node Example Bank', version = '1.0.0' } = {}) {
    this.bank = bank;
    this.infoResponse = {
      bank_id: bankId,
      display_name: displayName,
      protocol_version: PROTOCOL_VERSION,
      adapter_version: version,
      // Exactly what this class implements: serviceDefinition checks it.
      capabilities: ['CAPABILITY_ACCOUNTS', 'CAPABILITY_BALANCES'],
      sca_methods: [],
    };
  }

  info() {
    return this.infoResponse;
  }

  // health answers from what the bank showed, without calling it. The in-file
  // bank is always up; one customer's branch being down is not the bank.
  health() {
    return { status: 'HEALTH_STATUS_SERVING', detail: '' };
  }

  async ListAccounts(req) {
    const c = this.bank.consent(req.bank_consent_id, 'ACCOUNTS');
    return {
      accounts: this.bank.accounts.get(c.customer).map((a) => ({
        bank_account_id: a.id,
        display_name: a.name,
        masked_number: mask(a.number),
        type: a.type,
        currency_code: a.currency,
      })),
    };
  }

  async GetBalances(req) {
    const c = this.bank.consent(req.bank_consent_id, 'BALANCES');
    // Another customer's account under this consent is NOT_FOUND, exactly
    // as an account that does not exist: nothing tells them apart.
    const a = this.bank.accounts.get(c.customer).find((x) => x.id === req.bank_account_id);
    if (!a) throw new BankbridgeError('NOT_FOUND', 'the consent has no such account');
    const ts = (d) => ({ seconds: Math.floor(d.getTime() / 1000), nanos: 0 });
    const balances = [
      // The bank's "booked" is end-of-day: ISO closingBooked, as of that day.
      { type: 'BALANCE_TYPE_CLOSING_BOOKED', amount: parseMoney(a.currency, a.booked), as_of: ts(this.bank.closedAt) },
      // Its "available" is intraday, overdraft or credit line included.
      {
        type: 'BALANCE_TYPE_INTERIM_AVAILABLE', amount: parseMoney(a.currency, a.available), as_of: ts(this.bank.changedAt),
        credit_limit_included: Boolean(a.overdraft || a.limit),
      },
    ];
    if (a.limit) balances.push({ type: 'BALANCE_TYPE_CREDIT_LIMIT', amount: parseMoney(a.currency, a.limit), as_of: ts(this.bank.changedAt) });
    return { balances };
  }
}
