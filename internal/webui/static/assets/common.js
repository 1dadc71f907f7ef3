// Shared by both pages: the API client, the signed-in session and the sign-in card.

/** @param {string} selector */
export const $ = (selector, root = document) => root.querySelector(selector);

/** An error answer of the API: {"error": {"code", "message"}}. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message || code || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = code || '';
    this.retryAfter = retryAfter;
  }
}

/**
 * Calls the API with the bearer token and returns the decoded JSON answer.
 * Throws ApiError for an error status, or for a network failure (status 0).
 */
export async function api(path, { method = 'GET', body, token, signal } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, 'network', 'The server could not be reached. Check your connection and try again.');
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const e = (data && data.error) || {};
    const retryAfter = Number(res.headers.get('Retry-After')) || undefined;
    throw new ApiError(res.status, e.code, e.message || `The server answered ${res.status}.`, retryAfter);
  }
  return data;
}

/** Explains an error in one sentence for a person. */
export function explain(err) {
  if (!(err instanceof ApiError)) return 'Something went wrong. Try again.';
  switch (err.code) {
    case 'quota_exceeded':
    case 'rate_limited':
      return `${err.message}${err.retryAfter ? ` Try again in ${formatSeconds(err.retryAfter)}.` : ''}`;
    case 'unavailable':
      return 'The service is briefly unavailable. Try again in a few seconds.';
    default:
      return err.message;
  }
}

function formatSeconds(s) {
  if (s < 90) return `${s} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

/** The signed-in token, kept in sessionStorage under key (one tab, gone when it closes). */
export class Session {
  constructor(key) {
    this.key = key;
  }

  get token() {
    return sessionStorage.getItem(this.key) || '';
  }

  get email() {
    return sessionStorage.getItem(`${this.key}.email`) || '';
  }

  save(token, email = '') {
    sessionStorage.setItem(this.key, token);
    if (email) sessionStorage.setItem(`${this.key}.email`, email);
    else sessionStorage.removeItem(`${this.key}.email`);
  }

  clear() {
    sessionStorage.removeItem(this.key);
    sessionStorage.removeItem(`${this.key}.email`);
  }

  /** The token's claims, decoded without verification: for display only. */
  claims() {
    const part = this.token.split('.')[1];
    if (!part) return {};
    try {
      const bytes = Uint8Array.from(atob(part.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      return {};
    }
  }

  /** "user 12 · dev@example.com": who is signed in, for the header. */
  describe() {
    const sub = this.claims().sub;
    return [sub ? `user ${sub}` : 'signed in', this.email].filter(Boolean).join(' · ');
  }
}

/**
 * Wires the sign-in card and the header's account area. The dev button appears only when
 * POST /dev/token answers (the api runs with DEV_TOKEN_ENDPOINT=true).
 *
 * check(token) must resolve when the token is good for the page and throw an ApiError when it
 * is not; onSignedIn() runs after a successful sign-in (or at load with a kept token).
 */
export function setupSignIn({ session, admin = false, check, onSignedIn, onSignedOut }) {
  const card = $('#signin');
  const form = $('#signin-form');
  const input = $('#token-input');
  const error = $('#signin-error');
  const devBox = $('#dev-signin');
  const devButton = $('#dev-token');
  const account = $('#account');
  const accountName = $('#account-name');
  let probed = false;

  const showError = (message) => {
    error.textContent = message;
    input.setAttribute('aria-invalid', message ? 'true' : 'false');
  };

  async function probe() {
    if (probed) return;
    probed = true;
    try {
      await api('/dev/token', { method: 'POST', body: admin ? { admin: true } : {} });
      devBox.hidden = false;
    } catch {
      devBox.hidden = true; // 404: not in dev mode
    }
  }

  function signedOut(message = '') {
    session.clear();
    account.hidden = true;
    card.hidden = false;
    showError(message);
    onSignedOut();
    probe();
  }

  async function signIn(token, email) {
    session.save(token, email);
    try {
      await check(token);
    } catch (err) {
      session.clear();
      throw err;
    }
    showError('');
    input.value = '';
    card.hidden = true;
    accountName.textContent = session.describe();
    account.hidden = false;
    await onSignedIn();
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const token = input.value.trim().replace(/^Bearer\s+/i, '');
    if (!token) {
      showError('Paste a token first.');
      input.focus();
      return;
    }
    await whileBusy(form.querySelector('button[type=submit]'), async () => {
      try {
        await signIn(token, '');
        focusMain();
      } catch (err) {
        showError(refusal(err));
        input.focus();
      }
    });
  });

  devButton.addEventListener('click', () => whileBusy(devButton, async () => {
    showError('');
    try {
      const res = await api('/dev/token', { method: 'POST', body: admin ? { admin: true } : {} });
      await signIn(res.token, res.email);
      focusMain();
    } catch (err) {
      showError(refusal(err));
    }
  }));

  $('#sign-out').addEventListener('click', () => {
    signedOut('');
    input.focus();
  });

  function refusal(err) {
    if (err instanceof ApiError && err.status === 401) return 'That token was refused: it is invalid, expired, or its user does not exist.';
    if (err instanceof ApiError && err.status === 403) return 'That token works, but it has no admin claim. Sign in with an admin token.';
    return explain(err);
  }

  return {
    /** Signs in with the kept token, if any, or shows the sign-in card. */
    async start() {
      if (!session.token) {
        signedOut('');
        return;
      }
      try {
        await signIn(session.token, session.email);
      } catch (err) {
        signedOut(refusal(err));
      }
    },
    /** Shows the sign-in card with a message, e.g. after a 401. */
    signedOut,
    refusal,
  };
}

/**
 * Runs fn while button shows as busy. aria-disabled, not disabled: a disabled button loses
 * the keyboard focus. A second press while busy is ignored.
 */
export async function whileBusy(button, fn) {
  if (button.getAttribute('aria-disabled') === 'true') return undefined;
  button.setAttribute('aria-disabled', 'true');
  try {
    return await fn();
  } finally {
    button.removeAttribute('aria-disabled');
  }
}

/** Moves focus to the main region after the page changed under the user. */
export function focusMain() {
  const main = $('#main');
  const heading = main && main.querySelector('h1:not([hidden])');
  if (heading && heading.offsetParent !== null) {
    heading.setAttribute('tabindex', '-1');
    heading.focus();
  }
}

export const STATUSES = ['pending', 'processing', 'completed', 'failed', 'cancelled'];
export const FINAL_STATUSES = new Set(['completed', 'failed', 'cancelled']);

/** A status badge: <span class="badge badge-completed">completed</span>. */
export function badge(status) {
  const span = document.createElement('span');
  span.className = `badge badge-${STATUSES.includes(status) ? status : 'unknown'}`;
  span.textContent = status;
  return span;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });

/** A <time> element showing an ISO timestamp in the reader's locale. */
export function timeElement(iso) {
  const t = document.createElement('time');
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) {
    t.textContent = '—';
    return t;
  }
  t.dateTime = d.toISOString();
  t.textContent = dateTime.format(d);
  return t;
}

export function clock(date = new Date()) {
  return timeOnly.format(date);
}

/** el(tag, {class, text, ...attributes}, ...children): a small DOM builder. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child);
  }
  return node;
}
