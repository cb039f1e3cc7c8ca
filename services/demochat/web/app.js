// The demo chat: one user's chat with their bank through bankbridge's
// public REST API. What the user types is read by a tiny intent matcher
// ("balance", "transactions", a two-factor code while one is awaited);
// after they ask for a person it goes to bankbridge's support
// conversation, where the assistant or the bank's agent answers. Receipts,
// parcels, fraud alerts and support messages arrive live on the API's
// streams. The buttons under "The world outside the chat" ask this page's
// server (dev only) to make the sandbox bank, its carrier or a partner
// shop act.
import { Api, ApiError } from "./api.js";
import { verifyChain } from "./chain.js";
import { el, money, isNegative, date, dateTime, enumLabel } from "./dom.js";

const BANK = "sandbox";
const BANK_NAME = "Sandbox Bank";
const PARTNER = "demo-partner";
const PARCEL = "SBX0000000018"; // the sandbox carrier's parcel that ends delivered

// What the demo's link covers: everything the story shows.
const SCOPES = ["SCOPE_ACCOUNTS", "SCOPE_BALANCES", "SCOPE_TRANSACTIONS", "SCOPE_RECEIPTS",
  "SCOPE_SHIPPING", "SCOPE_SUPPORT", "SCOPE_FRAUD_ALERTS"];
const PURPOSES = ["PURPOSE_ACCOUNT_INFORMATION", "PURPOSE_PURCHASE_HISTORY", "PURPOSE_ORDER_TRACKING",
  "PURPOSE_CUSTOMER_SUPPORT", "PURPOSE_FRAUD_PREVENTION"];

const api = new Api();
const state = {
  link: "",            // users/{user}/links/{link}, once verified
  awaitingCode: "",    // the link whose code the next message is
  streams: new Map(),  // name -> {close}
  partnerUserId: "",   // from the opt-in to PARTNER
  parcel: "",          // users/{user}/shipments/{id}
  conversation: "",    // users/{user}/conversations/{id}
  sentMessageIds: new Set(),
  shownMessages: new Set(),
  receiptCards: new Map(),
  parcelCards: new Map(),
  alertCards: new Map(),
};

const $ = (id) => document.getElementById(id);
const log = () => $("chat-log");

// ---- the chat log ------------------------------------------------------

const SENDERS = { me: "You", assistant: "Assistant", agent: "Bank agent", system: "" };

/** say appends a message from who ("me", "assistant", "agent", "system") and returns it. */
function say(from, content, { name, testid, error } = {}) {
  const who = name ?? SENDERS[from];
  const body = typeof content === "string" ? el("p", {}, content) : content;
  const msg = el("div", { class: error ? "msg error" : "msg", dataset: { from, ...(testid ? { testid } : {}) } },
    who ? el("span", { class: "who" }, who) : null, body);
  log().append(msg);
  msg.scrollIntoView({ block: "nearest" });
  return msg;
}

/** refuse shows an API refusal in the chat, with what the user can do. */
function refuse(err, what) {
  const text = refusalText(err, what);
  return say("assistant", el("div", { class: "refusal", dataset: { testid: "refusal", reason: err.reason ?? "" } }, text),
    { error: true });
}

function refusalText(err, what) {
  if (!(err instanceof ApiError)) return `Something went wrong while ${what}: ${err.message}`;
  const why = {
    CONSENT_REVOKED: `you revoked your link to ${BANK_NAME}, so bankbridge no longer reads it. Link the bank again to see it.`,
    CONSENT_REQUIRED: `you have no link to ${BANK_NAME} that covers this. Press “Link Sandbox Bank” first.`,
    CONSENT_REVOKED_BY_BANK: `${BANK_NAME} no longer honours your link. Link the bank again.`,
    CONSENT_EXPIRED: `your link to ${BANK_NAME} expired. Link the bank again.`,
    BANK_LOGIN_REQUIRED: `${BANK_NAME} asks you to log in again: link the bank again.`,
    BANK_UNAVAILABLE: `${BANK_NAME} is not answering right now. Try again in a moment.`,
    TOKEN_EXPIRED: "your session expired. Press Start again.",
  }[err.reason];
  const reason = err.reason ? ` (${err.reason})` : "";
  return `I could not finish ${what}: ${why ?? err.message}${reason}`;
}

