// Small DOM and formatting helpers. Text always goes in as text (never as
// HTML), so nothing an API answer holds can become markup.

/** el makes an element: el("p", {class: "x", dataset: {testid: "y"}}, "text", child). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** money formats a common.v1.Money ({currency_code, units, nanos}) exactly, e.g. "€1,887.11". */
export function money(m) {
  if (!m) return "";
  const units = BigInt(m.units ?? "0");
  const nanos = Number(m.nanos ?? 0);
  const negative = units < 0n || nanos < 0;
  const absUnits = units < 0n ? -units : units;
  const cents = Math.round(Math.abs(nanos) / 1e7);
  const fmt = new Intl.NumberFormat("en-IE", { style: "currency", currency: m.currency_code || "EUR" });
  // Format the whole part with grouping, and the cents as digits, so no
  // float ever holds the amount.
  const parts = fmt.formatToParts(1234.5);
  const symbol = parts.filter((p) => p.type === "currency").map((p) => p.value).join("");
  const symbolFirst = parts.findIndex((p) => p.type === "currency") < parts.findIndex((p) => p.type === "integer");
  const whole = absUnits.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const digits = fmt.resolvedOptions().maximumFractionDigits;
  const frac = digits > 0 ? "." + String(cents).padStart(2, "0").slice(0, digits) : "";
  const body = symbolFirst ? `${symbol}${whole}${frac}` : `${whole}${frac} ${symbol}`;
  return negative ? `−${body}` : body;
}

/** isNegative reports whether a Money is below zero. */
export function isNegative(m) {
  return m && (BigInt(m.units ?? "0") < 0n || Number(m.nanos ?? 0) < 0);
}

/** date formats an RFC 3339 time as a short local date, e.g. "28 Nov 2026". */
export function date(ts) {
  if (!ts) return "";
  return new Date(ts).toLocaleDateString("en-GB", { day: "numeric", month: "short", year: "numeric" });
}

/** time formats an RFC 3339 time as a local date and time. */
export function dateTime(ts) {
  if (!ts) return "";
  return new Date(ts).toLocaleString("en-GB", { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/** enumLabel turns "SHIPMENT_STATUS_IN_TRANSIT" into "in transit" after a prefix. */
export function enumLabel(v, prefix) {
  return String(v ?? "").replace(prefix, "").toLowerCase().replaceAll("_", " ");
}
