// The ops page: queue depth and consumers, jobs by status, recent failures with their traces,
// and the dead-letter queue with requeue buttons. Refreshes every 5 s. The usage and cost
// charts (usage.js) load when the page opens, the range changes or "Refresh now" is pressed.
import {
  $, api, ApiError, Session, setupSignIn, explain, timeElement, el, clock, whileBusy, STATUSES,
} from './common.js';
import { setupUsage } from './usage.js';

const session = new Session('careerops.opsToken');
const REFRESH_MS = 5000;

const ui = {
  app: $('#app'),
  updated: $('#updated'),
  autoRefresh: $('#auto-refresh'),
  refresh: $('#refresh'),
  error: $('#ops-error'),
  notice: $('#ops-notice'),
  jobsByStatus: $('#jobs-by-status'),
  kindsCard: $('#kinds-card'),
  kinds: $('#kinds tbody'),
  schedules: $('#schedules tbody'),
  schedulesEmpty: $('#schedules-empty'),
  queues: $('#queues tbody'),
  queuesEmpty: $('#queues-empty'),
  outbox: $('#outbox-state'),
  dlq: $('#dlq tbody'),
  dlqEmpty: $('#dlq-empty'),
  requeueAll: $('#requeue-all'),
  failures: $('#failures tbody'),
  failuresEmpty: $('#failures-empty'),
};

let timer = 0;
let inFlight = null;
let rendered = {}; // the JSON each part was last drawn from: unchanged parts are left alone

/** Fetches the overview and draws it; concurrent calls share one request. */
function refresh() {
  if (!session.token) return Promise.resolve();
  if (!inFlight) {
    inFlight = load().finally(() => { inFlight = null; });
  }
  return inFlight;
}

async function load() {
  let data;
  try {
    data = await api('/api/ops/overview', { token: session.token });
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      signIn.signedOut(signIn.refusal(err));
      return;
    }
    ui.error.textContent = `Could not refresh: ${explain(err)} Showing the last data.`;
    return;
  }
  ui.error.textContent = '';
  render(data || {});
  ui.updated.replaceChildren('Updated ', el('time', { datetime: new Date().toISOString(), text: clock() }));
}