// ---- starting ----------------------------------------------------------

const USER_CONTROLS = ["link-bank", "ask-person", "open-access-log", "revoke-link", "trigger-receipt", "trigger-parcel",
  "trigger-fraud", "trigger-agent-takeover", "trigger-agent-handback", "composer-input", "composer-send"];

async function start(ev) {
  ev.preventDefault();
  const user = $("user-picker").value;
  $("start-form").querySelector("button").disabled = true;
  closeStreams();
  Object.assign(state, { link: "", awaitingCode: "", partnerUserId: "", parcel: "", conversation: "" });
  for (const m of [state.sentMessageIds, state.shownMessages, state.receiptCards, state.parcelCards, state.alertCards]) m.clear();
  log().replaceChildren();
  $("handover-status").hidden = true;
  try {
    await api.signIn(user);
  } catch (err) {
    say("system", `Could not start as ${user}: ${err.message}`, { error: true });
    $("start-form").querySelector("button").disabled = false;
    return;
  }
  for (const id of USER_CONTROLS) $(id).disabled = false;
  $("start-form").querySelector("button").disabled = false;
  say("system", `Signed in as ${user} with a dev token.`);
  say("assistant", `Hi ${user}! I can show your balance and recent transactions, receipts, parcels and fraud alerts ` +
    `once you link your bank. Press “Link Sandbox Bank” to start.`);
  $("composer-input").focus();
}

// ---- linking -----------------------------------------------------------

async function linkBank() {
  say("me", "Link my bank");
  try {
    const { link } = await api.post(`users/${api.user}/links`, "CONSENT_MANAGEMENT", {
      bank_id: BANK, scopes: SCOPES, purposes: PURPOSES, bank_login_hint: api.user,
    });
    state.awaitingCode = link.name;
    const hint = link.sca?.instruction ? ` (${link.sca.instruction})` : "";
    say("assistant", `${link.bank_display_name || BANK_NAME} sent you a code${hint}. Enter the code the bank sent:`);
    $("composer-input").focus();
  } catch (err) {
    refuse(err, "linking the bank");
  }
}

async function verifyCode(code) {
  say("me", "•".repeat(code.length), { name: "You (code)" });
  try {
    const { link } = await api.post(`${state.awaitingCode}:verify`, "CONSENT_MANAGEMENT", { code });
    state.awaitingCode = "";
    state.link = link.name;
    const until = link.expire_time ? ` until ${date(link.expire_time)}` : "";
    say("system", `Linked to ${link.bank_display_name || BANK_NAME}${until}: accounts, balances, transactions, receipts, ` +
      `parcels, support and fraud alerts. You can revoke it at any time.`, { testid: "link-status" });
    await openStreams();
  } catch (err) {
    if (err.reason === "SCA_FAILED") {
      const left = err.metadata?.attempts_remaining;
      say("assistant", `That code did not work${left ? ` (${left} attempts left)` : ""}. Enter the code the bank sent:`);
    } else {
      state.awaitingCode = "";
      refuse(err, "checking the code");
    }
  }
}

// ---- live streams ------------------------------------------------------

function closeStreams() {
  for (const s of state.streams.values()) s.close();
  state.streams.clear();
}

/** follow keeps a stream open, resuming after a dropped connection; it stops on a refusal. */
async function follow(name, path, purpose, onEvent) {
  let cursor = "";
  let opened = false;
  const handle = { closed: false, current: null, close() { this.closed = true; this.current?.close(); } };
  state.streams.get(name)?.close();
  state.streams.set(name, handle);
  let ready;
  const first = new Promise((resolve) => { ready = resolve; });
  (async () => {
    for (let attempt = 0; !handle.closed; attempt++) {
      try {
        const s = await api.watch(path, purpose, (ev) => {
          if (ev.cursor) cursor = ev.cursor;
          onEvent(ev);
        }, cursor ? { resume_cursor: cursor } : {});
        handle.current = s;
        opened = true;
        ready();
        attempt = 0;
        await s.ended;
        if (handle.closed) return;
      } catch (err) {
        ready();
        if (handle.closed) return;
        if (err instanceof ApiError && err.reason) {
          if (opened) say("system", `Live ${name} stopped: ${refusalText(err, `following ${name}`).replace(/^I could not finish [^:]*: /, "")}`);
          state.streams.delete(name);
          return;
        }
      }
      await new Promise((r) => setTimeout(r, Math.min(5000, 500 * 2 ** attempt)));
    }
  })();
  await first;
}

