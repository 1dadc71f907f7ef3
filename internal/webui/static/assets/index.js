// The cover-letter page: sign in, submit a job, watch the letter stream in over Server-Sent
// Events, copy or download it, and reopen past letters.
import {
  $, api, ApiError, Session, setupSignIn, explain, badge, timeElement, el, whileBusy, FINAL_STATUSES,
} from './common.js';

const session = new Session('careerops.token');
// The job whose stream is open, so that a reload picks it up again.
const ACTIVE_JOB = 'careerops.activeJob';
const TONE_NAMES = { professional: 'Professional', friendly: 'Friendly', concise: 'Concise' };

const ui = {
  app: $('#app'),
  compose: $('#compose'),
  jobDescription: $('#job-description'),
  cv: $('#cv'),
  tone: $('#tone'),
  submit: $('#submit'),
  composeError: $('#compose-error'),
  result: $('#result'),
  status: $('#status'),
  meta: $('#job-meta'),
  letter: $('#letter'),
  placeholder: $('#letter-placeholder'),
  jobError: $('#job-error'),
  copy: $('#copy'),
  download: $('#download'),
  cancel: $('#cancel'),
  actionStatus: $('#action-status'),
  history: $('#history'),
  historyEmpty: $('#history-empty'),
  historyError: $('#history-error'),
  historyMore: $('#history-more'),
  historyRefresh: $('#history-refresh'),
  notifyEmail: $('#notify-email'),
  notifyHint: $('#notify-hint'),
  notifyStatus: $('#notify-status'),
  notifyError: $('#notify-error'),
  usage: $('#usage'),
  usageBar: $('#usage-bar'),
  usageText: $('#usage-text'),
  usageMonth: $('#usage-month'),
  exportStart: $('#export-start'),
  exportProgress: $('#export-progress'),
  exportStatus: $('#export-status'),
  exportDownloads: $('#export-downloads'),
  exportJSON: $('#export-json'),
  exportZIP: $('#export-zip'),
  exportError: $('#export-error'),
  eraseStart: $('#erase-start'),
  eraseConfirm: $('#erase-confirm'),
  eraseYes: $('#erase-yes'),
  eraseNo: $('#erase-no'),
  eraseError: $('#erase-error'),
};

// ---- the letter being shown --------------------------------------------------------------

const view = {
  job: null, // the job shown: {jobId, status, tone, attempts, createdAt, ...}
  stream: null, // its JobStream while it runs
  text: '', // the letter as shown (partial while streaming)
  nextIndex: 0, // the index of the next delta expected in this attempt
  late: false, // the stream was joined mid-letter: the start is missing
};

function showJob(job) {
  stopStream();
  view.job = { ...job };
  view.text = '';
  view.nextIndex = 0;
  view.late = false;
  ui.jobError.hidden = true;
  ui.jobError.textContent = '';
  ui.actionStatus.textContent = '';
  ui.meta.replaceChildren(
    `${TONE_NAMES[job.tone] || 'Cover'} letter · requested `,
    timeElement(job.createdAt),
  );
  setStatus(job.status, job.attempts);
  renderLetter(FINAL_STATUSES.has(job.status) ? job.status : 'waiting');
  markCurrent();
}

const STATUS_TEXT = {
  pending: (attempts) => (attempts > 0 ? `Attempt ${attempts} failed: retrying soon…` : 'Queued: waiting for a writer…'),
  processing: (attempts) => (attempts > 1 ? `Writing… (attempt ${attempts})` : 'Writing…'),
  completed: () => '', // the badge says it all
  failed: () => '',
  cancelled: () => '',
};

function setStatus(status, attempts = 0) {
  if (view.job) {
    view.job.status = status;
    view.job.attempts = attempts;
  }
  const text = (STATUS_TEXT[status] || (() => status))(attempts);
  if (ui.status.dataset.status === status && ui.status.dataset.text === text) return; // no repeat announcements
  ui.status.dataset.status = status;
  ui.status.dataset.text = text;
  ui.status.replaceChildren(badge(status), text ? el('span', { class: 'status-text', text }) : '');
  ui.cancel.hidden = FINAL_STATUSES.has(status);
  updateHistoryItem(view.job && view.job.jobId, status);
}

