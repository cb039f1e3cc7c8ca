// The generated-client test (issue 19): takes the OpenAPI document a
// running gateway serves, validates it with a real validator
// (@apidevtools/swagger-parser), generates a JavaScript client from it with
// a real generator (swagger-typescript-api), and drives the dev stack with
// that client alone: link the sandbox bank (create, then :verify with the
// sandbox's code), list accounts, read a balance, page transactions, then
// read the user's access log and verify its hash chain (chain.mjs).
//
// services/e2e TestGeneratedOpenAPIClient starts the stack and runs it:
//   BANKBRIDGE_GATEWAY_URL  the gateway, https://127.0.0.1:<port>
//   NODE_EXTRA_CA_CERTS     the dev CA's PEM, which signs the gateway's certificate
//   BANKBRIDGE_TOKEN        a user token for BANKBRIDGE_USER
//   BANKBRIDGE_USER, BANKBRIDGE_BANK_LOGIN, BANKBRIDGE_SCA_CODE
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";

import SwaggerParser from "@apidevtools/swagger-parser";
import { generateApi } from "swagger-typescript-api";

import { verifyChain } from "./chain.mjs";

const env = (name) => {
  const v = process.env[name];
  assert.ok(v, `${name} is not set`);
  return v;
};
const gateway = env("BANKBRIDGE_GATEWAY_URL");
const user = env("BANKBRIDGE_USER");

// call runs one client method and returns its data; a refusal fails with
// the status and the google.rpc.Status body.
async function call(what, promise) {
  try {
    return (await promise).data;
  } catch (resp) {
    if (!(resp instanceof Response)) throw resp;
    assert.fail(`${what}: ${resp.status} ${JSON.stringify(resp.error ?? (await resp.text()))}`);
  }
}

// VERB_COLON stands for a custom method's colon while the generator parses
// a route (see generateApi's hooks).
const VERB_COLON = "\u2236";

// reason digs ErrorInfo.reason out of a google.rpc.Status.
const reason = (status) =>
  (status?.details ?? []).find((d) => d["@type"] === "type.googleapis.com/google.rpc.ErrorInfo")?.reason;

// lastSegment is a resource name's id: users/u/accounts/a -> a.
const lastSegment = (name) => name.slice(name.lastIndexOf("/") + 1);

