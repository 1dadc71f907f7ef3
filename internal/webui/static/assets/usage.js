// The ops page's "Usage and cost" card: jobs by outcome, LLM tokens, estimated cost and the
// time from request to letter, per hour or day over a chosen range, from GET /api/ops/usage
// (the analytics.process rollups), drawn with uPlot (assets/vendor, loaded before this module
// as the global uPlot).
import { $, api, explain } from './common.js';

const RANGES = {
  '48h': { groupBy: 'hour', step: 3600, count: 48, label: '48 hours' },
  '7d': { groupBy: 'day', step: 86400, count: 7, label: '7 days' },
  '30d': { groupBy: 'day', step: 86400, count: 30, label: '30 days' },
  '90d': { groupBy: 'day', step: 86400, count: 90, label: '90 days' },
};
const COVER_LETTERS = 'cover-letter.generate';
// Colours meet 3:1 against white; dashes tell the series apart without colour too.
const COLOURS = { green: '#15803d', red: '#b42318', grey: '#4b5563', blue: '#1d4ed8', violet: '#6d28d9', amber: '#b45309' };

const ui = {
  range: $('#usage-range'),
  summary: $('#usage-summary'),
  error: $('#usage-error'),
  empty: $('#usage-empty'),
  charts: $('#usage-charts'),
};
const plots = new Map(); // chart id → uPlot
let inFlight = null;

/** Sets the card up: token() is the admin's token, onRefused(err) handles a 401/403. */
export function setupUsage({ token, onRefused }) {
  const load = async () => {
    if (!token()) return;
    const r = RANGES[ui.range.value] || RANGES['30d'];
    const to = ceilTo(Date.now() / 1000, r.step);
    const from = to - r.count * r.step;
    const q = new URLSearchParams({ groupBy: r.groupBy, from: iso(from), to: iso(to) });
    inFlight?.abort();
    const ctl = new AbortController();
    inFlight = ctl;
    try {
      const data = await api(`/api/ops/usage?${q}`, { token: token(), signal: ctl.signal });
      ui.error.textContent = '';
      draw(data, r);
    } catch (err) {
      if (ctl.signal.aborted) return;
      if (err?.status === 401 || err?.status === 403) onRefused(err);
      else ui.error.textContent = `Could not read the usage: ${explain(err)}`;
    }
  };
  ui.range.addEventListener('change', load);
  new ResizeObserver(() => resize()).observe(ui.charts);
  return {
    load,
    clear() {
      for (const p of plots.values()) p.destroy();
      plots.clear();
      ui.summary.textContent = '';
    },
  };
}

/** draw turns the rollup rows into one series per line and (re)draws the four charts. */
function draw(data, r) {
  const s = columns(data, r.step);
  const t = data.totals || {};
  ui.empty.hidden = (t.jobs ?? 0) > 0;
  const seen = data.seenUntil ? ` Rolled up to ${utc(Date.parse(data.seenUntil) / 1000, 'hour')} UTC.` : ' Not rolled up yet.';
  ui.summary.textContent = `Last ${r.label}: ${num(t.jobs)} jobs, ${num(t.deadLetters)} dead-lettered, ${num(t.retries)} retries, `
    + `${num((t.promptTokens ?? 0) + (t.completionTokens ?? 0))} tokens, estimated cost ${money(t.costMicros)}.${seen}`;
  plot('chart-jobs', s.x, [
    line('Completed', s.completed, COLOURS.green),
    line('Failed', s.failed, COLOURS.red, [6, 3]),
    line('Cancelled', s.cancelled, COLOURS.grey, [2, 3]),
  ], num, r);
  plot('chart-tokens', s.x, [
    line('Prompt', s.prompt, COLOURS.blue),
    line('Completion', s.completion, COLOURS.violet, [6, 3]),
  ], num, r);
  plot('chart-cost', s.x, [line('Cost', s.cost, COLOURS.amber)], (v) => money(v * 1e6), r);
  plot('chart-latency', s.x, [
    line('p50', s.p50, COLOURS.blue),
    line('p95', s.p95, COLOURS.red, [6, 3]),
  ], seconds, r);
}