async function openStreams() {
  await Promise.all([
    follow("receipts", `users/${api.user}/receipts:watch`, "PURCHASE_HISTORY", onReceiptEvent),
    follow("parcels", `users/${api.user}/shipments:watch`, "ORDER_TRACKING", onShipmentEvent),
    follow("fraud alerts", `users/${api.user}/alerts:watch`, "FRAUD_PREVENTION", onAlertEvent),
  ]);
}

// ---- balance and transactions -----------------------------------------

/** displayBalance is the balance to show: the one the API marks, else docs/api.md's order. */
function displayBalance(balances) {
  const marked = balances.find((b) => b.display);
  if (marked) return marked;
  for (const t of ["INTERIM_AVAILABLE", "EXPECTED", "INTERIM_BOOKED", "CLOSING_BOOKED"]) {
    const b = balances.find((x) => x.type === `BALANCE_TYPE_${t}` && !x.credit_limit_included) ??
      balances.find((x) => x.type === `BALANCE_TYPE_${t}`);
    if (b) return b;
  }
  return undefined;
}

function accountLabel(a) {
  const number = a.masked_number?.display || (a.masked_number?.last4 ? `•••• ${a.masked_number.last4}` : "");
  return [a.display_name || "Account", number].filter(Boolean).join(" ");
}

async function accounts(purpose) {
  const { accounts = [] } = await api.get(`users/${api.user}/accounts`, purpose);
  return accounts;
}

async function showBalance() {
  try {
    const list = await accounts("ACCOUNT_INFORMATION");
    if (!list.length) {
      say("assistant", "Your bank shows no accounts.");
      return;
    }
    const rows = [];
    for (const a of list.slice(0, 4)) {
      const { balance } = await api.get(`${a.name}/balance`, "ACCOUNT_INFORMATION");
      rows.push({ a, balance, shown: displayBalance(balance.balances ?? []) });
    }
    // "My balance" means the everyday account's: a current account first,
    // whatever order the bank lists them in (a card's uninvoiced spending
    // is not what a person asks for).
    const first = Math.max(0, rows.findIndex((r) => r.a.type === "ACCOUNT_TYPE_CURRENT"));
    const [main, ...others] = [rows[first], ...rows.filter((_, i) => i !== first)];
    const card = el("div", { class: "card", dataset: { testid: "balance-card" } },
      el("p", { class: "card-title" }, accountLabel(main.a)),
      el("p", { class: "amount", dataset: { testid: "balance-amount" } }, main.shown ? money(main.shown.amount) : "—"),
      el("p", { class: "sub" }, main.shown ? `${enumLabel(main.shown.type, "BALANCE_TYPE_")} balance, as of ${dateTime(main.shown.as_of)}` : "No balance to show",
        main.balance.stale ? " (the bank did not answer: last known value)" : ""),
      others.length ? el("table", {},
        el("caption", {}, "Your other accounts"),
        el("tbody", {}, others.map((o) => el("tr", {},
          el("th", { scope: "row" }, accountLabel(o.a)),
          el("td", { class: "num" }, o.shown ? money(o.shown.amount) : "—"))))) : null);
    say("assistant", el("div", {}, el("p", {}, "Here is your balance:"), card));
  } catch (err) {
    refuse(err, "reading your balance");
  }
}