/** state: empty | waiting | streaming | completed | failed | cancelled */
function renderLetter(state) {
  ui.letter.dataset.state = state;
  const busy = state === 'waiting' || state === 'streaming';
  ui.letter.setAttribute('aria-busy', String(busy));
  ui.letter.textContent = (view.late && view.text ? '… ' : '') + view.text;
  ui.placeholder.hidden = Boolean(view.text);
  if (!view.text) {
    ui.placeholder.textContent = {
      empty: 'Your letter appears here, word by word, as it is written.',
      waiting: 'Waiting for the first words…',
      streaming: 'Waiting for the first words…',
      completed: 'This letter is empty.',
      failed: 'No letter was written.',
      cancelled: 'No letter was written.',
    }[state];
  }
  const done = state === 'completed' && view.text !== '';
  ui.copy.disabled = !done;
  ui.download.disabled = !done;
}

function resetText() {
  view.text = '';
  view.nextIndex = 0;
  view.late = false;
}

function onStatus({ status, attempts }) {
  if (!view.job || FINAL_STATUSES.has(view.job.status)) return;
  if (typeof attempts !== 'number') attempts = view.job.attempts || 0;
  // A new attempt starts its letter again from the beginning.
  if (status === 'pending' || (attempts !== view.job.attempts && view.job.attempts > 0)) resetText();
  setStatus(status, attempts);
  renderLetter(status === 'processing' && view.text ? 'streaming' : 'waiting');
}

function onDelta({ text, index, attempt }) {
  if (!view.job || FINAL_STATUSES.has(view.job.status) || typeof text !== 'string') return;
  if (typeof index !== 'number') index = view.nextIndex;
  if (typeof attempt === 'number' && view.job.attempts) {
    if (attempt < view.job.attempts) return; // a late piece of an earlier attempt
    if (attempt > view.job.attempts) {
      resetText();
      view.job.attempts = attempt;
    }
  }
  if (index === 0 && view.nextIndex > 0) {
    resetText(); // a new attempt, whose status event was missed
  } else if (index < view.nextIndex) {
    return; // already shown
  }
  if (view.nextIndex === 0 && index > 0 && !view.text) view.late = true;
  view.text += text;
  view.nextIndex = index + 1;
  if (view.job.status !== 'processing') setStatus('processing', view.job.attempts || 1);
  renderLetter('streaming');
}

async function onFinal(job) {
  if (!view.job || view.job.jobId !== job.jobId) return;
  stopStream();
  if (sessionStorage.getItem(ACTIVE_JOB) === job.jobId) sessionStorage.removeItem(ACTIVE_JOB);
  if (job.status === 'completed' && typeof job.coverLetter !== 'string') {
    try {
      job = await api(statusPath(job.jobId), { token: session.token });
    } catch {
      // keep the streamed text
    }
  }
  Object.assign(view.job, job);
  if (job.status === 'completed') {
    // The stored letter is the truth: it replaces whatever the deltas built.
    view.text = typeof job.coverLetter === 'string' ? job.coverLetter : view.text;
    view.late = false;
  } else {
    ui.jobError.textContent = job.status === 'failed'
      ? `The letter could not be written: ${job.error || 'unknown error'}`
      : job.error || 'The request was cancelled.';
    ui.jobError.hidden = false;
    resetText();
  }
  setStatus(job.status, job.attempts);
  renderLetter(job.status);
  loadHistory();
  loadUsage();
}

// ---- the event stream --------------------------------------------------------------------

const statusPath = (id) => `/api/cover-letter/status/${encodeURIComponent(id)}`;
const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

/**
 * Follows one job's events. A stream token opens the stream once, so after a dropped or
 * ended stream it reconnects with a new token (backing off); after repeated failures it falls
 * back to polling the status.
 */
class JobStream {
  constructor(jobId, handlers) {
    this.jobId = jobId;
    this.on = handlers;
    this.closed = false;
    this.failures = 0;
    this.es = null;
    this.timer = 0;
  }

