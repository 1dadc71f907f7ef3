// The cover-letter page (/) in headless Chromium against the real api, worker and
// fakeopenai (scripts/browser-test.sh starts them).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import {
  BASE_URL, PHONE, SAMPLE, assertAccessible, assertClean, call, devToken, launchBrowser, openPage, screenshot,
  submitLetter, unsubscribeToken, waitForJob,
} from './harness.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

async function signInWithDevButton(page) {
  await page.goto(`${BASE_URL}/`);
  await page.getByRole('heading', { name: 'Sign in', exact: true }).waitFor();
  // The button appears only once POST /dev/token has answered.
  const dev = page.getByRole('button', { name: 'Get a dev token', exact: true });
  await dev.waitFor();
  await dev.focus();
  await page.keyboard.press('Enter'); // a real button: the keyboard works
  await page.getByRole('heading', { name: 'Write a cover letter', exact: true }).waitFor();
  return page.evaluate(() => sessionStorage.getItem('careerops.token'));
}

async function storedJob(jobId, token) {
  const res = await call('GET', `/api/cover-letter/status/${jobId}`, { token });
  assert.equal(res.status, 200, res.text);
  return res.json;
}

describe('cover-letter page', () => {
  test('index: dev sign-in, submit, the letter streams in delta by delta, then the final letter; copy and download', async () => {
    const page = await openPage(browser);
    const streams = [];
    page.on('request', (r) => { if (new URL(r.url()).pathname.endsWith('/events')) streams.push(r.url()); });
    const token = await signInWithDevButton(page);
    assert.ok(token, 'the dev token is kept in sessionStorage');
    await page.getByRole('button', { name: 'Sign out', exact: true }).waitFor();

    // Record every change of the letter element, from the first delta to the final letter.
    await page.evaluate(() => {
      const letter = document.querySelector('#letter');
      const seen = [];
      window.letterChanges = seen;
      new MutationObserver(() => {
        const s = { state: letter.dataset.state, text: letter.textContent, busy: letter.getAttribute('aria-busy') };
        const last = seen[seen.length - 1];
        if (!last || last.state !== s.state || last.text !== s.text) seen.push(s);
      }).observe(letter, { childList: true, characterData: true, subtree: true, attributes: true });
    });
    const started = Date.now();
    const jobId = await submitLetter(page);
    await page.locator('#letter[data-state="completed"]').waitFor({ timeout: 30_000 });
    const took = Date.now() - started;

    const changes = await page.evaluate(() => window.letterChanges);
    const partial = changes.filter((c) => c.state === 'streaming' && c.text !== '');
    assert.ok(partial.length >= 2, `want at least two partial letters before completion, saw ${partial.length}: ${JSON.stringify(changes.map((c) => [c.state, c.text.length]))}`);
    for (let i = 1; i < partial.length; i += 1) {
      assert.ok(partial[i].text.length > partial[i - 1].text.length && partial[i].text.startsWith(partial[i - 1].text),
        `partial letter ${i} does not extend the one before it`);
    }
    assert.ok(partial.every((c) => c.busy === 'true'), 'aria-busy is true while the letter streams');
    assert.equal(changes.at(-1).state, 'completed', 'the final letter comes last');

    const job = await storedJob(jobId, token);
    assert.equal(job.status, 'completed');
    const shown = await page.locator('#letter').textContent();
    assert.equal(shown, job.coverLetter, 'the page shows the stored letter');
    assert.ok(partial.at(-1).text.length <= shown.length);
    assert.equal(await page.locator('#letter').getAttribute('aria-busy'), 'false');
    await page.locator('#status[data-status="completed"]').waitFor();
    assert.equal((await page.locator('#status').textContent()).trim(), 'completed');

    // One stream, opened with the job-scoped stream token, not the bearer token.
    assert.equal(streams.length, 1, `event streams opened: ${streams.join(', ')}`);
    const streamToken = new URL(streams[0]).searchParams.get('token');
    assert.ok(streamToken && streamToken !== token, 'the stream uses its own short-lived token');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('careerops.activeJob')), null);

    // The list of past letters shows it, completed, and marks it as the one shown.
    const item = page.locator(`.history-item[data-job-id="${jobId}"]`);
    await item.locator('.badge-completed').waitFor();
    assert.equal(await item.getAttribute('aria-current'), 'true');

    await page.getByRole('button', { name: 'Copy', exact: true }).click();
    await page.getByText('Copied to the clipboard.').waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), job.coverLetter);

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download .txt', exact: true }).click(),
    ]);
    assert.equal(download.suggestedFilename(), `cover-letter-${jobId}.txt`);
    assert.equal(await readFile(await download.path(), 'utf8'), job.coverLetter);

    await screenshot(page, 'index-desktop');
    await assertAccessible(page, '/ with a finished letter');
    assertClean(page);
    console.log(`submit to final letter: ${took} ms, ${partial.length} partial letters seen`);
    await page.context().close();
  });

  test('index: a reload mid-stream reopens the stream and still shows the final letter', async () => {
    const page = await openPage(browser);
    // Records the letter's states from the start of every document, the reloaded one included.
    await page.addInitScript(() => {
      window.letterStates = [];
      document.addEventListener('DOMContentLoaded', () => {
        const letter = document.querySelector('#letter');
        new MutationObserver(() => window.letterStates.push(letter.dataset.state))
          .observe(letter, { attributes: true, attributeFilter: ['data-state'] });
      });
    });
    const token = await signInWithDevButton(page);
    const jobId = await submitLetter(page, { tone: 'concise' });
    await page.waitForFunction(() => {
      const letter = document.querySelector('#letter');
      return letter.dataset.state === 'streaming' && letter.textContent.length > 0;
    }, null, { timeout: 20_000 });
    assert.equal(await page.evaluate(() => sessionStorage.getItem('careerops.activeJob')), jobId);
    assert.match(await page.locator('#status').textContent(), /processing\s*Writing…/);
    await screenshot(page, 'index-streaming', { fullPage: false });

    const streams = [];
    page.on('request', (r) => { if (new URL(r.url()).pathname === `/api/cover-letter/${jobId}/events`) streams.push(r.url()); });
    await page.reload();
    await page.locator('#letter[data-state="completed"]').waitFor({ timeout: 30_000 });

    const job = await storedJob(jobId, token);
    assert.equal(job.status, 'completed');
    assert.equal(await page.locator('#letter').textContent(), job.coverLetter);
    assert.ok(streams.length >= 1, 'the reloaded page opened the job\'s event stream');
    const states = await page.evaluate(() => window.letterStates);
    const live = states.findIndex((s) => s === 'waiting' || s === 'streaming');
    assert.ok(live >= 0 && live < states.indexOf('completed'),
      `the reloaded page followed the running job before its end; states: ${states.join(' ')}`);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('careerops.activeJob')), null);
    await page.locator(`.history-item[data-job-id="${jobId}"] .badge-completed`).waitFor();
    assertClean(page);
    await page.context().close();
  });

  test('index: cancel stops a letter being written', async () => {
    const page = await openPage(browser);
    const token = await signInWithDevButton(page);
    const jobId = await submitLetter(page, { tone: 'professional' });
    const cancel = page.getByRole('button', { name: 'Cancel', exact: true });
    await cancel.waitFor();
    const answered = page.waitForResponse((r) => r.request().method() === 'DELETE');
    await cancel.click();
    assert.equal((await answered).status(), 200);
    await page.locator('#letter[data-state="cancelled"]').waitFor({ state: 'attached' }); // empty: not displayed
    await page.locator('#status[data-status="cancelled"]').waitFor();
    assert.ok(await page.locator('#job-error').isVisible());
    assert.ok(await page.locator('#cancel').isHidden(), 'no Cancel button once the job has ended');
    assert.equal((await storedJob(jobId, token)).status, 'cancelled');
    await page.locator(`.history-item[data-job-id="${jobId}"] .badge-cancelled`).waitFor();
    assertClean(page);
    await page.context().close();
  });

  test('index: sign in by pasting a token; a past letter opens from the list; phone widths do not scroll sideways', async () => {
    const user = await call('POST', '/dev/token', { body: {} });
    assert.equal(user.status, 200, user.text);
    // The dev user usually has the letters of the tests above; make sure it has one.
    const list = await call('GET', '/api/cover-letter/jobs?limit=20', { token: user.json.token });
    if (!list.json?.jobs?.some((j) => j.status === 'completed')) {
      const created = await call('POST', '/api/cover-letter', { token: user.json.token, body: { ...SAMPLE, tone: 'professional' } });
      assert.equal(created.status, 202, created.text);
      await waitForJob(created.json.jobId, user.json.token, (j) => j.status === 'completed');
    }
    const page = await openPage(browser, { viewport: PHONE, mobile: true });
    await page.goto(`${BASE_URL}/`);
    await page.getByLabel('Access token').fill('not-a-token');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('alert').filter({ hasText: 'That token was refused' }).waitFor();
    await assertAccessible(page, 'the sign-in card with an error, on a phone');

    await page.getByLabel('Access token').fill(user.json.token);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('heading', { name: 'Write a cover letter', exact: true }).waitFor();
    // Open the newest finished letter from the list.
    const first = page.locator('.history-item', { has: page.locator('.badge-completed') }).first();
    await first.waitFor();
    await first.click();
    await page.locator('#letter[data-state="completed"]').waitFor();
    const jobId = await first.getAttribute('data-job-id');
    const job = await storedJob(jobId, user.json.token);
    assert.equal(await page.locator('#letter').textContent(), job.coverLetter);

    for (const width of [390, 360]) {
      await page.setViewportSize({ width, height: PHONE.height });
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `at ${width} px the page is ${overflow} px wider than the screen`);
    }
    await page.setViewportSize(PHONE);
    await page.locator('#result').scrollIntoViewIfNeeded();
    await screenshot(page, 'index-phone', { fullPage: true });
    await assertAccessible(page, '/ on a phone');
    // The refused token above logged its 401; nothing else may go wrong.
    assertClean(page, [/status of 401/]);
    await page.context().close();
  });

  test('index: the email toggle is labelled, works from the keyboard, is saved and survives a reload; an email\'s ?job= link opens the letter', async () => {
    const page = await openPage(browser);
    const token = await signInWithDevButton(page);
    const box = page.getByRole('checkbox', { name: 'Email me when a letter is ready or fails', exact: true });
    await page.getByText(/^Emails go to .+@/).waitFor();
    assert.equal(await box.isChecked(), false, 'emails are off until the user opts in');

    await box.focus();
    let saved = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/me/notifications' && r.request().method() === 'PATCH');
    await page.keyboard.press('Space');
    assert.equal((await saved).status(), 200);
    await page.getByRole('status').filter({ hasText: 'Saved: you will get an email for each letter.' }).waitFor();
    assert.equal((await call('GET', '/api/me/notifications', { token })).json.email, true);
    await assertAccessible(page, '/ with emails on');

    await page.reload();
    await page.waitForFunction(() => document.querySelector('#notify-email').checked);
    saved = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/me/notifications' && r.request().method() === 'PATCH');
    await box.click();
    assert.equal((await saved).status(), 200);
    await page.getByRole('status').filter({ hasText: 'Saved: no more emails.' }).waitFor();
    await page.reload();
    await page.getByText(/^Emails go to .+@/).waitFor();
    assert.equal(await box.isChecked(), false, 'the box is unticked after a reload');
    assert.equal((await call('GET', '/api/me/notifications', { token })).json.email, false);

    // The link in an email: /?job=ID opens that letter once signed in.
    const created = await call('POST', '/api/cover-letter', { token, body: { ...SAMPLE, tone: 'concise' } });
    assert.equal(created.status, 202, created.text);
    const job = await waitForJob(created.json.jobId, token, (j) => j.status === 'completed', { what: 'the linked letter' });
    await page.goto(`${BASE_URL}/?job=${encodeURIComponent(job.jobId)}`);
    await page.locator('#letter[data-state="completed"]').waitFor();
    assert.equal(await page.locator('#letter').textContent(), job.coverLetter);
    assertClean(page);
    await page.context().close();
  });

  test('unsubscribe: the email\'s link shows a button, which turns emails off without signing in; a bad link says so', async () => {
    const user = await devToken({});
    const on = await call('PATCH', '/api/me/notifications', { token: user.token, body: { email: true } });
    assert.equal(on.status, 200, on.text);
    const page = await openPage(browser);
    await page.goto(`${BASE_URL}/unsubscribe?token=${encodeURIComponent(unsubscribeToken(user.userId))}`);
    await page.getByRole('heading', { name: 'Stop emails about your letters?', exact: true }).waitFor();
    assert.equal((await call('GET', '/api/me/notifications', { token: user.token })).json.email, true,
      'opening the link (as a mail scanner does) turned emails off');
    await assertAccessible(page, '/unsubscribe');
    await screenshot(page, 'unsubscribe', { fullPage: false });
    const button = page.getByRole('button', { name: 'Stop emails', exact: true });
    await button.focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'You will get no more emails', exact: true }).waitFor();
    assert.equal((await call('GET', '/api/me/notifications', { token: user.token })).json.email, false);
    await assertAccessible(page, 'the unsubscribe confirmation');

    const res = await page.goto(`${BASE_URL}/unsubscribe?token=not-a-token`);
    assert.equal(res.status(), 400);
    await page.getByRole('alert').filter({ hasText: 'invalid or has expired' }).waitFor();
    assertClean(page, [/status of 400/]);
    await page.context().close();
  });
});
