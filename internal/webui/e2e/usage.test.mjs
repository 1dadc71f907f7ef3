// Usage pictures: the ops page's "Usage and cost" charts and the letter page's token meter, in
// headless Chromium against the real api and worker. A month of finished letters is written
// straight into PostgreSQL (psql on DATABASE_URL, as scripts/browser-test.sh exports it), then
// an admin asks for a rollup run that rebuilds the month (POST /api/ops/usage/refresh).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import {
  BASE_URL, PHONE, assertAccessible, assertClean, call, devToken, launchBrowser, openPage, screenshot,
} from './harness.mjs';

let browser;
let user;
let admin;
before(async () => {
  browser = await launchBrowser();
  user = await devToken({ email: `usage-e2e-${Date.now()}@example.com` });
  admin = await devToken({ email: `usage-e2e-admin-${Date.now()}@example.com`, admin: true });
  seed(user.userId);
  const since = new Date(Date.now() - 32 * 86400e3).toISOString().replace(/\.\d+Z$/, 'Z');
  const refresh = await call('POST', '/api/ops/usage/refresh', { token: admin.token, body: { rebuildFrom: since } });
  assert.equal(refresh.status, 202, refresh.text);
  assert.ok(refresh.json.jobId);
  await waitForRollups(550); // of the 612, those in the last 30 UTC days
});
after(async () => { await browser?.close(); });

/** seed writes 600 finished letters of userId over the last 30 days, and 12 of today. */
function seed(userId) {
  const sql = `
    INSERT INTO cover_letter_jobs (job_id, user_id, status, job_description, cv_text, model, prompt_tokens, completion_tokens,
                                   attempts, created_at, completed_at)
    SELECT 'usage-e2e-' || g, ${Number(userId)},
           CASE WHEN g % 29 = 0 THEN 'failed' WHEN g % 41 = 0 THEN 'cancelled' ELSE 'completed' END,
           'd', 'c', CASE WHEN g % 4 = 0 THEN 'gpt-4o' ELSE 'gpt-4o-mini' END,
           900 + (g * 37) % 600, 250 + (g * 13) % 200, 1 + (g % 7 = 0)::int,
           t - make_interval(secs => 3 + (g * 7) % 20 + CASE WHEN g % 50 = 0 THEN 40 ELSE 0 END), t
    FROM generate_series(1, 612) g,
         LATERAL (SELECT CASE WHEN g > 600 THEN now() - make_interval(mins => g - 600)
                              ELSE now() - make_interval(hours => 24 + (g * 719) % (29 * 24)) END AS t) x`;
  execFileSync('psql', ['-q', '-v', 'ON_ERROR_STOP=1', process.env.DATABASE_URL, '-c', sql], { stdio: 'pipe' });
}

async function waitForRollups(atLeast) {
  const deadline = Date.now() + 60_000;
  let last;
  while (Date.now() < deadline) {
    last = await call('GET', '/api/ops/usage', { token: admin.token });
    assert.equal(last.status, 200, last.text);
    if (last.json.totals.jobs >= atLeast) return last.json;
    await new Promise((r) => { setTimeout(r, 500); });
  }
  assert.fail(`the rollups did not take in the seeded letters within 60 s: ${last?.text}`);
  return null;
}

describe('usage pictures', () => {
  test('usage: /ops draws jobs, tokens, cost and latency over a chosen range', async () => {
    const page = await openPage(browser);
    await page.goto(`${BASE_URL}/ops`);
    await page.getByLabel('Admin access token').fill(admin.token);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('heading', { name: 'Usage and cost', exact: true }).waitFor();
    for (const id of ['chart-jobs', 'chart-tokens', 'chart-cost', 'chart-latency']) {
      await page.locator(`#${id} canvas`).waitFor();
      assert.match(await page.locator(`#${id}-desc`).textContent(), /highest/, `${id} is described in words`);
    }
    const summary = page.locator('#usage-summary');
    await summary.filter({ hasText: /^Last 30 days: [\d,]+ jobs, \d+ dead-lettered/ }).waitFor();
    assert.match(await summary.textContent(), /estimated cost \d+\.\d+/);
    await assertAccessible(page, '/ops with the usage charts');
    await page.locator('#usage-card').scrollIntoViewIfNeeded();
    await screenshot(page, 'usage-ops', { fullPage: false });

    // By the hour over 48 hours: the page asks for it and redraws.
    const answered = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/ops/usage');
    await page.getByLabel('Range').selectOption('48h');
    const res = await answered;
    assert.equal(new URL(res.url()).searchParams.get('groupBy'), 'hour');
    await summary.filter({ hasText: /^Last 48 hours:/ }).waitFor();

    // On a phone the charts fit the screen.
    await page.setViewportSize(PHONE);
    await page.getByLabel('Range').selectOption('30d');
    await summary.filter({ hasText: /^Last 30 days:/ }).waitFor();
    await page.waitForFunction(() => {
      const c = document.querySelector('#chart-jobs canvas');
      return c && c.getBoundingClientRect().right <= window.innerWidth;
    });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `on a phone the ops page is ${overflow} px wider than the screen`);
    await assertAccessible(page, '/ops usage on a phone');
    await page.locator('#usage-card').scrollIntoViewIfNeeded();
    await screenshot(page, 'usage-ops-phone', { fullPage: false });
    assertClean(page);
    await page.context().close();
  });

  test('usage: the letter page shows today\'s tokens against the daily budget', async () => {
    const me = await call('GET', '/api/me/usage', { token: user.token });
    assert.equal(me.status, 200, me.text);
    assert.ok(me.json.today.tokens > 0 && me.json.today.budget > 0, me.text);
    const page = await openPage(browser, { viewport: PHONE, mobile: true });
    await page.goto(`${BASE_URL}/`);
    await page.getByLabel('Access token').fill(user.token);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    const meter = page.getByRole('meter', { name: "Today's LLM tokens" });
    await meter.waitFor();
    assert.equal(Number(await meter.getAttribute('value')), me.json.today.tokens);
    assert.equal(Number(await meter.getAttribute('max')), me.json.today.budget);
    const fmt = new Intl.NumberFormat('en');
    await page.locator('#usage-text').filter({ hasText: `${fmt.format(me.json.today.tokens)} of ${fmt.format(me.json.today.budget)} used` }).waitFor();
    await page.locator('#usage-month').filter({ hasText: /^Last 30 days: [\d,]+ jobs finished/ }).waitFor();
    await assertAccessible(page, 'the letter page with the usage meter');
    await page.locator('#usage').scrollIntoViewIfNeeded();
    await screenshot(page, 'usage-meter-phone', { fullPage: false });
    assertClean(page);
    await page.context().close();
  });
});