function render(data) {
  const focusKey = document.activeElement && document.activeElement.dataset.focusKey;
  const jaeger = safeBaseUrl(data.jaegerUrl);
  draw('jobs', [data.jobsByStatus || {}, data.jobsByStatusEstimated || []], renderJobs);
  draw('kinds', data.jobsByKind || {}, renderKinds);
  draw('schedules', data.schedules || [], renderSchedules);
  draw('queues', data.queues || [], renderQueues);
  draw('outbox', data.outbox || {}, renderOutbox);
  draw('dlq', data.dlq || [], renderDLQ);
  draw('failures', [data.recentFailures || [], jaeger], renderFailures);
  if (focusKey && !(document.activeElement && document.activeElement.dataset.focusKey === focusKey)) {
    // The focused control was redrawn: focus its new self, or its section if it is gone.
    const again = document.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`);
    const fallback = $(focusKey.startsWith('requeue') ? '#dlq-title' : '#ops-title');
    if (again) again.focus();
    else {
      fallback.setAttribute('tabindex', '-1');
      fallback.focus();
    }
  }
}

function draw(part, value, fn) {
  const json = JSON.stringify(value);
  if (rendered[part] === json) return;
  rendered[part] = json;
  fn(value);
}

// A large table's completed and cancelled jobs are estimates: shown as ≈ n.
function renderJobs([counts, estimated]) {
  ui.jobsByStatus.replaceChildren(...STATUSES.map((status) => el('div', { class: 'stat', dataset: { status } },
    el('dt', { text: status }),
    el('dd', {
      text: (estimated.includes(status) ? '≈ ' : '') + String(counts[status] ?? 0),
      title: estimated.includes(status) ? 'estimated from the database statistics' : undefined,
    }))));
}

// renderKinds shows the jobs of the kinds other than cover letters, a row per kind.
function renderKinds(kinds) {
  const names = Object.keys(kinds).sort();
  ui.kinds.replaceChildren(...names.map((name) => el('tr', { dataset: { kind: name } },
    el('th', { scope: 'row' }, el('code', {}, ...breakable(name))),
    ...STATUSES.map((status) => el('td', {
      class: status === 'failed' && kinds[name][status] > 0 ? 'num warn' : 'num',
      text: String(kinds[name][status] ?? 0),
    })))));
  ui.kindsCard.hidden = names.length === 0;
}

// renderSchedules shows each scheduled task: its cron, its next slot, its last slot and what
// became of it (skipped: the job before was still running; failed: warned).
function renderSchedules(tasks) {
  ui.schedules.replaceChildren(...tasks.map((s) => el('tr', { dataset: { task: s.task } },
    el('th', { scope: 'row' }, el('code', {}, ...breakable(s.task))),
    el('td', {}, el('code', { text: s.cron })),
    el('td', {}, s.nextRun ? timeElement(s.nextRun) : '—'),
    el('td', {}, s.lastRun ? timeElement(s.lastRun) : 'never'),
    el('td', {
      class: s.lastOutcome === 'failed' || s.lastOutcome === 'skipped' ? 'warn' : '',
      text: s.lastOutcome || '—',
      title: s.lastJobId || undefined,
    }))));
  ui.schedulesEmpty.hidden = tasks.length > 0;
  ui.schedules.closest('.table-wrap').hidden = tasks.length === 0;
}

function renderQueues(queues) {
  ui.queues.replaceChildren(...queues.map((q) => el('tr', { dataset: { queue: q.name } },
    el('th', { scope: 'row' }, el('code', {}, ...breakable(q.name))),
    el('td', { class: q.messages > 0 && /dlq|dead/i.test(q.name) ? 'num warn' : 'num', text: String(q.messages ?? '—') }),
    el('td', { class: 'num', text: String(q.consumers ?? '—') }))));
  ui.queuesEmpty.hidden = queues.length > 0;
  ui.queues.closest('.table-wrap').hidden = queues.length === 0;
}

// renderOutbox says what waits in the outbox, and warns of parked messages: RabbitMQ kept
// refusing them, and an operator must replay them (careeropsctl outbox replay).
function renderOutbox(o) {
  const waiting = o.waiting ?? 0;
  const parked = o.parked ?? 0;
  const parts = [`Outbox: ${waiting} waiting to be published`];
  if (waiting > 0 && o.oldestDueSeconds > 1) parts.push(` (oldest ${Math.round(o.oldestDueSeconds)} s)`);
  ui.outbox.replaceChildren(parts.join(''));
  if (parked > 0) {
    ui.outbox.append(', ', el('strong', { class: 'warn', text: `${parked} parked` }),
      ' — see ', el('code', { text: 'careeropsctl outbox list' }), ', then ', el('code', { text: 'outbox replay' }));
  }
}

function renderDLQ(entries) {
  ui.dlq.replaceChildren(...entries.map((m) => {
    let action;
    if (m.jobId) {
      action = el('button', {
        type: 'button',
        class: 'button small',
        dataset: { focusKey: `requeue:${m.messageId || m.jobId}`, jobId: m.jobId },
      }, 'Requeue', el('span', { class: 'visually-hidden', text: ` job ${m.jobId}` }));
      action.addEventListener('click', () => requeue({ jobId: m.jobId }, action));
    } else {
      action = el('span', { class: 'meta', text: 'Not a job' });
    }
    return el('tr', { role: 'row', dataset: { jobId: m.jobId || '', messageId: m.messageId || '' } },
      cell('Job', '',
        m.jobId ? el('code', { class: 'id', text: m.jobId }) : el('span', { class: 'meta', text: 'unknown job' }),
        m.messageId ? el('div', { class: 'meta id', text: `message ${m.messageId}` }) : null),
      cell('Reason', '', el('span', { class: 'tag', text: m.reason || 'unknown' })),
      cell('Error', 'error-text', m.error || '—'),
      cell('', 'action', action));
  }));
  const requeueable = entries.filter((m) => m.jobId).length;
  ui.dlqEmpty.hidden = entries.length > 0;
  ui.dlq.closest('.table-wrap').hidden = entries.length === 0;
  ui.requeueAll.hidden = requeueable === 0;
  ui.requeueAll.textContent = `Requeue all (${requeueable})`;
}

function renderFailures([failures, jaeger]) {
  ui.failures.replaceChildren(...failures.map((f) => {
    let trace = el('span', { class: 'meta', text: '—' });
    if (f.traceId && jaeger) {
      trace = el('a', {
        href: `${jaeger}/trace/${encodeURIComponent(f.traceId)}`, target: '_blank', rel: 'noopener noreferrer',
      }, 'Trace', el('span', { class: 'visually-hidden', text: ` of job ${f.jobId} (opens Jaeger in a new tab)` }));
    } else if (f.traceId) {
      trace = el('code', { class: 'id', text: f.traceId });
    }
    return el('tr', { role: 'row', dataset: { jobId: f.jobId } },
      cell('Job', '', el('code', { class: 'id', text: f.jobId })),
      cell('User', '', String(f.userId ?? '—')),
      cell('Error', 'error-text', f.error || '—'),
      cell('When', '', timeElement(f.updatedAt)),
      cell('Trace', '', trace));
  }));
  ui.failuresEmpty.hidden = failures.length > 0;
  ui.failures.closest('.table-wrap').hidden = failures.length === 0;
}

/**
 * A cell of a table that stacks into labelled blocks on a phone: the label comes from
 * data-label in CSS; the explicit role keeps the table semantics when it stacks.
 */
function cell(label, cls, ...children) {
  return el('td', { role: 'cell', class: cls || undefined, 'data-label': label || undefined }, ...children);
}

/** "a.b.c" as text pieces with a line-break opportunity after each dot. */
function breakable(name) {
  return String(name).split(/(?<=\.)/).flatMap((part, i) => (i ? [document.createElement('wbr'), part] : [part]));
}

/** Only an http(s) URL from the server becomes a link base. */
function safeBaseUrl(url) {
  if (typeof url !== 'string') return '';
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href.replace(/\/+$/, '') : '';
  } catch {
    return '';
  }
}

let noticeTimer = 0;
function notice(message) {
  ui.notice.textContent = message;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { ui.notice.textContent = ''; }, 10_000);
}

const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

async function requeue(body, button) {
  await whileBusy(button, async () => {
    try {
      const res = await api('/api/ops/dlq/requeue', { method: 'POST', token: session.token, body });
      const skipped = res.skipped ? `; ${plural(res.skipped, 'message', 'messages')} skipped` : '';
      notice(`Requeued ${plural(res.requeued ?? 0, 'job', 'jobs')}${skipped}.`);
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
        signIn.signedOut(signIn.refusal(err));
        return;
      }
      notice(`Requeue failed: ${explain(err)}`);
    }
    await refresh();
  });
}

ui.requeueAll.addEventListener('click', () => requeue({ all: true }, ui.requeueAll));
ui.refresh.addEventListener('click', () => Promise.all([refresh(), usage.load()]));
ui.autoRefresh.addEventListener('change', schedule);
document.addEventListener('visibilitychange', () => {
  if (!document.hidden && session.token) refresh();
});

function schedule() {
  clearInterval(timer);
  timer = 0;
  if (ui.autoRefresh.checked && session.token) {
    timer = setInterval(() => {
      if (!document.hidden) refresh();
    }, REFRESH_MS);
  }
}

const usage = setupUsage({ token: () => session.token, onRefused: (err) => signIn.signedOut(signIn.refusal(err)) });

const signIn = setupSignIn({
  session,
  admin: true,
  check: (token) => api('/api/ops/overview', { token }),
  async onSignedIn() {
    ui.app.hidden = false;
    rendered = {};
    await Promise.all([refresh(), usage.load()]);
    schedule();
  },
  onSignedOut() {
    ui.app.hidden = true;
    clearInterval(timer);
    timer = 0;
    usage.clear();
  },
});

signIn.start();
