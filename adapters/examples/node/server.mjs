#!/usr/bin/env node
// server.mjs starts the example bank adapter: a bankbridge.adapter.v1 gRPC
// server over the in-file bank of bank.mjs. See README.md.
//
//   node server.mjs --listen 127.0.0.1:9500 --api-key-file ./api-key
//
// Every flag has a BANKBRIDGE_ADAPTER_* environment variable; a flag wins.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isIP } from 'node:net';

import grpc from '@grpc/grpc-js';

import { loadContract, serviceDefinition } from './bankbridge.mjs';
import { Bank, BankAdapter } from './bank.mjs';

const here = dirname(fileURLToPath(import.meta.url));

const FLAGS = {
  listen: { env: 'BANKBRIDGE_ADAPTER_LISTEN', default: '127.0.0.1:9500', help: 'host:port to listen on' },
  'api-key-file': { env: 'BANKBRIDGE_ADAPTER_API_KEY_FILE', help: 'file with the API key bankbridge presents, one per line (two during a rotation); re-read every second. Required' },
  'tls-cert': { env: 'BANKBRIDGE_ADAPTER_TLS_CERT', help: 'PEM certificate chain of this server; with --tls-key, serves TLS' },
  'tls-key': { env: 'BANKBRIDGE_ADAPTER_TLS_KEY', help: 'PEM private key of --tls-cert' },
  'tls-client-ca': { env: 'BANKBRIDGE_ADAPTER_TLS_CLIENT_CA', help: 'PEM CA bundle; with it, a client certificate it signs is required (mutual TLS)' },
  'proto-dir': { env: 'BANKBRIDGE_ADAPTER_PROTO_DIR', default: join(here, '..', '..', '..', 'proto'), help: "the repository's proto/ directory" },
  'bank-id': { env: 'BANKBRIDGE_ADAPTER_BANK_ID', default: 'node-example', help: "the bank's id as configured in bankbridge's banks.yaml" },
};

function usage() {
  const lines = Object.entries(FLAGS).map(([name, f]) => `  --${name}  (${f.env})  ${f.help}${f.default ? ` [${f.default}]` : ''}`);
  return `usage: node server.mjs [flags]\n${lines.join('\n')}\n`;
}

function config(argv, env) {
  const options = Object.fromEntries(Object.keys(FLAGS).map((k) => [k, { type: 'string' }]));
  options.help = { type: 'boolean' };
  const { values } = parseArgs({ args: argv, options, strict: true });
  if (values.help) {
    process.stdout.write(usage());
    process.exit(0);
  }
  const cfg = {};
  for (const [name, f] of Object.entries(FLAGS)) cfg[name] = values[name] ?? env[f.env] ?? f.default ?? '';
  if (!cfg['api-key-file']) throw new Error('--api-key-file is required: bankbridge authenticates with an API key');
  if (Boolean(cfg['tls-cert']) !== Boolean(cfg['tls-key'])) throw new Error('--tls-cert and --tls-key go together');
  if (cfg['tls-client-ca'] && !cfg['tls-cert']) throw new Error('--tls-client-ca needs --tls-cert and --tls-key');
  return cfg;
}

// keyFile returns the accepted keys, read again at most once a second, so
// that a rotation needs no restart and takes effect within a second: write
// the new key under the old one, switch bankbridge's secret, then remove
// the old line.
function keyFile(path) {
  const read = () => {
    const keys = readFileSync(path, 'utf8').split('\n').map((l) => l.trim()).filter(Boolean);
    if (keys.length === 0) throw new Error(`${path} holds no key`);
    return keys;
  };
  let keys = read();
  let readAt = Date.now();
  return () => {
    if (Date.now() - readAt >= 1000) {
      readAt = Date.now();
      try {
        keys = read();
      } catch {
        // keep serving with the last good keys while the file is being replaced
      }
    }
    return keys;
  };
}

// log writes one JSON line to stderr. Callers pass no personal data: no
// account numbers, amounts, consent ids or keys.
function log(level, msg, fields = {}) {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: level.toUpperCase(), msg, ...fields })}\n`);
}

function isLoopback(host) {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || (isIP(h) === 4 && h.startsWith('127.')) || h === '::1';
}

async function main() {
  const cfg = config(process.argv.slice(2), process.env);
  const host = cfg.listen.slice(0, cfg.listen.lastIndexOf(':'));
  let creds;
  if (cfg['tls-cert']) {
    const ca = cfg['tls-client-ca'] ? readFileSync(cfg['tls-client-ca']) : null;
    creds = grpc.ServerCredentials.createSsl(ca, [{ cert_chain: readFileSync(cfg['tls-cert']), private_key: readFileSync(cfg['tls-key']) }], Boolean(ca));
  } else {
    // The API key must not cross a network in clear text.
    if (!isLoopback(host)) throw new Error(`plaintext only on loopback; give --tls-cert and --tls-key to listen on ${host}`);
    creds = grpc.ServerCredentials.createInsecure();
  }

  const contract = loadContract(cfg['proto-dir']);
  const adapter = new BankAdapter(new Bank(), { bankId: cfg['bank-id'] });
  const { definition, implementation } = serviceDefinition(contract, adapter, { apiKeys: keyFile(cfg['api-key-file']), log });

  const server = new grpc.Server({
    // bankbridge pings idle connections (banks.yaml keepalive.time, 10s at
    // least); grpc-js does not police client pings, so nothing to permit here.
    'grpc.max_receive_message_length': 4 * 1024 * 1024,
  });
  server.addService(definition, implementation);
  const port = await new Promise((resolve, reject) => {
    server.bindAsync(cfg.listen, creds, (err, p) => (err ? reject(err) : resolve(p)));
  });
  log('info', 'bank adapter serving', { addr: `${host}:${port}`, tls: Boolean(cfg['tls-cert']), mutual_tls: Boolean(cfg['tls-client-ca']), capabilities: adapter.info().capabilities });

  const stop = (signal) => {
    log('info', 'stopping', { signal });
    const timer = setTimeout(() => server.forceShutdown(), 5000);
    timer.unref();
    server.tryShutdown(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

main().catch((err) => {
  log('error', 'bank adapter did not start', { error: err.message });
  process.exit(1);
});