  async connect() {
    if (this.closed) return;
    let token;
    try {
      ({ token } = await api(`/api/cover-letter/${encodeURIComponent(this.jobId)}/stream-token`, {
        method: 'POST', token: session.token,
      }));
    } catch (err) {
      if (this.closed) return;
      if (err instanceof ApiError && (err.status === 401 || err.status === 404)) {
        this.close();
        this.on.refused(err);
        return;
      }
      this.retryLater();
      return;
    }
    if (this.closed) return;
    const es = new EventSource(`/api/cover-letter/${encodeURIComponent(this.jobId)}/events?token=${encodeURIComponent(token)}`);
    this.es = es;
    const on = (name, fn) => es.addEventListener(name, (ev) => {
      if (this.closed || es !== this.es) return;
      let data;
      try {
        data = JSON.parse(ev.data);
      } catch {
        return;
      }
      fn(data);
    });
    es.addEventListener('open', () => { this.failures = 0; });
    on('status', (d) => this.on.status(d));
    on('delta', (d) => this.on.delta(d));
    for (const name of ['completed', 'failed', 'cancelled']) {
      on(name, (d) => {
        this.close();
        this.on.final({ jobId: this.jobId, status: name, ...d });
      });
    }
    es.addEventListener('error', () => {
      if (this.closed || es !== this.es) return;
      // A stream token opens the stream once: the browser's own retry would reuse it and be
      // refused, so reconnect with a new token instead.
      this.retryLater();
    });
  }

  retryLater() {
    if (this.es) this.es.close();
    this.es = null;
    this.failures += 1;
    if (this.failures > 4) {
      this.poll();
      return;
    }
    this.timer = setTimeout(() => this.connect(), Math.min(500 * 2 ** this.failures, 8000));
  }

  async poll() {
    while (!this.closed) {
      try {
        const job = await api(statusPath(this.jobId), { token: session.token });
        if (this.closed) return;
        if (FINAL_STATUSES.has(job.status)) {
          this.close();
          this.on.final(job);
          return;
        }
        this.on.status(job);
      } catch (err) {
        if (err instanceof ApiError && (err.status === 401 || err.status === 404)) {
          this.close();
          this.on.refused(err);
          return;
        }
      }
      await sleep(3000);
    }
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.es) this.es.close();
    this.es = null;
  }
}

function startStream(jobId) {
  stopStream();
  sessionStorage.setItem(ACTIVE_JOB, jobId);
  view.stream = new JobStream(jobId, {
    status: onStatus,
    delta: onDelta,
    final: onFinal,
    refused: (err) => {
      if (err.status === 401) {
        signIn.signedOut('Your session has ended: sign in again.');
        return;
      }
      sessionStorage.removeItem(ACTIVE_JOB);
      ui.jobError.textContent = 'This letter no longer exists.';
      ui.jobError.hidden = false;
    },
  });
  view.stream.connect();
}

function stopStream() {
  if (view.stream) view.stream.close();
  view.stream = null;
}

/** Scrolls the letter into view when it is off screen (on a phone it sits below the form). */
function reveal() {
  const top = ui.result.getBoundingClientRect().top;
  if (top < 0 || top > window.innerHeight - 80) {
    const smooth = !window.matchMedia('(prefers-reduced-motion: reduce)').matches;
    ui.result.scrollIntoView({ behavior: smooth ? 'smooth' : 'auto', block: 'start' });
  }
}

/** Shows a job of the list (or the one a reload left open), following it if it runs. */
async function openJob(jobId) {
  let job;
  try {
    job = await api(statusPath(jobId), { token: session.token });
  } catch (err) {
    if (sessionStorage.getItem(ACTIVE_JOB) === jobId) sessionStorage.removeItem(ACTIVE_JOB);
    if (err instanceof ApiError && err.status === 401) signIn.signedOut('Your session has ended: sign in again.');
    else ui.historyError.textContent = `Could not open the letter: ${explain(err)}`;
    return;
  }
  showJob(job);
  if (FINAL_STATUSES.has(job.status)) {
    await onFinal(job);
  } else {
    startStream(job.jobId);
  }
}

