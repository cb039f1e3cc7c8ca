// The demo chat's whole story (issue 19), in a real browser: Debian's
// Chromium, headless, driven by playwright-core (no browser of Playwright's
// own is downloaded). It acts as a person would, through the page's buttons
// and composer only, and checks what that person sees: the link's status,
// the balance figure, the transactions, a receipt's total and its card
// transaction, a parcel's status changing live, a fraud alert answered, the
// bank's agent taking over and handing back, the access log with its chain
// intact, and the refusal after revoking the link. It saves a screenshot
// after every step (NN-step.png) and runs axe-core on the page at the
// start, mid-story and at the end, failing on any serious or critical
// violation. It also fails when the page asks for anything outside its own
// origin, breaks its Content-Security-Policy, or throws.
//
// services/e2e TestDemoChatBrowser runs it against the dev stack; by hand,
// against `make dev`:  npm ci && node story.mjs
//
// Environment (all optional):
//   BANKBRIDGE_DEMOCHAT_URL     the page (default http://127.0.0.1:8088/)
//   BANKBRIDGE_DEMOCHAT_USER    the user to pick (default alice)
//   BANKBRIDGE_SCA_CODE         the code the sandbox bank sends (default 123456)
//   BANKBRIDGE_SCREENSHOTS_DIR  where the screenshots go (default ./screenshots)
//   BANKBRIDGE_CHROMIUM         the browser (default /usr/bin/chromium)
//   BANKBRIDGE_STEP_TIMEOUT_MS  how long one step may wait (default 30000)
//   BANKBRIDGE_PARCEL_TIMEOUT_MS how long the parcel may take to be delivered (default 90000)

import { chromium } from 'playwright-core';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const env = process.env;
const cfg = {
  url: env.BANKBRIDGE_DEMOCHAT_URL || 'http://127.0.0.1:8088/',
  user: env.BANKBRIDGE_DEMOCHAT_USER || 'alice',
  code: env.BANKBRIDGE_SCA_CODE || '123456',
  shots: path.resolve(env.BANKBRIDGE_SCREENSHOTS_DIR || path.join(here, 'screenshots')),
  browser: env.BANKBRIDGE_CHROMIUM || '/usr/bin/chromium',
  timeout: Number(env.BANKBRIDGE_STEP_TIMEOUT_MS || 30000),
  parcelTimeout: Number(env.BANKBRIDGE_PARCEL_TIMEOUT_MS || 90000),
};
const origin = new URL(cfg.url).origin;

/** A failed expectation: what a person would have seen instead. */
class StoryError extends Error {}
function expect(ok, message) {
  if (!ok) throw new StoryError(message);
}
/** digits keeps the digits of a figure, so "€1,951.60" and "1.951,60 €" compare equal. */
const digits = (s) => (s ?? '').replace(/\D/g, '');

const tid = (id) => `[data-testid="${id}"]`;

// What the page did that it must not: requests outside its origin, CSP
// violations, uncaught errors.
const offOrigin = [];
const pageErrors = [];

class Story {
  constructor(page, axeSource) {
    this.page = page;
    this.axeSource = axeSource;
    this.steps = [];
    this.axeRuns = [];
  }

