// The page's client of bankbridge's public REST API, as any product's chat
// would write it: a bearer token bound to one user, the purpose of every
// call in Bankbridge-Purpose, an Idempotency-Key on every write, errors
// read from their ErrorInfo reason, and server streams read as
// newline-delimited JSON with fetch and a ReadableStream. The calls go to
// this page's own origin, which passes /v1/ through to the gateway.

/** ApiError is a refusal: the HTTP status, the ErrorInfo reason and message. */
export class ApiError extends Error {
  constructor(status, reason, message, metadata = {}) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.reason = reason || "";
    this.metadata = metadata;
  }
}

// statusError reads a google.rpc.Status (the gateway's error body, or a
// stream's {"error": ...} line) into an ApiError.
function statusError(httpStatus, st) {
  const info = (st?.details ?? []).find((d) => typeof d?.reason === "string");
  return new ApiError(httpStatus, info?.reason, st?.message, info?.metadata ?? {});
}

/** newKey is a fresh Idempotency-Key (8-128 of A-Z a-z 0-9 _ -). */
export function newKey() {
  return crypto.randomUUID();
}

export class Api {
  constructor() {
    this.token = "";
    this.user = "";
  }

  /** signIn mints a dev token for user (dev mode only; a product's identity provider issues them). */
  async signIn(user) {
    const resp = await fetch("/v1/dev/tokens", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user }),
    });
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) throw statusError(resp.status, body.error ?? body);
    this.token = body.access_token;
    this.user = user;
  }

  headers(purpose, write) {
    const h = { Authorization: `Bearer ${this.token}` };
    if (purpose) h["Bankbridge-Purpose"] = purpose;
    if (write) {
      h["Content-Type"] = "application/json";
      h["Idempotency-Key"] = newKey();
    }
    return h;
  }

  /** get reads path (after /v1/) for purpose. */
  get(path, purpose, query = {}) {
    const q = new URLSearchParams(query).toString();
    return this.#call("GET", path + (q ? `?${q}` : ""), purpose);
  }

  /** post writes body to path (after /v1/) for purpose, with a fresh Idempotency-Key. */
  post(path, purpose, body = {}) {
    return this.#call("POST", path, purpose, body);
  }

  async #call(method, path, purpose, body) {
    const write = method !== "GET";
    const resp = await fetch(`/v1/${path}`, {
      method,
      headers: this.headers(purpose, write),
      body: write ? JSON.stringify(body) : undefined,
    });
    const json = await resp.json().catch(() => ({}));
    if (!resp.ok) throw statusError(resp.status, json);
    return json;
  }

  /**
   * watch opens a server stream and calls onEvent with each event's
   * result. It resolves once the stream is open (the gateway answers its
   * headers when the service has subscribed), and returns a promise that
   * settles when the stream ends: resolved when closed by close(),
   * rejected with an ApiError when the server ends it with an error.
   */
  async watch(path, purpose, onEvent, query = {}) {
    const ctl = new AbortController();
    const q = new URLSearchParams(query).toString();
    const resp = await fetch(`/v1/${path}${q ? `?${q}` : ""}`, {
      headers: this.headers(purpose, false),
      signal: ctl.signal,
    });
    if (!resp.ok) {
      const text = await resp.text();
      let st = {};
      try {
        const first = JSON.parse(text.split("\n")[0]);
        st = first.error ?? first;
      } catch {
        // not JSON: the status says it
      }
      throw statusError(resp.status, st);
    }
    const ended = (async () => {
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let nl;
          while ((nl = buf.indexOf("\n")) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (!line) continue;
            const msg = JSON.parse(line);
            if (msg.error) throw statusError(resp.status === 200 ? 0 : resp.status, msg.error);
            if (msg.result) onEvent(msg.result);
          }
        }
      } catch (err) {
        if (ctl.signal.aborted) return;
        throw err;
      }
    })();
    return { ended, close: () => ctl.abort() };
  }
}