// ---- submitting --------------------------------------------------------------------------

ui.compose.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  ui.composeError.textContent = '';
  const missing = [ui.jobDescription, ui.cv].filter((f) => !f.value.trim());
  for (const f of [ui.jobDescription, ui.cv]) f.setAttribute('aria-invalid', String(missing.includes(f)));
  if (missing.length) {
    ui.composeError.textContent = missing.length === 2
      ? 'Fill in the job description and your CV.'
      : `Fill in ${missing[0] === ui.cv ? 'your CV' : 'the job description'}.`;
    missing[0].focus();
    return;
  }
  await whileBusy(ui.submit, () => send());
});

async function send() {
  ui.submit.textContent = 'Sending…';
  try {
    const tone = ui.tone.value;
    const res = await api('/api/cover-letter', {
      method: 'POST',
      token: session.token,
      body: { jobDescription: ui.jobDescription.value, cvText: ui.cv.value, tone },
    });
    const now = new Date().toISOString();
    showJob({ jobId: res.jobId, status: res.status || 'pending', tone, attempts: 0, createdAt: now, updatedAt: now });
    startStream(res.jobId);
    loadHistory();
    reveal();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      signIn.signedOut('Your session has ended: sign in again.');
      return;
    }
    ui.composeError.textContent = explain(err);
  } finally {
    ui.submit.textContent = 'Write my letter';
  }
}

// ---- copy, download, cancel --------------------------------------------------------------

let sayTimer = 0;
function say(message) {
  ui.actionStatus.textContent = message;
  clearTimeout(sayTimer);
  sayTimer = setTimeout(() => { ui.actionStatus.textContent = ''; }, 6000);
}

ui.copy.addEventListener('click', async () => {
  try {
    await navigator.clipboard.writeText(view.text);
    say('Copied to the clipboard.');
  } catch {
    const range = document.createRange();
    range.selectNodeContents(ui.letter);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    say('The browser blocked copying: the letter is selected, press Ctrl+C (⌘C on a Mac).');
  }
});

