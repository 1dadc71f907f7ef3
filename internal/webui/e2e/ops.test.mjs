// The ops page (/ops) in headless Chromium against the real api, worker and fakeopenai.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  BASE_URL, SAMPLE, assertAccessible, assertClean, call, devToken, launchBrowser, openPage, screenshot, waitForJob,
} from './harness.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

describe('ops page', () => {
  test('ops: a dead-lettered job is listed with its error, requeued from the page, and completes', async () => {
    // A job whose first LLM call is rejected (400: permanent): failed and dead-lettered with
    // reason llm_rejected. The fake LLM answers the second call, so the requeued job completes.
    const user = await devToken({ email: `ops-e2e-${Date.now()}@example.com` });
    const created = await call('POST', '/api/cover-letter', {
      token: user.token,
      body: { ...SAMPLE, jobDescription: `${SAMPLE.jobDescription} Ref ${Date.now()}. [[fakeopenai:fail=400x1]]`, tone: 'professional' },
    });
    assert.equal(created.status, 202, created.text);
    const { jobId } = created.json;
    const failed = await waitForJob(jobId, user.token, (j) => j.status === 'failed', { what: 'the rejected job' });
    assert.ok(failed.error, 'a failed job has its error');

    const page = await openPage(browser);
    await page.goto(`${BASE_URL}/ops`);
    await page.getByRole('heading', { name: 'Ops sign-in', exact: true }).waitFor();
    await page.getByRole('button', { name: 'Get a dev token', exact: true }).click(); // asks for admin: true
    await page.getByRole('heading', { name: 'Operations', exact: true }).waitFor();
    assert.ok(await page.evaluate(() => sessionStorage.getItem('careerops.opsToken')));

    // The dead letter shows up (the page refreshes every 5 s), with its reason.
    const row = page.locator(`#dlq tbody tr[data-job-id="${jobId}"]`);
    await row.waitFor({ timeout: 20_000 });
    assert.equal((await row.locator('.tag').textContent()).trim(), 'llm_rejected');

    // The failure is listed with its error, and with a link to its trace when it has one.
    const failure = page.locator(`#failures tbody tr[data-job-id="${jobId}"]`);
    await failure.waitFor();
    assert.ok((await failure.locator('.error-text').textContent()).trim().length > 0);
    if (failed.traceId) {
      const link = failure.getByRole('link', { name: /Trace/ });
      assert.equal(await link.getAttribute('href'), `http://127.0.0.1:16686/trace/${failed.traceId}`);
      assert.equal(await link.getAttribute('target'), '_blank');
    }
    await page.locator('#jobs-by-status [data-status="failed"] dd').filter({ hasNotText: /^0$/ }).waitFor();
    await page.locator('#queues tbody tr').first().waitFor();
    // The scheduled tasks the worker registered when it started, with their next run.
    const retention = page.locator('#schedules tbody tr[data-task="maintenance.retention"]');
    await retention.waitFor();
    assert.ok(await retention.locator('time').count() >= 1, 'the retention task shows its next run');
    await screenshot(page, 'ops-desktop');
    await assertAccessible(page, '/ops with a dead letter');
    // At phone widths the page does not scroll sideways (wide tables scroll in their box).
    for (const width of [390, 360]) {
      await page.setViewportSize({ width, height: 844 });
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `at ${width} px the ops page is ${overflow} px wider than the screen`);
      if (width === 390) {
        await screenshot(page, 'ops-phone');
        await assertAccessible(page, '/ops on a phone');
      }
    }
    await page.setViewportSize({ width: 1280, height: 800 });

    // Requeue it with the keyboard.
    const requeue = page.getByRole('button', { name: `Requeue job ${jobId}` });
    const answered = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/ops/dlq/requeue');
    await requeue.focus();
    await page.keyboard.press('Enter');
    const res = await answered;
    assert.equal(res.status(), 200, `POST /api/ops/dlq/requeue: ${res.status()} ${await res.text()}`);
    assert.deepEqual(JSON.parse(res.request().postData()), { jobId });
    const body = await res.json();
    assert.ok(body.requeued >= 1, `requeued ${JSON.stringify(body)}`);
    await page.getByRole('status').filter({ hasText: /^Requeued 1 job/ }).waitFor();

    const done = await waitForJob(jobId, user.token, (j) => j.status === 'completed', { what: 'the requeued job' });
    assert.ok(done.coverLetter);
    await row.waitFor({ state: 'detached', timeout: 15_000 });
    await failure.waitFor({ state: 'detached', timeout: 15_000 });
    // Focus did not get lost when the row went away.
    assert.notEqual(await page.evaluate(() => document.activeElement?.tagName), 'BODY');

    assertClean(page);
    await page.context().close();
  });

  test('ops: a token without the admin claim is refused with a clear message', async () => {
    const user = await devToken({ email: `ops-e2e-user-${Date.now()}@example.com` });
    assert.equal((await call('GET', '/api/ops/overview', { token: user.token })).status, 403);
    const page = await openPage(browser);
    await page.goto(`${BASE_URL}/ops`);
    await page.getByLabel('Admin access token').fill(user.token);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('alert').filter({ hasText: 'it has no admin claim' }).waitFor();
    assert.equal(await page.locator('#app').isHidden(), true);
    await assertAccessible(page, 'the ops sign-in card with an error');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('careerops.opsToken')), null);
    assertClean(page, [/status of 403/]);
    await page.context().close();
  });
});