async function showTransactions() {
  try {
    const list = await accounts("ACCOUNT_INFORMATION");
    if (!list.length) {
      say("assistant", "Your bank shows no accounts.");
      return;
    }
    const a = list[0];
    const { transactions = [] } = await api.get(`${a.name}/transactions`, "ACCOUNT_INFORMATION", { page_size: 10 });
    const card = el("div", { class: "card", dataset: { testid: "transactions-card" } },
      el("table", {},
        el("caption", {}, `Recent transactions, ${accountLabel(a)}`),
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Date"), el("th", { scope: "col" }, "What"),
          el("th", { scope: "col", class: "num" }, "Amount"))),
        el("tbody", {}, transactions.map((t) => el("tr", { dataset: { testid: "transaction-row" } },
          el("td", {}, date(t.booking_time || t.transaction_time || t.value_time) || "—"),
          el("td", {}, t.counterparty_name || t.merchant_name || t.description || "Transaction",
            t.status === "TRANSACTION_STATUS_PENDING" ? [" ", el("span", { class: "badge" }, "pending")] : null),
          el("td", { class: `num ${isNegative(t.amount) ? "negative" : "positive"}` }, money(t.amount)))))));
    say("assistant", el("div", {}, el("p", {}, transactions.length ? "Your latest transactions:" : "No transactions yet."), card));
  } catch (err) {
    refuse(err, "reading your transactions");
  }
}

// ---- receipts ----------------------------------------------------------

async function triggerReceipt() {
  try {
    if (!state.partnerUserId) {
      const { partner_opt_in: optIn } = await api.post(`users/${api.user}/partnerOptIns`, "CONSENT_MANAGEMENT",
        { partner: PARTNER, scopes: ["SCOPE_RECEIPTS"] });
      state.partnerUserId = optIn.partner_user_id;
      say("system", `You allowed the shop ${PARTNER} to send you receipts. It knows you only by an id of its own.`);
    }
    const out = await demo("receipt", { partner_user_id: state.partnerUserId });
    say("system", `(demo) The shop ${out.partner} sent the receipt of order ${out.order_number}.`);
  } catch (err) {
    refuse(err, "getting a receipt from the shop");
  }
}

// Receipt events are handled one at a time: a receipt's "created" and
// "matched" events often come together, and each reads the API.
let receiptQueue = Promise.resolve();

function onReceiptEvent(ev) {
  receiptQueue = receiptQueue.then(() => handleReceipt(ev));
}

async function handleReceipt(ev) {
  const e = ev.event ?? {};
  if (!e.receipt) return;
  try {
    const { receipt } = await api.get(e.receipt, "PURCHASE_HISTORY");
    if (!state.receiptCards.has(receipt.name)) {
      const card = receiptCard(receipt);
      state.receiptCards.set(receipt.name, card);
      say("assistant", el("div", {}, el("p", {},
        receipt.partner ? `A receipt from ${receipt.merchant_name} arrived:` : `${BANK_NAME} added the receipt of a card payment:`), card));
    }
    const match = e.match?.transaction ? e.match : receipt.match;
    if (match?.transaction) await showMatch(state.receiptCards.get(receipt.name), match);
  } catch (err) {
    refuse(err, "reading a receipt");
  }
}

/** receiptCard lays a receipt out as Messenger's receipt template does. */
function receiptCard(r) {
  const s = r.summary ?? {};
  const items = (r.line_items ?? []).map((i) => el("li", {},
    el("span", {}, i.title, i.subtitle ? el("span", { class: "item-sub" }, i.subtitle) : null,
      el("span", { class: "item-sub" }, `${i.quantity} × ${money(i.unit_price)}`)),
    el("span", {}, money(lineTotal(i)))));
  const pm = r.payment_method;
  const payment = pm ? [enumLabel(pm.type, "PAYMENT_METHOD_TYPE_"),
    pm.masked_number?.last4 ? `•••• ${pm.masked_number.last4}` : ""].filter(Boolean).join(" ") : "";
  const rows = [
    ["Subtotal", s.subtotal], ["Shipping", s.shipping_cost], ["Tax", s.total_tax],
    ...(r.adjustments ?? []).map((a) => [a.name, a.amount, true]),
  ].filter(([, m]) => m);
  return el("div", { class: "card receipt", dataset: { testid: "receipt-card", source: r.partner ? "partner" : "issuer", order: r.order_number ?? "" } },
    el("p", { class: "merchant" }, r.merchant_name),
    el("p", { class: "sub" }, [r.order_number ? `Order ${r.order_number}` : "", date(r.purchase_time)].filter(Boolean).join(" · ")),
    el("ul", { class: "items", "aria-label": "Items" }, items),
    el("dl", {},
      rows.map(([label, m, off]) => [el("dt", {}, label), el("dd", {}, off ? `−${money(m)}` : money(m))]),
      s.total_tax ? null : [el("dt", {}, "Tax"), el("dd", {}, "included")],
      el("dt", { class: "total" }, "Total"), el("dd", { class: "total", dataset: { testid: "receipt-total" } }, money(s.total_cost)),
      payment ? [el("dt", {}, "Paid with"), el("dd", {}, payment)] : null),
    el("p", { class: "linked", dataset: { testid: "receipt-transaction", state: "pending" } }, "Looking for the card payment it belongs to…"));
}