ui.download.addEventListener('click', () => {
  const url = URL.createObjectURL(new Blob([view.text], { type: 'text/plain;charset=utf-8' }));
  const a = el('a', { href: url, download: `cover-letter-${view.job.jobId}.txt`, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  say('Downloaded as a text file.');
});

ui.cancel.addEventListener('click', () => whileBusy(ui.cancel, async () => {
  const job = view.job;
  if (!job) return;
  try {
    const res = await api(`/api/cover-letter/${encodeURIComponent(job.jobId)}`, { method: 'DELETE', token: session.token });
    await onFinal({ ...res, status: res.status || 'cancelled' });
  } catch (err) {
    // 409: it finished meanwhile; the stream brings the result.
    if (!(err instanceof ApiError && err.status === 409)) say(`Could not cancel: ${explain(err)}`);
  }
}));

// ---- past letters ------------------------------------------------------------------------

let historyCursor = '';
let historySeq = 0;

async function loadHistory({ more = false } = {}) {
  if (!session.token) return;
  const seq = ++historySeq;
  const query = new URLSearchParams({ limit: '20' });
  if (more && historyCursor) query.set('cursor', historyCursor);
  let res;
  try {
    res = await api(`/api/cover-letter/jobs?${query}`, { token: session.token });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      signIn.signedOut('Your session has ended: sign in again.');
      return;
    }
    ui.historyError.textContent = `Could not load your letters: ${explain(err)}`;
    return;
  }
  if (seq !== historySeq) return; // a newer load is on its way
  ui.historyError.textContent = '';
  const focused = document.activeElement && document.activeElement.dataset.jobId;
  const items = (res.jobs || []).map(historyItem);
  if (more) ui.history.append(...items);
  else ui.history.replaceChildren(...items);
  historyCursor = res.nextCursor || '';
  ui.historyMore.hidden = !historyCursor;
  ui.historyEmpty.hidden = ui.history.children.length > 0;
  markCurrent();
  if (focused) {
    const again = ui.history.querySelector(`[data-job-id="${CSS.escape(focused)}"]`);
    if (again) again.focus();
  }
}

function historyItem(job) {
  const button = el('button', { type: 'button', class: 'history-item', dataset: { jobId: job.jobId } },
    el('span', { class: 'history-title' },
      el('span', { class: 'history-tone', text: `${TONE_NAMES[job.tone] || 'Cover'} letter` }),
      el('span', { class: 'visually-hidden', text: ', ' }),
      timeElement(job.createdAt)),
    el('span', { class: 'visually-hidden', text: ', ' }),
    badge(job.status));
  button.addEventListener('click', async () => {
    await openJob(job.jobId);
    reveal();
  });
  return el('li', {}, button);
}

function updateHistoryItem(jobId, status) {
  if (!jobId) return;
  const button = ui.history.querySelector(`[data-job-id="${CSS.escape(jobId)}"]`);
  const old = button && button.querySelector('.badge');
  if (old && old.textContent !== status) old.replaceWith(badge(status));
}

function markCurrent() {
  for (const b of ui.history.querySelectorAll('.history-item')) {
    if (view.job && b.dataset.jobId === view.job.jobId) b.setAttribute('aria-current', 'true');
    else b.removeAttribute('aria-current');
  }
}

ui.historyRefresh.addEventListener('click', () => loadHistory());
ui.historyMore.addEventListener('click', () => loadHistory({ more: true }));

// ---- email notifications -----------------------------------------------------------------

const NOTIFICATIONS = '/api/me/notifications';

/** Shows the user's choice of emails: the box, and where emails go. */
function showNotifications({ email, address }) {
  ui.notifyEmail.checked = Boolean(email);
  // Without an address the box can still be unticked, never ticked.
  ui.notifyEmail.disabled = !address && !email;
  ui.notifyHint.textContent = address
    ? `Emails go to ${address}. Each has a link to stop them.`
    : 'There is no email address on file for you, so emails cannot be turned on.';
}

async function loadNotifications() {
  ui.notifyError.textContent = '';
  ui.notifyStatus.textContent = '';
  try {
    showNotifications(await api(NOTIFICATIONS, { token: session.token }));
  } catch (err) {
    ui.notifyEmail.disabled = true;
    ui.notifyError.textContent = `Could not read your email setting: ${explain(err)}`;
  }
}

ui.notifyEmail.addEventListener('change', async () => {
  const want = ui.notifyEmail.checked;
  ui.notifyError.textContent = '';
  ui.notifyStatus.textContent = 'Saving…';
  ui.notifyEmail.disabled = true;
  try {
    showNotifications(await api(NOTIFICATIONS, { method: 'PATCH', body: { email: want }, token: session.token }));
    ui.notifyStatus.textContent = want ? 'Saved: you will get an email for each letter.' : 'Saved: no more emails.';
  } catch (err) {
    ui.notifyEmail.checked = !want;
    ui.notifyEmail.disabled = false;
    ui.notifyStatus.textContent = '';
    if (err instanceof ApiError && err.status === 401) signIn.signedOut('Your session has ended: sign in again.');
    else ui.notifyError.textContent = `Could not save: ${explain(err)}`;
  }
  ui.notifyEmail.focus();
});

// ---- usage against the daily budget -------------------------------------------------------

const fmt = new Intl.NumberFormat('en');

/** loadUsage shows today's tokens against the daily budget, and the last 30 days' letters. */
async function loadUsage() {
  let u;
  try {
    u = await api('/api/me/usage', { token: session.token });
  } catch {
    ui.usage.hidden = true; // the letters work without it
    return;
  }
  const t = u.today || {};
  const resets = t.resetsAt ? new Date(t.resetsAt).toISOString().slice(11, 16) : '00:00';
  if (t.budget > 0) {
    ui.usageBar.max = t.budget;
    ui.usageBar.low = 0.75 * t.budget; // the meter turns amber past three quarters, red past 90 %
    ui.usageBar.high = 0.9 * t.budget;
    ui.usageBar.value = Math.min(t.tokens, t.budget);
    ui.usageBar.hidden = false;
    ui.usageText.textContent = `${fmt.format(t.tokens)} of ${fmt.format(t.budget)} used, ${fmt.format(t.remaining ?? 0)} left; `
      + `the budget starts again at ${resets} UTC.`;
  } else {
    ui.usageBar.hidden = true;
    ui.usageText.textContent = `${fmt.format(t.tokens ?? 0)} used today; there is no daily limit.`;
  }
  const days = u.days || [];
  const letters = days.reduce((n, d) => n + (d.jobs ?? 0), 0);
  const tokens = days.reduce((n, d) => n + (d.promptTokens ?? 0) + (d.completionTokens ?? 0), 0);
  ui.usageMonth.textContent = `Last 30 days: ${fmt.format(letters)} ${letters === 1 ? 'job' : 'jobs'} finished, ${fmt.format(tokens)} tokens.`;
  ui.usage.hidden = false;
}

// ---- my data: export and erasure ---------------------------------------------------------

// The export being written, so that a reload picks it up again.
const ACTIVE_EXPORT = 'careerops.activeExport';
const EXPORT_STEPS = {
  pending: 'Queued: your export will start in a moment…',
  processing: 'Writing your export…',
};
let exportShown = null; // the export shown: {id, status, downloads, ...}
let exportTimer = 0;

function stopExportPolling() {
  clearTimeout(exportTimer);
  exportTimer = 0;
}

function formatBytes(n) {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** Shows an export: its progress while it is written, then its downloads. */
function showExport(exp) {
  exportShown = exp;
  ui.exportError.textContent = '';
  const writing = exp.status in EXPORT_STEPS;
  ui.exportProgress.hidden = !writing;
  ui.exportDownloads.hidden = exp.status !== 'ready';
  if (writing) {
    ui.exportStatus.textContent = EXPORT_STEPS[exp.status];
  } else if (exp.status === 'ready') {
    const letters = exp.coverLetters === 1 ? '1 letter' : `${exp.coverLetters || 0} letters`;
    ui.exportStatus.replaceChildren(
      `Your export is ready: ${letters}, JSON ${formatBytes(exp.sizes.json)}, ZIP ${formatBytes(exp.sizes.zip)}. Available until `,
      timeElement(exp.expiresAt),
      '.',
    );
  } else {
    ui.exportStatus.textContent = '';
    ui.exportError.textContent = `The export could not be written${exp.error ? `: ${exp.error}` : ''}. Try again.`;
  }
  if (writing) sessionStorage.setItem(ACTIVE_EXPORT, exp.id);
  else sessionStorage.removeItem(ACTIVE_EXPORT);
}

/** Follows an export until it is ready or failed, once a second. */
async function followExport(id) {
  stopExportPolling();
  try {
    const exp = await api(`/api/me/exports/${encodeURIComponent(id)}`, { token: session.token });
    showExport(exp);
    if (exp.status in EXPORT_STEPS) exportTimer = setTimeout(() => followExport(id), 1000);
  } catch (err) {
    sessionStorage.removeItem(ACTIVE_EXPORT);
    ui.exportProgress.hidden = true;
    ui.exportStatus.textContent = '';
    if (err instanceof ApiError && err.status === 401) signIn.signedOut('Your session has ended: sign in again.');
    else if (err instanceof ApiError && (err.status === 404 || err.status === 410)) ui.exportError.textContent = 'That export has expired: ask for a new one.';
    else ui.exportError.textContent = `Could not follow your export: ${explain(err)}`;
  }
}

ui.exportStart.addEventListener('click', () => whileBusy(ui.exportStart, async () => {
  ui.exportError.textContent = '';
  ui.exportDownloads.hidden = true;
  try {
    const exp = await api('/api/me/export', { method: 'POST', token: session.token });
    showExport(exp);
    await followExport(exp.id);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) signIn.signedOut('Your session has ended: sign in again.');
    else ui.exportError.textContent = `Could not start the export: ${explain(err)}`;
  }
}));

/** Downloads a file of the export shown (the API needs the token, so a link cannot). */
async function downloadExport(format, button) {
  const url = exportShown && exportShown.downloads && exportShown.downloads[format];
  if (!url) return;
  await whileBusy(button, async () => {
    ui.exportError.textContent = '';
    let res;
    try {
      res = await fetch(url, { headers: { Authorization: `Bearer ${session.token}` }, cache: 'no-store', credentials: 'omit' });
    } catch {
      ui.exportError.textContent = 'The server could not be reached. Check your connection and try again.';
      return;
    }
    if (!res.ok) {
      ui.exportError.textContent = res.status === 410 || res.status === 404
        ? 'That export has expired: ask for a new one.' : `The download failed (HTTP ${res.status}).`;
      return;
    }
    const name = /filename="([^"]+)"/.exec(res.headers.get('Content-Disposition') || '');
    const href = URL.createObjectURL(await res.blob());
    const a = el('a', { href, download: name ? name[1] : `careerops-export.${format}`, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(href), 10_000);
  });
}

