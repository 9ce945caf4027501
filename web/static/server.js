// The server page: the master, its executors (live), its local
// executors, the queue and recent jobs; stopping the master.

import {
  api, Log, h, badge, badgeKind, fmtMs, fmtTime, fmtAgo, fmtDuration, timeEl, every, replaceRows, forgetTokenInURL,
} from './api.js';

const $ = (id) => document.getElementById(id);

forgetTokenInURL();
const log = new Log($('log'));

// ---------------------------------------------------------------- connection

let connOK = null;
let stopState = ''; // '', 'stopping', 'stopped'

function setConn(ok, why) {
  if (ok === connOK) return;
  const first = connOK === null;
  connOK = ok;
  const el = $('conn');
  el.textContent = ok ? 'connected' : 'unreachable';
  el.className = `badge badge-${ok ? 'ok' : 'err'}`;
  if (ok) {
    if (!first) log.ok('the master answers again');
    if (stopState) {
      stopState = '';
      showBanner('The master is running again.', 'ok');
      window.setTimeout(() => { if (!stopState) showBanner(''); }, 5000);
    }
  } else {
    log.error(`the master is unreachable: ${why}`);
    if (stopState === 'stopping') {
      stopState = 'stopped';
      showBanner('The master has stopped. This page shows it again when it restarts.', 'err');
      log.info('the master stopped');
    }
  }
}

function showBanner(text, kind) {
  const b = $('stopped-banner');
  b.textContent = text;
  b.className = `banner ${kind || ''}`;
  b.hidden = text === '';
}

/** Calls the API for a poll: marks the connection, null on failure. */
async function poll(path) {
  // While the master does not answer, only the info is asked (each second).
  if (connOK === false && path !== '/api/v1/info') return null;
  try {
    const d = await api('GET', path);
    setConn(true);
    return d;
  } catch (err) {
    if (err.status === 0 || err.status === 503 || err.status >= 500) setConn(false, err.message);
    else setConn(true);
    return { error: err };
  }
}

// ---------------------------------------------------------------- info

let info = null;
let infoAt = 0;

async function loadInfo() {
  const d = await poll('/api/v1/info');
  if (!d || d.error) return;
  const firstTime = info === null;
  info = d;
  infoAt = Date.now();
  if (firstTime) log.info(`master ${d.name}, ${d.version}`);
  $('master-name').textContent = d.name;
  renderInfo();
  if (d.locals && !d.locals.available) setLocalsAvailable(false, 'This master cannot start local executors.');
}

