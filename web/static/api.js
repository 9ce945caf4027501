// Shared helpers of the dashboard's pages: the JSON API, the log panel,
// small DOM builders and formatting. Plain ES module, no dependencies.

/** An answer of the API that is not 2xx: status and the JSON error. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

/**
 * Calls the API: method, path and an optional body sent as JSON.
 * Resolves to the decoded JSON answer (null when empty); rejects with an
 * ApiError carrying the answer's `error` field.
 */
export async function api(method, path, body) {
  const opts = {
    method,
    credentials: 'same-origin',
    cache: 'no-store',
    headers: { Accept: 'application/json' },
  };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, opts);
  } catch (err) {
    throw new ApiError(0, `cannot reach the master (${err.message})`);
  }
  const text = await res.text();
  let data = null;
  if (text !== '') {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const msg = data && typeof data.error === 'string' ? data.error : `${res.status} ${res.statusText}`.trim();
    throw new ApiError(res.status, msg);
  }
  return data;
}

/**
 * Removes ?token=… from the address bar once the page has loaded: the
 * answer set the cookie, the token need not stay in the history.
 */
export function forgetTokenInURL() {
  const url = new URL(window.location.href);
  if (url.searchParams.has('token')) {
    url.searchParams.delete('token');
    window.history.replaceState(null, '', url.pathname + url.search + url.hash);
  }
}

/**
 * Builds an element: h('td', {class: 'num', dataset: {id: 3}}, 'text', child).
 * Text is always set as text, never parsed as HTML.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, String(v));
    }
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** The log panel: timestamped lines, newest last, at most max kept. */
export class Log {
  constructor(list, max = 500) {
    this.list = list;
    this.max = max;
  }

  /** kind: info, ok, warn or error. */
  add(message, kind = 'info') {
    const now = new Date();
    const stamp = now.toTimeString().slice(0, 8);
    const item = h('li', { class: `log-${kind}` },
      h('time', { datetime: now.toISOString() }, stamp), ' ', message);
    const stick = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 24;
    this.list.append(item);
    while (this.list.children.length > this.max) this.list.firstElementChild.remove();
    if (stick) this.list.scrollTop = this.list.scrollHeight;
  }

  info(m) { this.add(m, 'info'); }
  ok(m) { this.add(m, 'ok'); }
  warn(m) { this.add(m, 'warn'); }
  error(m) { this.add(m, 'error'); }
}

/** The badge class of a verdict, a job state or an executor state. */
export function badgeKind(word) {
  switch (String(word || '').toLowerCase()) {
    case 'ok': case 'finished': case 'up': case 'connected':
      return 'ok';
    case 'running': case 'starting': case 'reconnecting':
      return 'run';
    case 'queued': case 'waiting': case '':
      return 'queued';
    case 'cancelled': case 'full': case 'lost': case 'time_limit': case 'memory_limit': case 'output_limit':
      return 'warn';
    default:
      return 'err';
  }
}

/** A status badge: text coloured by badgeKind (or kind). */
export function badge(text, kind) {
  return h('span', { class: `badge badge-${kind || badgeKind(text)}` }, text);
}

/** Milliseconds as "850 ms", "2.35 s", "3 min 05 s". */
export function fmtMs(ms) {
  if (ms === undefined || ms === null) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  return fmtDuration(ms);
}

/** A long duration as "3d 4h", "2h 05m", "3m 07s", "12s". */
export function fmtDuration(ms) {
  let s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hh = Math.floor(s / 3600); s -= hh * 3600;
  const mm = Math.floor(s / 60); s -= mm * 60;
  const p = (n) => String(n).padStart(2, '0');
  if (d > 0) return `${d}d ${hh}h`;
  if (hh > 0) return `${hh}h ${p(mm)}m`;
  if (mm > 0) return `${mm}m ${p(s)}s`;
  return `${s}s`;
}

/** Bytes as "512 B", "1.5 KiB", "256 MiB". */
export function fmtBytes(n) {
  if (n === undefined || n === null) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[i]}`;
}

/** An RFC 3339 time as the local "HH:MM:SS" (today) or "YYYY-MM-DD HH:MM". */
export function fmtTime(iso) {
  if (!iso) return '—';
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso;
  const now = new Date();
  if (t.toDateString() === now.toDateString()) return t.toTimeString().slice(0, 8);
  const p = (n) => String(n).padStart(2, '0');
  return `${t.getFullYear()}-${p(t.getMonth() + 1)}-${p(t.getDate())} ${p(t.getHours())}:${p(t.getMinutes())}`;
}

/** How long ago an RFC 3339 time was: "3m 07s ago". */
export function fmtAgo(iso) {
  if (!iso) return '—';
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return iso;
  return `${fmtDuration(Date.now() - t)} ago`;
}

/** A <time> element showing text, with the full date in its title. */
export function timeEl(iso, text) {
  return h('time', { datetime: iso || undefined, title: iso ? new Date(iso).toString() : undefined }, text);
}

/** The exit of a job or verdict as words: "code 0", "signal 9". */
export function fmtExit(exit) {
  if (!exit) return '—';
  if (exit.signal) return `signal ${exit.signal}${exit.core ? ' (core dumped)' : ''}`;
  return `code ${exit.code}`;
}

/**
 * Runs fn now and then every ms milliseconds, never two at once; while
 * the page is hidden it waits. Returns a stop function.
 */
export function every(ms, fn) {
  let timer = 0;
  let stopped = false;
  const tick = async () => {
    timer = 0;
    if (stopped) return;
    if (!document.hidden) {
      try { await fn(); } catch (err) { console.error(err); }
    }
    if (!stopped) timer = window.setTimeout(tick, ms);
  };
  tick();
  return () => {
    stopped = true;
    if (timer) window.clearTimeout(timer);
  };
}

/**
 * Replaces the rows of a tbody, keeping the keyboard focus on the same
 * control (same data-action and data-key) when it is rebuilt.
 */
export function replaceRows(tbody, rows) {
  const active = document.activeElement;
  let key = null;
  if (active && tbody.contains(active) && active.dataset.action) {
    key = [active.dataset.action, active.dataset.key];
  }
  tbody.replaceChildren(...rows);
  if (key) {
    for (const el of tbody.querySelectorAll('[data-action]')) {
      if (el.dataset.action === key[0] && el.dataset.key === key[1]) {
        el.focus();
        break;
      }
    }
  }
}
