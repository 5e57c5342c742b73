// What every page shares: calls to the JSON API (with the session cookie and, for changes,
// the CSRF header), times in the clinic's zone, and building elements from text only (no
// innerHTML: whatever the API returns is shown as text, never read as markup).

export class ApiError extends Error {
  constructor(status, detail, errors = []) {
    super(detail);
    this.status = status;
    this.errors = errors; // a 422's [{field, message}]
  }
}

function cookie(name) {
  const prefix = `${name}=`;
  const found = document.cookie.split('; ').find((part) => part.startsWith(prefix));
  return found ? decodeURIComponent(found.slice(prefix.length)) : '';
}

export function signInAgain() {
  const next = window.location.pathname + window.location.search;
  window.location.assign(`/signin?next=${encodeURIComponent(next)}`);
}

export async function api(path, { method = 'GET', body, headers: extra = {} } = {}) {
  const headers = { Accept: 'application/json', ...extra };
  if (method !== 'GET' && method !== 'HEAD') {
    headers['X-CSRF-Token'] = cookie('pathway_csrf');
    if (body !== undefined) headers['Content-Type'] = 'application/json';
  }
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  if (response.status === 401) {
    signInAgain();
    throw new ApiError(401, 'Your session has ended: sign in again.');
  }
  const type = response.headers.get('content-type') || '';
  const data = type.includes('json') ? await response.json() : null;
  if (!response.ok) {
    throw new ApiError(response.status, (data && data.detail) || response.statusText, (data && data.errors) || []);
  }
  return data;
}

export const zone =
  document.querySelector('meta[name="pathway-timezone"]')?.getAttribute('content') || 'UTC';

const timeFormat = new Intl.DateTimeFormat('en-GB', {
  timeZone: zone,
  dateStyle: 'medium',
  timeStyle: 'short',
});

export function clinicTime(iso) {
  return iso ? timeFormat.format(new Date(iso)) : '';
}

const wallFormat = new Intl.DateTimeFormat('en-CA', {
  timeZone: zone,
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  hourCycle: 'h23',
});

// The clinic's wall-clock time of an instant, as a datetime-local input takes it
// ("2026-03-01T09:30").
export function clinicInput(when) {
  const parts = Object.fromEntries(wallFormat.formatToParts(new Date(when)).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}`;
}

// How far the clinic's clock is ahead of UTC at an instant, in milliseconds.
function offsetAt(ms) {
  const wall = clinicInput(ms);
  return Date.parse(`${wall}:00Z`) - Math.floor(ms / 60000) * 60000;
}

// A datetime-local value read as the clinic's wall-clock time, as an ISO instant in UTC;
// null when it is not a date and time. (A time the clock skips at a change to summer time
// is read with the offset before the change.)
export function fromClinicInput(value) {
  const naive = Date.parse(`${value}:00Z`);
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d$/.test(value) || Number.isNaN(naive)) return null;
  const first = naive - offsetAt(naive);
  const second = naive - offsetAt(first);
  return new Date(clinicInput(second) === value ? second : first).toISOString();
}

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function showStatus(text, { error = false } = {}) {
  const status = document.getElementById('status');
  status.textContent = text;
  status.classList.toggle('error', error);
}

// An identifier (a pathway, step or field name) that may wrap after each underscore, so a
// narrow window (or 200% zoom) wraps it rather than scrolling sideways.
export function breakable(name) {
  return String(name)
    .split('_')
    .flatMap((part, i) => (i ? ['_', el('wbr'), part] : [part]));
}