function lineTotal(i) {
  const cents = (BigInt(i.unit_price.units ?? "0") * 100n + BigInt(Math.round((i.unit_price.nanos ?? 0) / 1e7))) * BigInt(i.quantity ?? 1);
  return { currency_code: i.unit_price.currency_code, units: (cents / 100n).toString(), nanos: Number(cents % 100n) * 1e7 };
}

async function showMatch(card, match) {
  const linked = card?.querySelector("[data-testid=receipt-transaction]");
  if (!linked || linked.dataset.state === "matched") return;
  let text = "Belongs to your card payment";
  try {
    const { transaction: t } = await api.get(match.transaction, "ACCOUNT_INFORMATION");
    text = `Belongs to your card payment: ${t.counterparty_name || t.merchant_name || t.description}, ${money(t.amount)}` +
      `${t.status === "TRANSACTION_STATUS_PENDING" ? ", pending" : ""}, ${date(t.booking_time || t.transaction_time)}`;
  } catch {
    // the match stands even when the transaction cannot be read now
  }
  linked.textContent = `${text} (match: ${enumLabel(match.confidence, "MATCH_CONFIDENCE_")})`;
  linked.dataset.state = "matched";
  linked.dataset.transaction = match.transaction;
}

// ---- parcels -----------------------------------------------------------

const PARCEL_STATUS = {
  PENDING: "Waiting for the carrier", INFO_RECEIVED: "Label created", IN_TRANSIT: "In transit",
  OUT_FOR_DELIVERY: "Out for delivery", ATTEMPT_FAILED: "Delivery attempt failed", AVAILABLE_FOR_PICKUP: "Ready for pickup",
  DELIVERED: "Delivered", EXCEPTION: "Held up", RETURNED: "Returned to sender", EXPIRED: "Tracking expired",
};

function parcelStatus(s) {
  return PARCEL_STATUS[String(s ?? "").replace("SHIPMENT_STATUS_", "")] ?? "Unknown";
}

async function triggerParcel() {
  try {
    if (!state.parcel) {
      const { shipment } = await api.post(`users/${api.user}/shipments`, "ORDER_TRACKING", { tracking_number: PARCEL });
      state.parcel = shipment.name;
      parcelCard(shipment);
    }
    const out = await demo("parcel", { tracking_number: PARCEL });
    say("system", `(demo) The carrier started moving parcel ${out.tracking_number}: ${out.steps} updates, a few seconds apart.`);
  } catch (err) {
    refuse(err, "tracking the parcel");
  }
}

function parcelCard(sh) {
  let card = state.parcelCards.get(sh.name);
  if (!card) {
    card = el("div", { class: "card parcel", dataset: { testid: "parcel-card", trackingNumber: sh.tracking_number } },
      el("p", { class: "card-title" }, `Parcel ${sh.tracking_number}`, sh.carrier ? ` (${sh.carrier})` : ""),
      el("p", { class: "status", dataset: { testid: "parcel-status" } }, parcelStatus(sh.status)),
      el("p", { class: "sub", dataset: { role: "where" } }, ""),
      el("ol", { "aria-label": "Tracking history" }));
    state.parcelCards.set(sh.name, card);
    say("assistant", el("div", {}, el("p", {}, "I'm following your parcel:"), card));
  }
  return card;
}