/** columns are the x values (bucket starts, seconds) and a column per series. */
function columns(data, step) {
  const from = Date.parse(data.from) / 1000;
  const to = Date.parse(data.to) / 1000;
  const x = [];
  for (let t = from; t < to; t += step) x.push(t);
  const at = new Map(x.map((t, i) => [t, i]));
  const zeros = () => x.map(() => 0);
  const s = {
    x, completed: zeros(), failed: zeros(), cancelled: zeros(), prompt: zeros(), completion: zeros(), cost: zeros(),
    p50: x.map(() => null), p95: x.map(() => null),
  };
  for (const row of data.rows || []) {
    const i = at.get(Date.parse(row.bucket) / 1000);
    if (i === undefined) continue;
    if (s[row.outcome]) s[row.outcome][i] += row.jobs;
    s.prompt[i] += row.promptTokens;
    s.completion[i] += row.completionTokens;
    s.cost[i] += row.costMicros / 1e6;
    if (row.kind === COVER_LETTERS && row.outcome === 'completed') {
      s.p50[i] = row.p50Ms / 1000;
      s.p95[i] = row.p95Ms / 1000;
    }
  }
  return s;
}

function line(label, values, stroke, dash) {
  return { label, values, stroke, dash };
}

/** plot draws one chart (again), and describes it in words for screen readers. */
function plot(id, x, lines, fmt, r) {
  const target = $(`#${id}`);
  plots.get(id)?.destroy();
  const opts = {
    width: Math.max(target.clientWidth, 240),
    height: 200,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC'),
    cursor: { drag: { x: false, y: false } },
    legend: { live: false },
    scales: { y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    axes: [
      { stroke: COLOURS.grey, grid: { stroke: '#e5e7eb' } },
      { stroke: COLOURS.grey, grid: { stroke: '#e5e7eb' }, size: 64, values: (u, vals) => vals.map(fmt) },
    ],
    series: [{ label: r.groupBy === 'hour' ? 'Hour (UTC)' : 'Day (UTC)' }, ...lines.map((l) => ({
      label: l.label, stroke: l.stroke, dash: l.dash, width: 2, spanGaps: false, points: { show: x.length <= 48, size: 4 },
      value: (u, v) => (v == null ? '—' : fmt(v)),
    }))],
  };
  plots.set(id, new uPlot(opts, [x, ...lines.map((l) => l.values)], target));
  $(`#${id}-desc`).textContent = lines.map((l) => describe(l, x, fmt, r)).join(' ');
}

/** describe says a series' total or range and its highest bucket. */
function describe(l, x, fmt, r) {
  const known = l.values.map((v, i) => [v, i]).filter(([v]) => v != null);
  if (known.length === 0) return `${l.label}: no data.`;
  const [top, i] = known.reduce((a, b) => (b[0] > a[0] ? b : a));
  return `${l.label}: highest ${fmt(top)} on ${utc(x[i], r.groupBy)}.`;
}

function resize() {
  for (const [id, p] of plots) {
    const w = Math.max($(`#${id}`).clientWidth, 240);
    if (Math.abs(w - p.width) > 2) p.setSize({ width: w, height: 200 });
  }
}

const ceilTo = (t, step) => Math.ceil(t / step) * step;
const iso = (t) => new Date(t * 1000).toISOString().replace('.000Z', 'Z');
const utc = (t, grain) => new Date(t * 1000).toISOString().slice(0, grain === 'hour' ? 16 : 10).replace('T', ' ');
const num = (n) => new Intl.NumberFormat('en', { notation: (n ?? 0) >= 1e6 ? 'compact' : 'standard', maximumFractionDigits: 1 }).format(n ?? 0);
const money = (micros) => ((micros ?? 0) / 1e6).toFixed((micros ?? 0) >= 1e8 ? 2 : 4);
const seconds = (s) => (s == null ? '—' : `${s >= 10 ? Math.round(s) : s.toFixed(1)} s`);

