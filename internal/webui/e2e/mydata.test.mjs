// "My data" on /: export (progress, then the JSON and the ZIP downloaded in the browser) and
// the account's deletion behind a confirm step, against the real api and worker.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import {
  BASE_URL, PHONE, assertAccessible, assertClean, call, devToken, launchBrowser, openPage, screenshot, submitLetter,
} from './harness.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

async function signIn(page, token) {
  await page.goto(`${BASE_URL}/`);
  await page.getByLabel('Access token').fill(token);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('heading', { name: 'My data', exact: true }).waitFor();
}

/** Clicks a download button and returns the file's suggested name and bytes. */
async function download(page, name) {
  const started = page.waitForEvent('download');
  await page.getByRole('button', { name, exact: true }).click();
  const file = await started;
  return { name: file.suggestedFilename(), bytes: await readFile(await file.path()) };
}

describe('my data', () => {
  test('my data: export shows progress, then downloads the JSON and the ZIP of letters; delete asks first, then signs out for good', async () => {
    const user = await devToken({ email: `mydata-e2e-${Date.now()}@example.com` });
    const page = await openPage(browser);
    await signIn(page, user.token);
    await submitLetter(page, { tone: 'professional' });
    await page.locator('#letter[data-state="completed"]').waitFor({ timeout: 30_000 });
    const letter = (await page.locator('#letter').textContent()).trim();

    const asked = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/me/export' && r.request().method() === 'POST');
    await page.getByRole('button', { name: 'Export my data', exact: true }).click();
    const res = await asked;
    assert.equal(res.status(), 202);
    const started = await res.json();
    assert.equal(started.status, 'pending', 'a new export starts pending: the page shows its progress');
    await page.getByRole('status').filter({ hasText: 'Your export is ready: 1 letter' }).waitFor({ timeout: 20_000 });
    assert.equal(await page.locator('#export-progress').isHidden(), true, 'the progress bar goes once it is ready');

    const json = await download(page, 'Download JSON');
    assert.match(json.name, /^careerops-export-\d{8}T\d{6}Z\.json$/);
    const doc = JSON.parse(json.bytes.toString('utf8'));
    assert.equal(doc.user.id, user.userId);
    assert.equal(doc.coverLetters.length, 1);
    assert.equal(doc.coverLetters[0].coverLetter.trim(), letter);
    const zip = await download(page, 'Download ZIP of letters');
    assert.match(zip.name, /^careerops-export-\d{8}T\d{6}Z\.zip$/);
    assert.equal(zip.bytes.subarray(0, 2).toString('latin1'), 'PK', 'the ZIP starts with its signature');
    assert.ok(zip.bytes.includes(Buffer.from('cover-letters/')), 'the ZIP holds the letters folder');

    await assertAccessible(page, '/ with an export ready');
    await screenshot(page, 'my-data', { of: page.locator('.mydata-card') });

    // Deleting asks first; "Keep my account" keeps it.
    await page.getByRole('button', { name: 'Delete my account', exact: true }).click();
    const confirm = page.getByRole('group', { name: 'Delete your account and all your data now?' });
    await confirm.waitFor();
    await assertAccessible(page, '/ asking to confirm the deletion');
    await page.getByRole('button', { name: 'Keep my account', exact: true }).click();
    assert.equal(await confirm.isHidden(), true);
    assert.equal((await call('GET', '/api/cover-letter/jobs', { token: user.token })).status, 200, 'kept: the token works');

    await page.getByRole('button', { name: 'Delete my account', exact: true }).click();
    const erased = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/me' && r.request().method() === 'DELETE');
    await page.getByRole('button', { name: 'Yes, delete everything', exact: true }).click();
    assert.equal((await erased).status(), 204);
    await page.getByText('Your account and all your data were deleted.').waitFor();
    assert.equal((await call('GET', '/api/cover-letter/jobs', { token: user.token })).status, 401, 'the old token is refused');
    assert.equal((await call('GET', `/api/me/exports/${started.id}`, { token: user.token })).status, 401);
    assertClean(page);
  });

  test('my data: readable on a phone, nothing wider than the screen', async () => {
    const user = await devToken({ email: `mydata-phone-${Date.now()}@example.com` });
    const page = await openPage(browser, { viewport: PHONE, mobile: true });
    await signIn(page, user.token);
    await page.getByRole('button', { name: 'Export my data', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'Your export is ready: 0 letters' }).waitFor({ timeout: 20_000 });
    await page.getByRole('button', { name: 'Delete my account', exact: true }).click();
    await page.getByRole('button', { name: 'Keep my account', exact: true }).waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone`);
    const card = await page.locator('.mydata-card').boundingBox();
    assert.ok(card.width <= PHONE.width, `the card is ${card.width}px wide`);
    await assertAccessible(page, '/ on a phone with my data open');
    assertClean(page);
  });
});