function onShipmentEvent(ev) {
  const e = ev.event ?? {};
  const sh = e.shipment;
  if (!sh?.name || !state.parcelCards.has(sh.name)) return;
  const card = state.parcelCards.get(sh.name);
  if (sh.status) {
    const status = card.querySelector("[data-testid=parcel-status]");
    status.textContent = parcelStatus(sh.status);
    card.dataset.status = sh.status;
  }
  const cp = e.checkpoint;
  if (cp) {
    const where = [cp.location?.city, cp.location?.country_code].filter(Boolean).join(", ");
    card.querySelector("[data-role=where]").textContent =
      [cp.carrier_message, where, dateTime(cp.time)].filter(Boolean).join(" · ");
    card.querySelector("ol").append(el("li", {}, `${parcelStatus(cp.status)}${where ? ` — ${where}` : ""}`));
  }
  if (sh.estimated_delivery_time) card.dataset.eta = sh.estimated_delivery_time;
}

// ---- fraud alerts ------------------------------------------------------

async function triggerFraud() {
  try {
    await demo("fraud", { user: api.user });
    say("system", `(demo) ${BANK_NAME} noticed a suspicious card payment.`);
  } catch (err) {
    refuse(err, "raising a fraud alert");
  }
}

const ANSWERS = { ALERT_RESPONSE_RECOGNISED: "This was me", ALERT_RESPONSE_NOT_RECOGNISED: "Not me" };

function onAlertEvent(ev) {
  const a = ev.alert;
  if (!a?.name) return;
  let card = state.alertCards.get(a.name);
  if (!card) {
    card = el("div", { class: "card fraud", dataset: { testid: "fraud-alert", state: a.state } },
      el("p", { class: "card-title" }, "Was this you?"),
      el("p", {}, a.description || "Your bank noticed unusual activity."),
      el("p", { class: "sub" }, [a.merchant_name, a.amount ? money(a.amount) : "", dateTime(a.activity_time)].filter(Boolean).join(" · ")),
      el("div", { class: "actions" },
        el("button", { type: "button", dataset: { testid: "fraud-was-me" }, on: { click: () => answer(a.name, "ALERT_RESPONSE_RECOGNISED") } }, "This was me"),
        el("button", { type: "button", class: "secondary", dataset: { testid: "fraud-not-me" }, on: { click: () => answer(a.name, "ALERT_RESPONSE_NOT_RECOGNISED") } }, "Not me")),
      el("p", { class: "answer", dataset: { testid: "fraud-answer" }, hidden: true }));
    state.alertCards.set(a.name, card);
    say("assistant", el("div", {}, el("p", {}, `${BANK_NAME} sent a fraud alert:`), card));
  }
  if (a.state === "ALERT_STATE_ACKNOWLEDGED") showAnswer(card, a);
}

async function answer(name, response) {
  const card = state.alertCards.get(name);
  for (const b of card.querySelectorAll("button")) b.disabled = true;
  try {
    const { alert, card_block_offer: offer } = await api.post(`${name}:acknowledge`, "FRAUD_PREVENTION", { response });
    showAnswer(card, alert, offer);
  } catch (err) {
    for (const b of card.querySelectorAll("button")) b.disabled = false;
    refuse(err, "answering the alert");
  }
}

function showAnswer(card, alert, offer) {
  for (const b of card.querySelectorAll("button")) b.disabled = true;
  const p = card.querySelector("[data-testid=fraud-answer]");
  p.textContent = `Recorded: “${ANSWERS[alert.response] ?? "answered"}”${alert.acknowledge_time ? ` at ${dateTime(alert.acknowledge_time)}` : ""}. ` +
    `${BANK_NAME} has your answer.${offer ? " It offers to block the card." : ""}`;
  p.hidden = false;
  card.dataset.state = alert.state;
  card.dataset.response = alert.response;
}

// ---- support: the assistant, the bank's agent --------------------------

function setController(conv) {
  const status = $("handover-status");
  status.hidden = false;
  const agent = conv?.controller === "CONTROLLER_BANK_AGENT";
  status.dataset.controller = agent ? "agent" : "assistant";
  status.textContent = agent
    ? `Talking to: ${conv.agent_display_name ? `${conv.agent_display_name}, ` : ""}${BANK_NAME}'s agent (bank agent)`
    : "Talking to: the assistant";
}