  async play() {
    const page = this.page;
    const log = page.locator(tid('chat-log'));
    const input = page.locator(tid('composer-input'));
    const say = async (text, how = 'enter') => {
      await input.fill(text);
      if (how === 'enter') await input.press('Enter');
      else await page.locator(tid('composer-send')).click();
    };

    await this.step('start', async () => {
      const resp = await page.goto(cfg.url, { waitUntil: 'load' });
      expect(resp && resp.ok(), `GET ${cfg.url} answered ${resp && resp.status()}`);
      const csp = resp.headers()['content-security-policy'] || '';
      expect(/default-src 'self'/.test(csp), `the page's Content-Security-Policy is ${JSON.stringify(csp)}, want default-src 'self'`);
      await page.locator(tid('user-picker')).waitFor();
      await log.waitFor({ state: 'attached' });
      await expectVisible(page, 'composer-input', 'composer-send', 'start');
      const live = await log.getAttribute('aria-live');
      expect(live === 'polite', `the chat log's aria-live is ${JSON.stringify(live)}, want "polite"`);
      await this.axe('start');
    });

    await this.step('user-picked', async () => {
      await page.locator(tid('user-picker')).selectOption(cfg.user);
      await page.locator(tid('start')).click();
      await expectEnabled(page.locator(tid('link-bank')), 'the link button after starting');
    });

    await this.step('code-asked', async () => {
      const asks = log.locator('.msg[data-from="assistant"]').filter({ hasText: /code/i });
      const before = await asks.count();
      await page.locator(tid('link-bank')).click();
      await waitCount(asks, before + 1, 'the assistant asking for the code the bank sent');
      return asks.last();
    });

    await this.step('linked', async () => {
      await say(cfg.code, 'enter');
      const status = page.locator(tid('link-status')).last();
      await status.waitFor();
      await expectText(status, /linked/i, 'the link status');
      expect(!/not linked|failed|refused|error/i.test(await status.innerText()), `the link status reads ${JSON.stringify(await status.innerText())}`);
    });

    await this.step('balance', async () => {
      await say('balance', 'click');
      const card = page.locator(tid('balance-card')).last();
      await card.waitFor();
      const amount = (await card.locator(tid('balance-amount')).first().innerText()).trim();
      console.log(`  balance shown: ${amount}`);
      expect(/\d/.test(amount), `the balance figure reads ${JSON.stringify(amount)}`);
      const want = expectedBalance[cfg.user];
      if (want) expect(want.some((w) => digits(amount) === digits(w)), `the balance figure reads ${JSON.stringify(amount)}, want one of the sandbox's ${want.join(', ')} for ${cfg.user}`);
      return card;
    });

    await this.step('transactions', async () => {
      await say('transactions', 'enter');
      const card = page.locator(tid('transactions-card')).last();
      await card.waitFor();
      const rows = card.locator(tid('transaction-row'));
      await rows.first().waitFor();
      const n = await rows.count();
      console.log(`  transactions shown: ${n}`);
      for (let i = 0; i < n; i++) {
        expect(/\d/.test(await rows.nth(i).innerText()), `transaction row ${i + 1} shows no amount: ${JSON.stringify(await rows.nth(i).innerText())}`);
      }
      return card;
    });

    await this.step('receipt', async () => {
      // The shop's receipt: the bank's own receipts of alice's card
      // payments (data-source="issuer") may arrive on the same stream.
      const partnerCards = page.locator(`${tid('receipt-card')}[data-source="partner"]`);
      const before = await partnerCards.count();
      await page.locator(tid('trigger-receipt')).click();
      await waitCount(partnerCards, before + 1, "the shop's receipt card");
      const card = partnerCards.nth(before);
      const total = (await card.locator(tid('receipt-total')).first().innerText()).trim();
      expect(/\d/.test(total), `the receipt's total reads ${JSON.stringify(total)}`);
      // The receipt is linked to its card transaction: the card payment the
      // card names is of the receipt's total.
      const tx = await expectText(card.locator(tid('receipt-transaction')).first(), new RegExp(escapeRe(total)),
        "the receipt's card transaction");
      console.log(`  receipt total: ${total}; its transaction: ${tx.replace(/\s+/g, ' ')}`);
      return card;
    });

    // The parcel: every text its status shows is recorded in the page from
    // the moment the trigger is pressed, so a fast carrier cannot slip a
    // status past the test.
    await page.evaluate(() => {
      window.__parcelStatuses = [];
      const seen = () => {
        const s = document.querySelectorAll('[data-testid="parcel-status"]');
        const last = s.length ? s[s.length - 1].textContent.trim() : '';
        if (last && window.__parcelStatuses[window.__parcelStatuses.length - 1] !== last) window.__parcelStatuses.push(last);
      };
      new MutationObserver(seen).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    await this.step('parcel-registered', async () => {
      await page.locator(tid('trigger-parcel')).click();
      const status = page.locator(tid('parcel-card')).last().locator(tid('parcel-status'));
      await status.waitFor();
      console.log(`  parcel status: ${(await status.innerText()).trim()}`);
      return page.locator(tid('parcel-card')).last();
    });
    await this.step('parcel-moving', async () => {
      await page.waitForFunction(() => window.__parcelStatuses.length >= 2, null, { timeout: cfg.parcelTimeout });
      const seen = await page.evaluate(() => window.__parcelStatuses);
      console.log(`  parcel status changed live: ${seen.join(' → ')}`);
      return page.locator(tid('parcel-card')).last();
    });
    await this.step('parcel-delivered', async () => {
      const status = page.locator(tid('parcel-card')).last().locator(tid('parcel-status'));
      await expectText(status, /delivered/i, 'the parcel status', cfg.parcelTimeout);
      const seen = await page.evaluate(() => window.__parcelStatuses);
      console.log(`  parcel statuses seen: ${seen.join(' → ')}`);
      expect(new Set(seen.map((s) => s.toLowerCase())).size >= 2, `the parcel's status never changed: ${seen.join(' → ')}`);
      return page.locator(tid('parcel-card')).last();
    });

    await this.step('fraud-alert', async () => {
      const before = await page.locator(tid('fraud-alert')).count();
      await page.locator(tid('trigger-fraud')).click();
      await waitCount(page.locator(tid('fraud-alert')), before + 1, 'a fraud alert');
      const alert = page.locator(tid('fraud-alert')).last();
      await expectVisible(alert, 'fraud-was-me', 'fraud-not-me');
      await expectText(alert.locator(tid('fraud-was-me')), /this was me/i, 'the "this was me" button');
      await expectText(alert.locator(tid('fraud-not-me')), /not me/i, 'the "not me" button');
      return alert;
    });
    await this.step('fraud-answered', async () => {
      const alert = page.locator(tid('fraud-alert')).last();
      await alert.locator(tid('fraud-not-me')).click();
      const answer = page.locator(`${tid('fraud-answer')}:visible`).last();
      await answer.waitFor();
      await expectText(answer, /not me|not recogni[sz]ed/i, 'the recorded answer');
      console.log(`  fraud answer: ${(await answer.innerText()).trim()}`);
      await this.axe('mid-story');
      return alert;
    });

    // Support: the sandbox's agent joins as soon as the user asks for a
    // person; then she hands back, takes over again (the trigger) and hands
    // back once more.
    const agentMsgs = log.locator('.msg[data-from="agent"]');
    const handover = page.locator(tid('handover-status'));
    const agentWrites = async (before, what) => {
      await waitCount(agentMsgs, before + 1, what);
      const text = (await agentMsgs.last().innerText()).trim();
      console.log(`  agent wrote: ${text.replace(/\s+/g, ' ')}`);
      expect(/[a-z]{2,}/i.test(text), `the agent's message reads ${JSON.stringify(text)}`);
      return agentMsgs.last();
    };
    const handedBack = async () => {
      await page.locator(tid('trigger-agent-handback')).click();
      const text = await expectText(handover, /assistant/i, 'who is talking after the handback');
      expect(!/agent/i.test(text), `who is talking after the handback reads ${JSON.stringify(text)}`);
      return handover;
    };
    await this.step('person-asked', async () => {
      const before = await agentMsgs.count();
      await page.locator(tid('ask-person')).click();
      await expectText(handover, /agent/i, 'who is talking after asking for a person');
      return agentWrites(before, "the bank agent's greeting");
    });
    await this.step('agent-handed-back', handedBack);
    await this.step('agent-took-over', async () => {
      const before = await agentMsgs.count();
      await page.locator(tid('trigger-agent-takeover')).click();
      await expectText(handover, /agent/i, 'who is talking after the takeover');
      return agentWrites(before, "the bank agent's message after the takeover");
    });
    await this.step('agent-handed-back-again', handedBack);

    await this.step('access-log', async () => {
      const before = await page.locator(tid('access-log')).count();
      await page.locator(tid('open-access-log')).click();
      await waitCount(page.locator(tid('access-log')), before + 1, 'the access log');
      const logCard = page.locator(tid('access-log')).last();
      await logCard.locator(tid('access-log-entry')).first().waitFor();
      const n = await logCard.locator(tid('access-log-entry')).count();
      const chain = page.locator(tid('chain-status')).last();
      await expectText(chain, /chain intact/i, 'the chain check');
      console.log(`  access log: ${n} entries; ${(await chain.innerText()).trim()}`);
      return logCard;
    });

    await this.step('revoked', async () => {
      // Done when the chat answers (a message not the user's own).
      const answers = log.locator('.msg:not([data-from="me"])');
      const before = await answers.count();
      await page.locator(tid('revoke-link')).click();
      await waitCount(answers, before + 1, 'an answer to revoking the link');
      const said = (await answers.last().innerText()).trim();
      console.log(`  the chat answered: ${said.replace(/\s+/g, ' ')}`);
      expect(/revoked/i.test(said), `the answer to revoking reads ${JSON.stringify(said)}`);
    });
    await this.step('refused', async () => {
      const balances = await page.locator(tid('balance-card')).count();
      await say('balance', 'enter');
      const refusal = page.locator(tid('refusal')).last();
      await refusal.waitFor();
      const text = (await refusal.innerText()).trim();
      console.log(`  refusal: ${text.replace(/\s+/g, ' ')}`);
      expect(/revoked/i.test(text), `the refusal reads ${JSON.stringify(text)}, want it to say the link was revoked`);
      expect((await page.locator(tid('balance-card')).count()) === balances, 'a balance card appeared after the link was revoked');
      await this.axe('end');
      return refusal;
    });

    const csp = await page.evaluate(() => window.__cspViolations);
    expect(csp.length === 0, `the page broke its Content-Security-Policy:\n  ${csp.join('\n  ')}`);
    expect(offOrigin.length === 0, `the page asked for things outside ${origin}:\n  ${offOrigin.join('\n  ')}`);
    expect(pageErrors.length === 0, `the page threw:\n  ${pageErrors.join('\n  ')}`);
    const serious = this.axeRuns.reduce((n, r) => n + r.serious, 0);
    console.log(`axe-core: ${this.axeRuns.map((r) => `${r.state}: ${r.total} violations (${r.serious} serious/critical)`).join('; ')}`);
    expect(serious === 0, `axe-core found ${serious} serious or critical violations (listed above)`);
  }

  /**
   * step runs fn, then saves NN-name.png, with what fn returns (a locator)
   * scrolled into view first, for the chat log scrolls; on failure it saves
   * NN-name-FAILED.png and prints the chat's text.
   */
  async step(name, fn) {
    const n = String(this.steps.length + 1).padStart(2, '0');
    const t0 = Date.now();
    try {
      const shown = await fn();
      if (shown) await shown.scrollIntoViewIfNeeded();
    } catch (err) {
      const file = path.join(cfg.shots, `${n}-${name}-FAILED.png`);
      await this.page.screenshot({ path: file, fullPage: true }).catch(() => {});
      const chat = await this.page.locator(tid('chat-log')).innerText({ timeout: 2000 }).catch(() => '(no chat log)');
      console.error(`step ${n} ${name}: FAILED after ${Date.now() - t0} ms (screenshot ${file})\n--- the chat log reads ---\n${chat}\n---`);
      if (pageErrors.length) console.error(`the page threw:\n  ${pageErrors.join('\n  ')}`);
      throw err instanceof StoryError || !(err instanceof Error) ? err : new StoryError(`step ${name}: ${err.message.split('\n')[0]}`);
    }
    await this.page.screenshot({ path: path.join(cfg.shots, `${n}-${name}.png`), fullPage: true });
    this.steps.push(name);
    console.log(`step ${n} ${name}: ok (${Date.now() - t0} ms)`);
  }

  /**
   * axe runs axe-core (from node_modules, injected over CDP, so the page's
   * CSP needs no exception) on the page as it is, prints every violation,
   * and counts the serious and critical ones.
   */
  async axe(state) {
    await this.page.evaluate(this.axeSource);
    const violations = await this.page.evaluate(async () => {
      const r = await window.axe.run(document, { resultTypes: ['violations'] });
      return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')) }));
    });
    const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    for (const v of violations) console.log(`  axe (${state}) ${v.impact}: ${v.id} — ${v.help}\n      ${v.nodes.join('\n      ')}`);
    this.axeRuns.push({ state, total: violations.length, serious: serious.length });
    console.log(`  axe (${state}): ${violations.length} violations, ${serious.length} serious or critical`);
  }
}

/** The sandbox's balances of its customers (adapters/sandbox/fixtures.go), any of which the page may show first. */
const expectedBalance = {
  alice: ['1,951.60', '2,387.11', '1,887.11'],
  bob: ['10,512.34'],
};

async function expectVisible(scope, ...ids) {
  for (const id of ids) {
    const el = scope.locator(tid(id)).first();
    await el.waitFor({ state: 'visible' }).catch(() => {
      throw new StoryError(`${id} is not visible`);
    });
  }
}

async function expectEnabled(locator, what) {
  await locator.waitFor({ state: 'visible' });
  const deadline = Date.now() + cfg.timeout;
  while (!(await locator.isEnabled())) {
    if (Date.now() > deadline) throw new StoryError(`${what} stays disabled`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** expectText waits until locator's text matches re. */
async function expectText(locator, re, what, timeout = cfg.timeout) {
  await locator.waitFor({ timeout });
  const deadline = Date.now() + timeout;
  let text = '';
  for (;;) {
    text = (await locator.innerText()).trim();
    if (re.test(text)) return text;
    if (Date.now() > deadline) throw new StoryError(`${what} reads ${JSON.stringify(text)}, want ${re}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** waitCount waits until locator matches at least n elements. */
async function waitCount(locator, n, what) {
  const deadline = Date.now() + cfg.timeout;
  while ((await locator.count()) < n) {
    if (Date.now() > deadline) throw new StoryError(`${what} did not appear within ${cfg.timeout} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** main plays the story in a fresh browser and answers the exit code. */
async function main() {
  const browser = await chromium.launch({
    executablePath: cfg.browser,
    headless: true,
    // The machine's CPUs are shared: no GPU, and no throttling of timers in
    // the background.
    args: ['--disable-gpu', '--disable-background-timer-throttling', '--disable-renderer-backgrounding'],
  });
  const started = Date.now();
  let exitCode = 0;
  try {
    const context = await browser.newContext({
      viewport: { width: 1280, height: 900 },
      deviceScaleFactor: 1,
      locale: 'en-GB',
      timezoneId: 'Europe/Berlin',
      reducedMotion: 'reduce',
    });
    context.setDefaultTimeout(cfg.timeout);
    // Recorded, not intercepted: interception would sit in the way of the
    // page's streams.
    context.on('request', (req) => {
      const u = req.url();
      if (!u.startsWith('data:') && !u.startsWith('blob:') && new URL(u).origin !== origin) offOrigin.push(u);
    });
    // Run before the page's own scripts (over CDP, so its CSP does not apply
    // to this listener): every CSP violation the page commits is kept.
    await context.addInitScript(() => {
      window.__cspViolations = [];
      document.addEventListener('securitypolicyviolation', (e) => {
        window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} (${e.sourceFile}:${e.lineNumber})`);
      });
    });
    const page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    page.on('console', (msg) => {
      if (msg.type() === 'error' || msg.type() === 'warning') console.log(`  [page ${msg.type()}] ${msg.text()}`);
    });

    await rm(cfg.shots, { recursive: true, force: true });
    await mkdir(cfg.shots, { recursive: true });
    const axeSource = await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

    const story = new Story(page, axeSource);
    await story.play();
    console.log(`\nthe story passed: ${story.steps.length} steps in ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${cfg.shots}`);
  } catch (err) {
    exitCode = 1;
    console.error(`\nFAIL: ${err instanceof StoryError ? err.message : err.stack || err}`);
  } finally {
    await browser.close();
  }
  return exitCode;
}

process.exit(await main());