test("a client generated from the served document drives the dev stack", async (t) => {
  const res = await fetch(`${gateway}/openapi.json`);
  assert.equal(res.status, 200);
  const doc = await res.json();

  await t.test("the document is valid Swagger 2.0", async () => {
    // validate dereferences in place: give it a copy.
    const api = await SwaggerParser.validate(structuredClone(doc));
    assert.equal(api.swagger, "2.0");
    assert.ok(Object.keys(api.paths).length >= 40, "fewer than 40 paths");
  });

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bankbridge-openapi-client-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  // The generator writes an ES module.
  fs.writeFileSync(path.join(dir, "package.json"), '{"type":"module"}\n');
  await generateApi({
    spec: structuredClone(doc),
    output: dir,
    fileName: "api.js",
    toJS: true,
    silent: true,
    httpClientType: "fetch",
    // AIP-136 custom methods end their path in ":verb"
    // (/v1/users/{user}/links/{link}:verify), which OpenAPI takes as
    // literal text but swagger-typescript-api reads as an Express-style
    // ":param". Its hooks keep the colon literal: hidden from the route
    // parser, put back in the route it emits.
    hooks: {
      onPreBuildRoutePath: (route) => route.replace(/([}\w]):(\w+)$/, `$1${VERB_COLON}$2`),
      onCreateRoute: (route) => {
        route.request.path = route.request.path.replaceAll(VERB_COLON, ":");
        return route;
      },
    },
  });
  const { Api } = await import(pathToFileURL(path.join(dir, "api.js")).href);
  const api = new Api({
    baseUrl: gateway,
    // The document's bearer security: the client asks for it on every
    // operation marked secure.
    securityWorker: (token) => (token ? { headers: { Authorization: `Bearer ${token}` } } : {}),
  });
  api.setSecurityData(env("BANKBRIDGE_TOKEN"));
  const consent = { headers: { "Bankbridge-Purpose": "CONSENT_MANAGEMENT" } };
  const info = { headers: { "Bankbridge-Purpose": "ACCOUNT_INFORMATION" } };

  let account;
  await t.test("link the sandbox bank: create, then verify with the code", async () => {
    const created = await call(
      "CreateLink",
      api.v1.consentServiceCreateLink(
        user,
        {
          bank_id: "sandbox",
          scopes: ["SCOPE_ACCOUNTS", "SCOPE_BALANCES", "SCOPE_TRANSACTIONS"],
          purposes: ["PURPOSE_ACCOUNT_INFORMATION"],
          bank_login_hint: env("BANKBRIDGE_BANK_LOGIN"),
        },
        {},
        { headers: { ...consent.headers, "Idempotency-Key": randomUUID() } },
      ),
    );
    assert.equal(created.link.state, "CONSENT_STATE_RECEIVED");
    assert.equal(created.link.sca.method, "SCA_METHOD_OTP");
    const verified = await call(
      "VerifyLink",
      api.v1.consentServiceVerifyLink(
        user,
        lastSegment(created.link.name),
        { code: env("BANKBRIDGE_SCA_CODE") },
        { headers: { ...consent.headers, "Idempotency-Key": randomUUID() } },
      ),
    );
    assert.equal(verified.link.state, "CONSENT_STATE_VALID");
  });

  await t.test("list accounts", async () => {
    const listed = await call("ListAccounts", api.v1.balanceServiceListAccounts(user, { page_size: 10 }, info));
    assert.ok(listed.accounts.length > 0, "no accounts");
    account = listed.accounts[0];
    assert.match(account.name, new RegExp(`^users/${user}/accounts/sandbox~`));
    // Masked, as the document says: the last four characters only.
    assert.match(account.masked_number.last4, /^[0-9A-Z]{4}$/);
  });

  await t.test("read a balance", async () => {
    const got = await call("GetBalance", api.v1.balanceServiceGetBalance(user, lastSegment(account.name), info));
    assert.equal(got.balance.name, `${account.name}/balance`);
    assert.ok(got.balance.balances.length > 0, "no balances");
    for (const b of got.balance.balances) {
      // snake_case on the wire, as the document names it.
      assert.match(b.amount.currency_code, /^[A-Z]{3}$/);
      assert.match(b.type, /^BALANCE_TYPE_/);
    }
  });

  await t.test("page transactions", async () => {
    const id = lastSegment(account.name);
    const seen = new Set();
    let token = "";
    let pages = 0;
    do {
      const page = await call(
        "ListTransactions",
        api.v1.balanceServiceListTransactions(user, id, { page_size: 2, ...(token && { page_token: token }) }, info),
      );
      assert.ok(page.transactions.length <= 2, "page larger than page_size");
      for (const tx of page.transactions) {
        assert.ok(!seen.has(tx.name), `${tx.name} on two pages`);
        seen.add(tx.name);
      }
      token = page.next_page_token ?? "";
      pages++;
    } while (token && pages < 50);
    assert.ok(pages >= 2, `one page only (${seen.size} transactions)`);
    assert.equal(token, "", "still a next page after 50");
  });

  await t.test("the access log's chain verifies, and a changed entry breaks it", async () => {
    const entries = [];
    let token = "";
    do {
      const page = await call(
        "ListAccessLog",
        api.v1.consentServiceListAccessLog(user, { page_size: 100, ...(token && { page_token: token }) }, consent),
      );
      entries.push(...page.entries);
      token = page.next_page_token ?? "";
    } while (token);
    // At least the link, its verification, the account list, the balance
    // and the transaction pages.
    assert.ok(verifyChain(entries) >= 5, `${entries.length} entries`);
    const tampered = entries.map((e) => ({ ...e }));
    tampered[0].purpose = "PURPOSE_CUSTOMER_SUPPORT";
    assert.throws(() => verifyChain(tampered), /hash does not match/);
  });

  await t.test("a refusal names its reason", async () => {
    // No Bankbridge-Purpose: 400, and the violation names the header.
    await assert.rejects(api.v1.balanceServiceGetBalance(user, lastSegment(account.name)), (resp) => {
      assert.equal(resp.status, 400);
      assert.equal(reason(resp.error), "INVALID_ARGUMENT");
      const bad = resp.error.details.find((d) => d["@type"] === "type.googleapis.com/google.rpc.BadRequest");
      assert.equal(bad?.field_violations?.[0]?.field, "bankbridge-purpose");
      return true;
    });
  });
});