ui.exportJSON.addEventListener('click', () => downloadExport('json', ui.exportJSON));
ui.exportZIP.addEventListener('click', () => downloadExport('zip', ui.exportZIP));

function showEraseConfirm(open) {
  ui.eraseConfirm.hidden = !open;
  ui.eraseStart.setAttribute('aria-expanded', String(open));
  ui.eraseError.textContent = '';
  if (open) ui.eraseNo.focus();
}

ui.eraseStart.addEventListener('click', () => showEraseConfirm(ui.eraseConfirm.hidden));
ui.eraseNo.addEventListener('click', () => {
  showEraseConfirm(false);
  ui.eraseStart.focus();
});
ui.eraseYes.addEventListener('click', () => whileBusy(ui.eraseYes, async () => {
  try {
    await api('/api/me', { method: 'DELETE', token: session.token });
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      ui.eraseError.textContent = `Your account was not deleted: ${explain(err)}`;
      return;
    }
  }
  signIn.signedOut('Your account and all your data were deleted.');
}));

function clearMyData() {
  stopExportPolling();
  exportShown = null;
  ui.exportProgress.hidden = true;
  ui.exportStatus.textContent = '';
  ui.exportDownloads.hidden = true;
  ui.exportError.textContent = '';
  ui.eraseConfirm.hidden = true;
  ui.eraseStart.setAttribute('aria-expanded', 'false');
  ui.eraseError.textContent = '';
}