async function ensureConversation() {
  if (state.conversation) return;
  const { conversation } = await api.post(`users/${api.user}/conversations`, "CUSTOMER_SUPPORT", { bank_id: BANK });
  state.conversation = conversation.name;
  setController(conversation);
  // Open the stream before writing: an empty cursor starts at its end.
  await follow("support", `${conversation.name}:stream`, "CUSTOMER_SUPPORT", onConversationEvent);
  // What was written before it opened: the assistant's greeting.
  const { messages = [] } = await api.get(`${conversation.name}/messages`, "CUSTOMER_SUPPORT", { page_size: 10 });
  for (const m of messages.reverse()) showMessage(m);
}

async function askPerson() {
  try {
    await ensureConversation();
    await sendToConversation({ text: "I'd like to talk to a person" });
  } catch (err) {
    refuse(err, "reaching support");
  }
}

async function sendToConversation(message) {
  const id = crypto.randomUUID();
  state.sentMessageIds.add(id);
  say("me", message.text ?? message.postback?.title ?? "");
  await api.post(`${state.conversation}/messages`, "CUSTOMER_SUPPORT", { ...message, client_message_id: id });
}

function onConversationEvent(ev) {
  if (ev.message_added) showMessage(ev.message_added);
  if (ev.control_changed?.conversation) setController(ev.control_changed.conversation);
  if (ev.conversation_closed) {
    say("system", "The support conversation was closed.");
    state.conversation = "";
    state.streams.get("support")?.close();
    state.streams.delete("support");
  }
}

/** showMessage shows a support message once, however often it comes (stream and list). */
function showMessage(m) {
  if (m.name) {
    if (state.shownMessages.has(m.name)) return;
    state.shownMessages.add(m.name);
  }
  switch (m.sender_role) {
    case "PARTICIPANT_ROLE_USER":
      if (!state.sentMessageIds.has(m.client_message_id)) say("me", m.text ?? m.postback?.title ?? "");
      break;
    case "PARTICIPANT_ROLE_ASSISTANT":
      say("assistant", el("div", {}, el("p", {}, m.text ?? ""), quickReplies(m)));
      break;
    case "PARTICIPANT_ROLE_BANK_AGENT":
      say("agent", m.text ?? "", { name: `${m.sender_display_name || "Agent"}, ${BANK_NAME}` });
      break;
    default:
      say("system", m.text ?? "");
  }
}

function quickReplies(m) {
  if (!m.quick_replies?.length) return null;
  return el("div", { class: "quick-replies", role: "group", "aria-label": "Quick replies" },
    m.quick_replies.map((q) => el("button", {
      type: "button", class: "secondary",
      on: { click: () => sendToConversation({ postback: { payload: q.payload, title: q.title } }).catch((err) => refuse(err, "answering")) },
    }, q.title)));
}

async function agentTrigger(kind) {
  try {
    await demo(`agent/${kind}`, { user: api.user });
    say("system", kind === "takeover" ? `(demo) ${BANK_NAME}'s agent asked to take the conversation over.`
      : `(demo) ${BANK_NAME}'s agent handed the conversation back to the assistant.`);
  } catch (err) {
    say("system", `(demo) ${err.message}`, { error: err.status >= 500 });
  }
}

// ---- who read my data --------------------------------------------------

