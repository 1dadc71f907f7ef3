// Shared by the browser tests: the browser, the API the tests call directly, screenshots.
//
// Environment: BASE_URL (the api, e.g. http://127.0.0.1:8080), CHROMIUM_PATH (defaults to
// /usr/bin/chromium), JWT_SECRET (the api's, to sign unsubscribe links as the worker does),
// MAILPIT_URL (the HTTP side of the Mailpit the worker sends its emails to),
// UPDATE_SCREENSHOTS=1 to rewrite docs/screenshots/*.png.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const BASE_URL = (process.env.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
export const MAILPIT_URL = (process.env.MAILPIT_URL || 'http://127.0.0.1:8025').replace(/\/+$/, '');
const SCREENSHOT_DIR = fileURLToPath(new URL('../../../docs/screenshots/', import.meta.url));
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

/**
 * Starts headless Debian Chromium with a fresh profile (Playwright makes a new temporary
 * user-data-dir per launch) and the flags this machine's closed network needs.
 */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

/**
 * A new context and page. Problems the page reports (uncaught errors, CSP violations,
 * console errors) are collected; assertClean(page) fails the test on any.
 */
export async function openPage(browser, { viewport = DESKTOP, mobile = false } = {}) {
  const context = await browser.newContext({
    viewport,
    deviceScaleFactor: 1,
    isMobile: mobile,
    hasTouch: mobile,
    acceptDownloads: true,
    locale: 'en-GB',
    timezoneId: 'UTC',
  });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE_URL });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.problems = [];
  page.on('pageerror', (err) => page.problems.push(`uncaught: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') page.problems.push(`console: ${msg.text()}`);
  });
  return page;
}

export function assertClean(page, allowed = []) {
  const problems = page.problems.filter((p) => !allowed.some((re) => re.test(p)));
  assert.deepEqual(problems, [], 'the page reported errors');
}

const axeSource = readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/**
 * Runs axe-core's WCAG 2.x A and AA rules (contrast, labels, landmarks, names, ARIA) on the
 * page as it is now, and fails on any violation. axe is evaluated through the DevTools
 * protocol, which the page's CSP does not govern; the page itself loads nothing extra.
 */
export async function assertAccessible(page, what) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(await axeSource);
  const violations = await page.evaluate(async () => {
    const res = await window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
    });
    return res.violations.map((v) => `${v.id} (${v.impact}): ${v.help}: ${v.nodes.map((n) => n.target.join(' ')).slice(0, 5).join(', ')}`);
  });
  assert.deepEqual(violations, [], `accessibility problems on ${what}`);
}

/** Calls the API from the test (not the browser). */
export async function call(method, path, { token, body } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(BASE_URL + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status: res.status, json, text };
}

export async function devToken(body) {
  const res = await call('POST', '/dev/token', { body });
  assert.equal(res.status, 200, `POST /dev/token ${JSON.stringify(body)}: ${res.status} ${res.text}`);
  assert.ok(res.json.token, 'POST /dev/token gave no token');
  return res.json;
}

/** Polls a job's status until want(job) holds; returns the job. */
export async function waitForJob(jobId, token, want, { timeout = 30_000, what = 'the job' } = {}) {
  const deadline = Date.now() + timeout;
  let job;
  while (Date.now() < deadline) {
    const res = await call('GET', `/api/cover-letter/status/${jobId}`, { token });
    assert.equal(res.status, 200, `GET status ${jobId}: ${res.status} ${res.text}`);
    job = res.json;
    if (want(job)) return job;
    await new Promise((r) => { setTimeout(r, 250); });
  }
  assert.fail(`${what} did not get there within ${timeout} ms; last seen: ${JSON.stringify(job)}`);
  return job;
}

/**
 * Writes docs/screenshots/NAME.png when UPDATE_SCREENSHOTS=1 (CI leaves the tree clean): the
 * page, or only the element `of` (a locator) when given.
 */
export async function screenshot(page, name, { fullPage = true, of } = {}) {
  if (process.env.UPDATE_SCREENSHOTS !== '1') return;
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  const options = { path: `${SCREENSHOT_DIR}${name}.png`, animations: 'disabled', caret: 'hide' };
  if (of) await of.screenshot(options);
  else await page.screenshot({ ...options, fullPage });
}

export const SAMPLE = {
  jobDescription: 'Senior Go engineer at Northwind Logistics. You will design and run the services that '
    + 'route 40,000 parcels a day: Go, PostgreSQL, RabbitMQ, Kubernetes. On call one week in six.',
  cvText: 'Ten years of backend work. Built a job queue on PostgreSQL and RabbitMQ that processes 2 '
    + 'million tasks a day; led the move of a payment service to Kubernetes; mentor of four engineers.',
};

/** Fills the form on / and presses "Write my letter"; returns the new job's id. */
export async function submitLetter(page, { tone = 'friendly', jobDescription = SAMPLE.jobDescription } = {}) {
  await page.getByLabel('Job description').fill(jobDescription);
  await page.getByLabel('Your CV').fill(SAMPLE.cvText);
  await page.getByLabel('Tone').selectOption(tone);
  const answered = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/cover-letter' && r.request().method() === 'POST');
  await page.getByRole('button', { name: 'Write my letter', exact: true }).click();
  const res = await answered;
  assert.equal(res.status(), 202, `POST /api/cover-letter: ${res.status()} ${await res.text()}`);
  const { jobId } = await res.json();
  assert.ok(jobId);
  return jobId;
}

/**
 * Signs the token of a user's one-click unsubscribe link, as the worker puts it in every email
 * (internal/auth IssueUnsubscribe: HS256 with JWT_SECRET, audience careerops-unsubscribe).
 */
export function unsubscribeToken(userId) {
  const secret = process.env.JWT_SECRET;
  assert.ok(secret, 'JWT_SECRET is not set: scripts/browser-test.sh passes the api\'s');
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: String(userId), aud: ['careerops-unsubscribe'], iat: now, exp: now + 3600 })}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

/**
 * Polls Mailpit's API until exactly the emails to `to` that want(list) accepts have arrived;
 * returns their summaries (ID, Subject, To, …), newest first. The full message (HTML, Text,
 * headers) is at GET /api/v1/message/{ID}, the HTML as the mail client shows it at
 * /view/{ID}.html.
 */
export async function waitForEmails(to, want, { timeout = 30_000 } = {}) {
  const deadline = Date.now() + timeout;
  const query = encodeURIComponent(`to:"${to}"`);
  let messages = [];
  while (Date.now() < deadline) {
    const res = await fetch(`${MAILPIT_URL}/api/v1/search?query=${query}`);
    if (res.status !== 200) assert.fail(`Mailpit search: ${res.status} ${await res.text()}`);
    ({ messages } = await res.json());
    if (want(messages)) return messages;
    await new Promise((r) => { setTimeout(r, 250); });
  }
  assert.fail(`the emails to ${to} did not arrive in Mailpit within ${timeout} ms; there: ${JSON.stringify(messages.map((m) => m.Subject))}`);
  return messages;
}

/** The full message from Mailpit: Subject, From, To, Text, HTML, MessageID, … */
export async function mailpitMessage(id) {
  const res = await fetch(`${MAILPIT_URL}/api/v1/message/${encodeURIComponent(id)}`);
  assert.equal(res.status, 200, `Mailpit message ${id}: ${res.status}`);
  return res.json();
}