// ---- start -------------------------------------------------------------------------------

function clearView() {
  stopStream();
  view.job = null;
  resetText();
  ui.status.replaceChildren();
  delete ui.status.dataset.status;
  delete ui.status.dataset.text;
  ui.meta.textContent = '';
  ui.jobError.hidden = true;
  ui.cancel.hidden = true;
  renderLetter('empty');
  ui.history.replaceChildren();
  ui.notifyEmail.checked = false;
  ui.notifyHint.textContent = '';
  ui.notifyStatus.textContent = '';
  ui.notifyError.textContent = '';
  ui.historyEmpty.hidden = true;
  ui.historyMore.hidden = true;
  historyCursor = '';
  ui.usage.hidden = true;
  clearMyData();
}

const signIn = setupSignIn({
  session,
  check: (token) => api('/api/cover-letter/jobs?limit=1', { token }),
  async onSignedIn() {
    ui.app.hidden = false;
    // An email's link names its job: /?job=ID.
    const linked = new URLSearchParams(window.location.search).get('job');
    const active = linked || sessionStorage.getItem(ACTIVE_JOB);
    const activeExport = sessionStorage.getItem(ACTIVE_EXPORT);
    await Promise.all([loadHistory(), loadNotifications(), loadUsage(), active ? openJob(active) : null,
      activeExport ? followExport(activeExport) : null]);
  },
  onSignedOut() {
    ui.app.hidden = true;
    sessionStorage.removeItem(ACTIVE_JOB);
    sessionStorage.removeItem(ACTIVE_EXPORT);
    clearView();
  },
});

window.addEventListener('pagehide', stopStream);
clearView();
signIn.start();