async function openAccessLog() {
  say("me", "Who read my data?");
  try {
    const entries = [];
    let token = "";
    for (let page = 0; page < 100; page++) {
      const r = await api.get(`users/${api.user}/accessLog`, "CONSENT_MANAGEMENT", { page_size: 100, ...(token ? { page_token: token } : {}) });
      entries.push(...(r.entries ?? []));
      token = r.next_page_token ?? "";
      if (!token) break;
    }
    let chain;
    try {
      const n = await verifyChain(entries);
      chain = el("p", { class: "chain-ok", dataset: { testid: "chain-status", intact: "true" } },
        `Chain intact: all ${n} entries recomputed and linked, none missing or changed.`);
    } catch (err) {
      chain = el("p", { class: "chain-broken", dataset: { testid: "chain-status", intact: "false" } },
        `Chain broken: ${err.message}`);
    }
    const newest = [...entries].sort((a, b) => Number(b.sequence) - Number(a.sequence)).slice(0, 15);
    const card = el("div", { class: "card", dataset: { testid: "access-log" } },
      chain,
      el("table", {},
        el("caption", {}, `Your access log: ${entries.length} accesses${entries.length > newest.length ? `, the latest ${newest.length}` : ""}`),
        el("thead", {}, el("tr", {}, ["#", "When", "Who", "What", "Why", "Outcome"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, newest.map((e) => el("tr", { dataset: { testid: "access-log-entry" } },
          el("td", {}, String(e.sequence)),
          el("td", {}, dateTime(e.access_time)),
          el("td", {}, e.client_id ?? ""),
          el("td", {}, (e.method ?? "").split("/").pop()),
          el("td", {}, enumLabel(e.purpose, "PURPOSE_")),
          el("td", {}, enumLabel(e.outcome, "ACCESS_OUTCOME_") + (e.reason ? ` (${e.reason})` : "")))))));
    say("assistant", el("div", {}, el("p", {}, "Every access to your data, allowed or refused, is in your access log. " +
      "I checked its hash chain in this browser:"), card));
  } catch (err) {
    refuse(err, "reading your access log");
  }
}

// ---- revoking ----------------------------------------------------------

async function revokeLink() {
  say("me", "Revoke my link to the bank");
  try {
    let names = state.link ? [state.link] : [];
    if (!names.length) {
      const { links = [] } = await api.get(`users/${api.user}/links`, "CONSENT_MANAGEMENT", { bank_id: BANK, state: "CONSENT_STATE_VALID" });
      names = links.map((l) => l.name);
    }
    if (!names.length) {
      say("assistant", `You have no link to ${BANK_NAME} to revoke.`);
      return;
    }
    for (const name of names) await api.post(`${name}:revoke`, "CONSENT_MANAGEMENT", {});
    state.link = "";
    say("system", `You revoked your link to ${BANK_NAME}. bankbridge stops reading your bank data now.`, { testid: "revoke-status" });
  } catch (err) {
    refuse(err, "revoking the link");
  }
}

// ---- the composer ------------------------------------------------------

async function send(ev) {
  ev.preventDefault();
  const input = $("composer-input");
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  if (state.awaitingCode && /^\d{4,10}$/.test(text)) return verifyCode(text);
  if (/\bbalances?\b/i.test(text)) {
    say("me", text);
    return showBalance();
  }
  if (/\btransactions?\b/i.test(text)) {
    say("me", text);
    return showTransactions();
  }
  if (state.conversation) {
    return sendToConversation({ text }).catch((err) => refuse(err, "sending your message"));
  }
  say("me", text);
  say("assistant", "Try “balance” or “transactions”, or press “Ask for a person”.");
}

// ---- the page's own server: the world outside the chat -----------------

/** demo asks this page's server (dev only) to make the sandbox or a partner act. */
async function demo(trigger, body) {
  const resp = await fetch(`/demo/${trigger}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const json = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new ApiError(resp.status, "", json.error ?? `HTTP ${resp.status}`);
  return json;
}

/** busy disables a button while its action runs. */
function busy(id, fn) {
  $(id).addEventListener("click", async () => {
    const b = $(id);
    b.disabled = true;
    try {
      await fn();
    } finally {
      b.disabled = false;
    }
  });
}

$("start-form").addEventListener("submit", start);
$("composer").addEventListener("submit", send);
busy("link-bank", linkBank);
busy("ask-person", askPerson);
busy("open-access-log", openAccessLog);
busy("revoke-link", revokeLink);
busy("trigger-receipt", triggerReceipt);
busy("trigger-parcel", triggerParcel);
busy("trigger-fraud", triggerFraud);
busy("trigger-agent-takeover", () => agentTrigger("takeover"));
busy("trigger-agent-handback", () => agentTrigger("handback"));
document.body.dataset.ready = "true";
