// The email about a letter, end to end: the box on / turns it on, the worker sends it to a real
// SMTP server (Mailpit, which scripts/browser-test.sh starts), and its links work in the browser.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  BASE_URL, DESKTOP, MAILPIT_URL, assertAccessible, assertClean, call, devToken, launchBrowser, mailpitMessage,
  openPage, screenshot, submitLetter, waitForEmails,
} from './harness.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

/** The href of the link named `name` in the page as it is (the email in Mailpit's view). */
async function linkHref(page, name) {
  const link = page.getByRole('link', { name, exact: true });
  assert.equal(await link.count(), 1, `the email has one "${name}" link`);
  return link.getAttribute('href');
}

describe('email', () => {
  test('email: tick the box, write a letter, the email arrives over SMTP; its letter link opens the letter and its unsubscribe link turns emails off', async () => {
    const address = `email-e2e-${Date.now()}@example.com`;
    const user = await devToken({ email: address });
    const page = await openPage(browser);
    await page.goto(`${BASE_URL}/`);
    await page.getByLabel('Access token').fill(user.token);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('heading', { name: 'Write a cover letter', exact: true }).waitFor();
    await page.getByText(`Emails go to ${address}`).waitFor();

    const box = page.getByRole('checkbox', { name: 'Email me when a letter is ready or fails', exact: true });
    assert.equal(await box.isChecked(), false, 'emails are off until the user opts in');
    const saved = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/me/notifications' && r.request().method() === 'PATCH');
    await box.check();
    assert.equal((await saved).status(), 200);
    await page.getByRole('status').filter({ hasText: 'Saved: you will get an email for each letter.' }).waitFor();

    const started = Date.now();
    const jobId = await submitLetter(page, { tone: 'professional' });
    await page.locator('#letter[data-state="completed"]').waitFor({ timeout: 30_000 });
    const letter = await page.locator('#letter').textContent();
    const [summary] = await waitForEmails(address, (m) => m.length > 0);
    const arrived = Date.now() - started;
    // One outcome, one email: nothing more comes after a moment.
    await new Promise((r) => { setTimeout(r, 1_000); });
    assert.equal((await waitForEmails(address, () => true)).length, 1, 'exactly one email for the letter');

    const mail = await mailpitMessage(summary.ID);
    assert.equal(mail.Subject, 'Your cover letter is ready');
    assert.deepEqual(mail.To.map((a) => a.Address), [address]);
    assert.match(mail.From.Address, /@/);
    const letterURL = `${BASE_URL}/?job=${jobId}`;
    assert.ok(mail.Text.includes(letterURL), `the plain text links to the letter: ${mail.Text}`);
    assert.ok(mail.Text.includes(`${BASE_URL}/unsubscribe?token=`), 'the plain text has the unsubscribe link');

    // The HTML as a mail client shows it (Mailpit's view of the message itself, links untouched).
    await page.setViewportSize({ width: 720, height: 560 });
    await page.goto(`${MAILPIT_URL}/view/${summary.ID}.html`);
    await page.getByRole('heading', { name: 'Your cover letter is ready', exact: true }).waitFor();
    await screenshot(page, 'email');
    await page.setViewportSize(DESKTOP);
    assert.equal(await linkHref(page, 'Open my letter'), letterURL);
    const unsubscribeURL = await linkHref(page, 'Unsubscribe');
    assert.ok(unsubscribeURL.startsWith(`${BASE_URL}/unsubscribe?token=`), unsubscribeURL);

    // The letter link: the page opens that letter (the tab is still signed in).
    await page.getByRole('link', { name: 'Open my letter', exact: true }).click();
    await page.waitForURL(letterURL);
    await page.locator('#letter[data-state="completed"]').waitFor();
    assert.equal(await page.locator('#letter').textContent(), letter);
    await assertAccessible(page, 'the letter opened from the email');

    // The unsubscribe link, followed from the email: it asks, then turns emails off.
    await page.goBack();
    await page.getByRole('link', { name: 'Unsubscribe', exact: true }).click();
    await page.waitForURL(unsubscribeURL);
    await page.getByRole('heading', { name: 'Stop emails about your letters?', exact: true }).waitFor();
    assert.equal((await call('GET', '/api/me/notifications', { token: user.token })).json.email, true,
      'opening the link turned emails off before the button was pressed');
    await assertAccessible(page, '/unsubscribe from the email');
    await page.getByRole('button', { name: 'Stop emails', exact: true }).click();
    await page.getByRole('heading', { name: 'You will get no more emails', exact: true }).waitFor();
    await assertAccessible(page, 'the unsubscribe confirmation');
    assert.equal((await call('GET', '/api/me/notifications', { token: user.token })).json.email, false);

    // And the page says so too.
    await page.goto(`${BASE_URL}/`);
    await page.getByText(`Emails go to ${address}`).waitFor();
    assert.equal(await box.isChecked(), false, 'the box is unticked after unsubscribing');
    assertClean(page);
    console.log(`submit to email in Mailpit: ${arrived} ms`);
    await page.context().close();
  });
});
