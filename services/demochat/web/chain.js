// Verifies a user's access log as the user can, from the entries alone
// (docs/api.md, "Check your access log"): each entry's hash is the SHA-256
// of its canonical encoding, and each names the hash of the entry before
// it. The same check as tests/openapi/chain.mjs, with the browser's Web
// Crypto in place of node:crypto.

/** The previous_hash of a chain's first entry. */
export const GENESIS = "0".repeat(64);

// micros spells an RFC 3339 time as the hash covers it: UTC, exactly six
// fractional digits (JSON may carry 0, 3, 6 or 9).
function micros(ts) {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(ts);
  if (!m) throw new Error(`access_time ${ts} is not RFC 3339 in UTC`);
  return `${m[1]}.${(m[2] ?? "").padEnd(6, "0").slice(0, 6)}Z`;
}

const utf8 = new TextEncoder();

function hex(buf) {
  return [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** entryHash recomputes an AccessLogEntry's hash from its JSON. */
export async function entryHash(e) {
  // JSON leaves out empty fields and zero enums: they hash as "" and the
  // enum's zero name.
  const fields = [
    String(e.sequence),
    micros(e.access_time),
    e.client_id ?? "",
    e.method ?? "",
    e.resource ?? "",
    e.purpose ?? "PURPOSE_UNSPECIFIED",
    e.scope ?? "SCOPE_UNSPECIFIED",
    e.outcome ?? "ACCESS_OUTCOME_UNSPECIFIED",
    e.reason ?? "",
    e.trace_id ?? "",
  ];
  if (e.subject_id) fields.push(e.subject_id);
  fields.push(e.previous_hash);
  let text = "bankbridge.consent.v1.AccessLogEntry\n";
  for (const f of fields) text += `${utf8.encode(f).length}:${f}\n`;
  return hex(await crypto.subtle.digest("SHA-256", utf8.encode(text)));
}

/**
 * verifyChain checks a whole log (every page of ListAccessLog, in any
 * order): sequences 1..n without a gap, each hash recomputed, each
 * previous_hash the hash before it. It returns the number of entries and
 * throws at the first break.
 */
export async function verifyChain(entries) {
  const sorted = [...entries].sort((a, b) => Number(a.sequence) - Number(b.sequence));
  let previous = GENESIS;
  for (const [i, e] of sorted.entries()) {
    if (Number(e.sequence) !== i + 1) throw new Error(`entry ${i + 1} missing (found ${e.sequence})`);
    if (e.previous_hash !== previous) throw new Error(`entry ${e.sequence}: previous_hash does not match entry ${i}`);
    if ((await entryHash(e)) !== e.hash) throw new Error(`entry ${e.sequence}: hash does not match its fields`);
    previous = e.hash;
  }
  return sorted.length;
}