function renderInfo() {
  if (!info) return;
  const uptime = (info.uptime_ms || 0) + (Date.now() - infoAt);
  const dash = `${info.https ? 'https' : 'http'}://${info.http}`;
  const locals = info.locals
    ? `${info.locals.count} of at most ${info.locals.max}${info.locals.available ? '' : ' (not available)'}`
    : '—';
  const rows = [
    ['Name', info.name],
    ['Version', info.version],
    ['Started', timeEl(info.started, `${fmtTime(info.started)}`)],
    ['Uptime', fmtDuration(uptime)],
    ['resh address', info.listen],
    ['Dashboard', `${dash}${info.https ? ' (TLS, token)' : ' (loopback, no token)'}`],
    ['Store', info.store],
    ['Security', info.secure ? badge('host keys required', 'ok') : badge('INSECURE (-insecure)', 'err')],
    ['Languages', (info.languages || []).join(', ') || 'none (no executor)'],
    ['Local executors', locals],
  ];
  $('info').replaceChildren(...rows.flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

// ---------------------------------------------------------------- executors

async function loadExecutors() {
  const d = await poll('/api/v1/executors');
  if (!d || d.error) return;
  const list = d.executors || [];
  $('executors-count').textContent = `(${list.length})`;
  const rows = list.map((e) => {
    const tasks = `${e.tasks} / ${e.max_tasks ? e.max_tasks : '∞'}`;
    const cpu = `${(e.cpu || 0).toFixed(1)} %${e.max_cpu && e.max_cpu < 100 ? ` of ${e.max_cpu}` : ''}`;
    return h('tr', { dataset: { name: e.name }, class: e.local ? 'local' : undefined },
      h('td', { class: 'name' }, e.name, e.local ? badge('local', 'local') : null),
      h('td', null, badge(e.state, badgeKind(e.state))),
      h('td', { class: 'num' }, tasks),
      h('td', { class: 'num' }, cpu),
      h('td', { class: 'wrap' }, (e.languages || []).join(', ') || '—'),
      h('td', { class: 'name addr' }, e.addr || '—'),
      h('td', null, e.version || '—'),
      h('td', { class: 'num' }, timeEl(e.since, fmtAgo(e.since))),
      h('td', { class: 'row-actions' }, e.local
        ? h('button', { type: 'button', class: 'small', dataset: { action: 'stop', key: e.name }, 'aria-label': `Stop ${e.name}`, disabled: !localsAvailable }, 'Stop')
        : null));
  });
  if (!rows.length) rows.push(h('tr', null, h('td', { colspan: 9, class: 'empty' }, 'No executor connected.')));
  replaceRows($('executors').tBodies[0], rows);
}

// ---------------------------------------------------------------- locals

let localsAvailable = true;
let countDirty = false;
const countInput = $('locals-count');

function setLocalsAvailable(ok, note) {
  localsAvailable = ok;
  for (const id of ['locals-count', 'locals-set', 'locals-start']) $(id).disabled = !ok;
  for (const b of document.querySelectorAll('button[data-action="stop"]')) b.disabled = !ok;
  const n = $('locals-note');
  n.textContent = ok ? '' : note;
  n.hidden = ok;
}

function renderLocals(d) {
  $('locals-running').textContent = String(d.count);
  $('locals-max').textContent = String(d.max);
  countInput.max = String(d.max);
  if (!countDirty && document.activeElement !== countInput) countInput.value = String(d.count);
  const rows = (d.executors || []).map((l) => h('tr', { dataset: { name: l.name } },
    h('td', { class: 'name' }, l.name),
    h('td', null, badge(l.running ? 'running' : 'stopped', l.running ? 'ok' : 'queued')),
    h('td', { class: 'num' }, l.pid || '—'),
    h('td', { class: 'num' }, l.restarts),
    h('td', { class: 'row-actions' },
      h('button', { type: 'button', class: 'small', dataset: { action: 'stop', key: l.name }, 'aria-label': `Stop ${l.name}`, disabled: !localsAvailable }, 'Stop'))));
  if (!rows.length) rows.push(h('tr', null, h('td', { colspan: 5, class: 'empty' }, 'No local executor runs.')));
  replaceRows($('locals').tBodies[0], rows);
}

async function loadLocals() {
  const d = await poll('/api/v1/locals');
  if (!d) return;
  if (d.error) {
    if (d.error.status === 503) {
      if (localsAvailable) log.warn(`local executors: ${d.error.message}`);
      setLocalsAvailable(false, `Local executors cannot be managed here: ${d.error.message}`);
      $('locals').tBodies[0].replaceChildren(h('tr', null, h('td', { colspan: 5, class: 'empty' }, 'Not available.')));
    }
    return;
  }
  if (!localsAvailable && !(info && info.locals && !info.locals.available)) setLocalsAvailable(true, '');
  renderLocals(d);
}

/** Runs a change of the local executors and shows its answer. */
async function changeLocals(what, method, path, body) {
  try {
    const d = await api(method, path, body);
    log.ok(`${what}: ${d.count} local executor(s) now`);
    countDirty = false;
    renderLocals(d);
    loadExecutors();
  } catch (err) {
    log.error(`${what}: ${err.message}`);
    if (err.status === 503) setLocalsAvailable(false, `Local executors cannot be managed here: ${err.message}`);
  }
}

countInput.addEventListener('input', () => { countDirty = true; });
countInput.addEventListener('keydown', (e) => {
  if (e.key === 'Enter') {
    e.preventDefault();
    $('locals-set').click();
  }
});
$('locals-set').addEventListener('click', () => {
  const n = Number(countInput.value);
  const max = Number(countInput.max) || 64;
  if (countInput.value.trim() === '' || !Number.isInteger(n) || n < 0 || n > max) {
    log.error(`local executors: give a whole number from 0 to ${max}`);
    countInput.focus();
    return;
  }
  changeLocals(`set to ${n}`, 'PUT', '/api/v1/locals', { count: n });
});
$('locals-start').addEventListener('click', () => changeLocals('start one', 'POST', '/api/v1/locals'));

document.addEventListener('click', (e) => {
  const btn = e.target.closest('button[data-action="stop"]');
  if (!btn || btn.disabled) return;
  const name = btn.dataset.key;
  changeLocals(`stop ${name}`, 'DELETE', `/api/v1/locals/${encodeURIComponent(name)}`);
});

// ---------------------------------------------------------------- queue and jobs

function jobBadge(j) {
  const word = j.verdict || j.state;
  return badge(word, badgeKind(word));
}

async function loadQueue() {
  const d = await poll('/api/v1/queue');
  if (!d || d.error) return;
  $('queue-sessions').textContent = String(d.sessions || 0);
  const rows = (d.jobs || []).map((j) => h('tr', { dataset: { id: j.id } },
    h('td', { class: 'num' }, j.id),
    h('td', { class: 'name' }, j.name || '—'),
    h('td', null, j.lang),
    h('td', { class: 'num' }, timeEl(j.submitted, fmtAgo(j.submitted))),
    h('td', { class: 'num' }, j.attempts || 0)));
  if (!rows.length) rows.push(h('tr', null, h('td', { colspan: 5, class: 'empty' }, 'No job waits.')));
  replaceRows($('queue').tBodies[0], rows);
}

async function loadRecent() {
  const d = await poll('/api/v1/jobs?limit=20');
  if (!d || d.error) return;
  const rows = (d.jobs || []).map((j) => h('tr', { dataset: { id: j.id } },
    h('td', { class: 'num' }, j.id),
    h('td', { class: 'name' }, j.name || '—', h('span', { class: 'muted' }, ` (${j.lang})`)),
    h('td', null, jobBadge(j)),
    h('td', null, j.executor || '—'),
    h('td', { class: 'num' }, timeEl(j.submitted, fmtTime(j.submitted))),
    h('td', { class: 'num' }, j.duration_ms ? fmtMs(j.duration_ms) : '—')));
  if (!rows.length) rows.push(h('tr', null, h('td', { colspan: 6, class: 'empty' }, 'No jobs yet.')));
  replaceRows($('recent').tBodies[0], rows);
}

// ---------------------------------------------------------------- stop

const dialog = $('stop-dialog');
$('stop-master').addEventListener('click', () => dialog.showModal());
$('stop-cancel').addEventListener('click', () => dialog.close('cancel'));
$('stop-confirm').addEventListener('click', async () => {
  dialog.close('stop');
  const btn = $('stop-master');
  btn.disabled = true;
  try {
    await api('POST', '/api/v1/stop', { confirm: true });
    stopState = 'stopping';
    log.warn('stop requested: the master is shutting down');
    showBanner('Stop requested: the master is shutting down…', 'info');
  } catch (err) {
    log.error(`stop: ${err.message}`);
  } finally {
    btn.disabled = false;
  }
});

// ---------------------------------------------------------------- start

every(5000, loadInfo);
every(1000, () => {
  renderInfo();
  return connOK === false ? loadInfo() : loadExecutors();
});
every(2000, loadLocals);
every(2000, loadQueue);
every(3000, loadRecent);
