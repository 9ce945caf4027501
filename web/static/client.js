// The client page: edit or load a program, submit it as a job, follow its
// output live (Server-Sent Events), reopen past jobs.

import {
  api, Log, h, badge, badgeKind, fmtMs, fmtBytes, fmtTime, fmtExit, every, replaceRows, forgetTokenInURL,
} from './api.js';
import { Editor } from './editor.js';
import { TEMPLATES, FILENAMES, guessLanguage } from './templates.js';

const $ = (id) => document.getElementById(id);
const MAX_SOURCE = 1 << 20; // job.MaxSource
const MAX_STDIN = 16 << 20;
const MiB = 1 << 20;
const DRAFT_KEY = 'resh.client.draft';

forgetTokenInURL();
const log = new Log($('log'));

// ---------------------------------------------------------------- editor

const langSelect = $('lang');
const filename = $('filename');
const editor = new Editor({
  textarea: $('editor'),
  code: $('highlight'),
  gutter: $('gutter'),
  lang: langSelect.value,
  onChange: () => saveDraftSoon(),
});

/**
 * The page calls C++ "cpp"; the executors call it "c++". langValue is the
 * page's name for a job's language, wireLang the master's for the page's.
 */
let masterLangs = [];

function langValue(lang) {
  return lang === 'c++' ? 'cpp' : lang;
}

function wireLang(lang) {
  if (lang === 'cpp' && !masterLangs.includes('cpp')) return 'c++';
  return lang;
}

/** Sets the language; the file name follows when it was a default one. */
function setLanguage(lang, { keepName = false } = {}) {
  lang = langValue(lang);
  if (![...langSelect.options].some((o) => o.value === lang)) {
    langSelect.append(h('option', { value: lang }, lang));
  }
  const oldDefault = FILENAMES[langSelect.value];
  langSelect.value = lang;
  editor.setLanguage(lang);
  if (!keepName && (filename.value === '' || filename.value === oldDefault || Object.values(FILENAMES).includes(filename.value))) {
    filename.value = FILENAMES[lang] || '';
  }
  saveDraftSoon();
}

langSelect.addEventListener('change', () => setLanguage(langSelect.value));
filename.addEventListener('change', () => {
  const lang = guessLanguage(filename.value);
  if (lang && lang !== langSelect.value) setLanguage(lang, { keepName: true });
});

$('template').addEventListener('change', (e) => {
  const lang = e.target.value;
  if (!lang) return;
  setLanguage(lang, { keepName: true });
  filename.value = FILENAMES[lang];
  editor.value = TEMPLATES[lang];
  log.info(`loaded the ${e.target.selectedOptions[0].textContent} template`);
});

/** Loads a local file into the editor. */
async function loadFile(file) {
  if (!file) return;
  if (file.size > MAX_SOURCE) {
    log.error(`${file.name}: ${fmtBytes(file.size)} is too large (a program is at most 1 MiB)`);
    return;
  }
  let text;
  try {
    text = await file.text();
  } catch (err) {
    log.error(`${file.name}: cannot read it (${err.message})`);
    return;
  }
  const lang = guessLanguage(file.name);
  if (lang) setLanguage(lang, { keepName: true });
  filename.value = file.name;
  editor.value = text;
  $('template').value = '';
  log.info(`opened ${file.name} (${fmtBytes(file.size)}${lang ? `, ${lang}` : ''})`);
}

$('file').addEventListener('change', (e) => {
  loadFile(e.target.files[0]);
  e.target.value = '';
});

const dropZone = $('editor-wrap');
dropZone.addEventListener('dragover', (e) => {
  if (![...e.dataTransfer.types].includes('Files')) return;
  e.preventDefault();
  e.dataTransfer.dropEffect = 'copy';
  dropZone.classList.add('dragging');
});
dropZone.addEventListener('dragleave', (e) => {
  if (!dropZone.contains(e.relatedTarget)) dropZone.classList.remove('dragging');
});
dropZone.addEventListener('drop', (e) => {
  dropZone.classList.remove('dragging');
  if (!e.dataTransfer.files.length) return;
  e.preventDefault();
  loadFile(e.dataTransfer.files[0]);
});

// ---------------------------------------------------------------- draft

let draftTimer = 0;
function saveDraftSoon() {
  window.clearTimeout(draftTimer);
  draftTimer = window.setTimeout(() => {
    try {
      window.localStorage.setItem(DRAFT_KEY, JSON.stringify({
        lang: langSelect.value, name: filename.value, source: editor.value.length <= MAX_SOURCE ? editor.value : '',
        args: $('args').value, stdin: $('stdin').value.length <= 64 * 1024 ? $('stdin').value : '',
      }));
    } catch {
      // storage full or refused: the draft is a convenience
    }
  }, 500);
}
for (const id of ['args', 'stdin']) $(id).addEventListener('input', saveDraftSoon);

function restoreDraft() {
  let d = null;
  try {
    d = JSON.parse(window.localStorage.getItem(DRAFT_KEY) || 'null');
  } catch {
    d = null;
  }
  if (d && typeof d.source === 'string' && d.source !== '') {
    setLanguage(d.lang || 'python', { keepName: true });
    filename.value = d.name || FILENAMES[langSelect.value] || '';
    $('args').value = d.args || '';
    $('stdin').value = d.stdin || '';
    editor.value = d.source;
  } else {
    setLanguage(langSelect.value, { keepName: true });
    filename.value = FILENAMES[langSelect.value];
    editor.value = TEMPLATES[langSelect.value];
  }
}

// ---------------------------------------------------------------- form

/**
 * Splits the arguments on blanks; '…' keeps everything literally, "…"
 * and a backslash outside quotes escape one character.
 */
export function parseArgs(s) {
  const args = [];
  let cur = '';
  let inArg = false;
  let quote = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote === "'") {
      if (c === "'") quote = '';
      else cur += c;
    } else if (quote === '"') {
      if (c === '"') quote = '';
      else if (c === '\\' && i + 1 < s.length && '"\\$`'.includes(s[i + 1])) cur += s[++i];
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inArg = true;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      inArg = true;
    } else if (/\s/.test(c)) {
      if (inArg) args.push(cur);
      cur = '';
      inArg = false;
    } else {
      cur += c;
      inArg = true;
    }
  }
  if (quote) throw new Error(`arguments: the quote ${quote} is not closed`);
  if (inArg) args.push(cur);
  return args;
}

/** The arguments as the field shows them (quoted when needed). */
function joinArgs(args) {
  return (args || []).map((a) => (a !== '' && /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(' ');
}

const LIMITS = [
  { id: 'limit-wall', key: 'wall_ms', scale: 1000, what: 'wall time' },
  { id: 'limit-cpu', key: 'cpu_ms', scale: 1000, what: 'CPU time' },
  { id: 'limit-mem', key: 'memory', scale: MiB, what: 'memory' },
  { id: 'limit-procs', key: 'procs', scale: 1, what: 'processes', integer: true },
  { id: 'limit-output', key: 'output', scale: MiB, what: 'output' },
];

class FieldError extends Error {
  constructor(field, message) {
    super(message);
    this.field = field;
  }
}

function readLimits() {
  const limits = {};
  for (const l of LIMITS) {
    const field = $(l.id);
    const raw = field.value.trim();
    if (raw === '') continue;
    const v = Number(raw);
    if (!Number.isFinite(v) || v < 0 || (l.integer && !Number.isInteger(v))) {
      throw new FieldError(field, `the ${l.what} limit must be a ${l.integer ? 'whole ' : ''}number ≥ 0`);
    }
    const n = Math.round(v * l.scale);
    if (n > 0) limits[l.key] = n;
  }
  return limits;
}

function showLimits(limits) {
  for (const l of LIMITS) {
    const v = limits && limits[l.key];
    $(l.id).value = v ? String(Math.round((v / l.scale) * 1000) / 1000) : '';
  }
}

// ---------------------------------------------------------------- output

const out = { stdout: $('stdout'), stderr: $('stderr') };
let current = null; // the JobStream shown
let currentId = null;

function setJobState(text, kind) {
  const el = $('job-state');
  el.textContent = text;
  el.className = `badge badge-${kind || badgeKind(text)}`;
}

function clearResult() {
  const v = $('verdict');
  v.textContent = '—';
  v.className = 'badge badge-queued';
  for (const id of ['exit', 'wall', 'cpu', 'memory', 'executor']) $(id).textContent = '—';
  const d = $('detail');
  d.textContent = '';
  d.hidden = true;
}

function clearOutput() {
  out.stdout.replaceChildren();
  out.stderr.replaceChildren();
  $('stdout-size').textContent = '';
  $('stderr-size').textContent = '';
}

/** Appends text to a pane, following the end when it was there. */
function appendOutput(stream, text) {
  if (!text) return;
  const pane = out[stream];
  const stick = pane.scrollHeight - pane.scrollTop - pane.clientHeight < 24;
  const last = pane.lastChild;
  if (last && last.nodeType === Node.TEXT_NODE && last.length < 65536) last.appendData(text);
  else pane.append(text);
  if (stick) pane.scrollTop = pane.scrollHeight;
}

function b64bytes(s) {
  const bin = atob(s);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

/**
 * JobStream follows one job's output: an EventSource on
 * /api/v1/jobs/ID/output, which reconnects by itself (Last-Event-ID);
 * when the browser gives up (the master answered an error while it
 * restarted), it opens again from the offsets reached.
 */
class JobStream {
  constructor(id) {
    this.id = id;
    this.closed = false;
    this.ended = false;
    this.es = null;
    this.connected = false;
    this.everConnected = false;
    this.retries = 0;
    this.retryTimer = 0;
    this.reset();
  }

  reset() {
    this.have = { stdout: 0, stderr: 0 };
    this.decoders = { stdout: new TextDecoder('utf-8'), stderr: new TextDecoder('utf-8') };
  }

  start() {
    this.open(`/api/v1/jobs/${this.id}/output`);
  }

  open(url) {
    if (this.closed) return;
    const es = new EventSource(url);
    this.es = es;
    es.addEventListener('open', () => {
      if (this.closed || es !== this.es) return;
      this.connected = true;
      this.retries = 0;
      log.ok(`job ${this.id}: output stream ${this.everConnected ? 'reconnected' : 'connected'}`);
      this.everConnected = true;
    });
    es.addEventListener('state', (e) => {
      if (this.closed) return;
      const d = JSON.parse(e.data);
      setJobState(d.executor && d.state === 'running' ? `running on ${d.executor}` : d.state, badgeKind(d.state));
      if (d.executor) $('executor').textContent = d.executor;
      $('cancel').disabled = false;
    });
    es.addEventListener('stdout', (e) => this.chunk('stdout', e));
    es.addEventListener('stderr', (e) => this.chunk('stderr', e));
    es.addEventListener('restart', () => {
      if (this.closed) return;
      log.warn(`job ${this.id}: its executor was lost; the job runs again from the start`);
      this.reset();
      clearOutput();
      setJobState('restarted', 'warn');
    });
    es.addEventListener('end', (e) => {
      if (this.closed) return;
      this.flush();
      this.ended = true;
      this.stop();
      let d = {};
      try {
        d = JSON.parse(e.data);
      } catch {
        d = {};
      }
      log.info(`job ${this.id}: ended (${(d.verdict && d.verdict.verdict) || 'no verdict'})`);
      showEnd(this.id, d);
    });
    es.addEventListener('error', (e) => {
      if (this.closed || es !== this.es) return;
      if (typeof e.data === 'string') {
        // The server's own "error" event: the job vanished or the master stops.
        let msg = e.data;
        try {
          msg = JSON.parse(e.data).error || msg;
        } catch {
          // keep the raw text
        }
        log.error(`job ${this.id}: ${msg}`);
        es.close();
        this.retryLater();
        return;
      }
      if (es.readyState === EventSource.CONNECTING) {
        if (this.connected || !this.everConnected) log.warn(`job ${this.id}: reconnecting…`);
        this.connected = false;
        setJobState('reconnecting…', 'run');
        return;
      }
      // CLOSED: the browser gave up (an error answer); retry ourselves.
      this.connected = false;
      this.retryLater();
    });
  }

  chunk(stream, e) {
    if (this.closed) return;
    let d;
    try {
      d = JSON.parse(e.data);
    } catch {
      log.error(`job ${this.id}: a malformed ${stream} event`);
      return;
    }
    let bytes = b64bytes(d.data || '');
    const have = this.have[stream];
    if (d.offset < have) {
      // Already shown (a reconnection started before what we have).
      const skip = have - d.offset;
      if (skip >= bytes.length) return;
      bytes = bytes.subarray(skip);
    } else if (d.offset > have) {
      log.warn(`job ${this.id}: ${fmtBytes(d.offset - have)} of ${stream} missing`);
    }
    this.have[stream] = Math.max(have, d.offset) + bytes.length;
    appendOutput(stream, this.decoders[stream].decode(bytes, { stream: true }));
    $(`${stream}-size`).textContent = fmtBytes(this.have[stream]);
  }

  flush() {
    for (const s of ['stdout', 'stderr']) appendOutput(s, this.decoders[s].decode());
  }

  retryLater() {
    if (this.closed || this.retryTimer) return;
    if (this.es) this.es.close();
    const delay = Math.min(1000 * 2 ** this.retries, 10000);
    this.retries++;
    setJobState('reconnecting…', 'run');
    log.warn(`job ${this.id}: reconnecting… (in ${fmtMs(delay)})`);
    this.retryTimer = window.setTimeout(async () => {
      this.retryTimer = 0;
      if (this.closed) return;
      try {
        await api('GET', `/api/v1/jobs/${this.id}`);
      } catch (err) {
        if (err.status === 404) {
          log.error(`job ${this.id}: no such job any more (${err.message})`);
          setJobState('gone', 'err');
          this.stop();
          return;
        }
        this.retryLater();
        return;
      }
      this.open(`/api/v1/jobs/${this.id}/output?stdout=${this.have.stdout}&stderr=${this.have.stderr}`);
    }, delay);
  }

  stop() {
    this.closed = true;
    if (this.retryTimer) window.clearTimeout(this.retryTimer);
    this.retryTimer = 0;
    if (this.es) this.es.close();
  }
}

/** Shows job id and follows its output from the start. */
function follow(id, job) {
  if (current) current.stop();
  currentId = id;
  $('job-id').textContent = String(id);
  clearOutput();
  clearResult();
  setJobState(job ? job.state : 'connecting', job ? badgeKind(job.state) : 'run');
  $('cancel').disabled = !job || !['queued', 'running'].includes(job.state);
  current = new JobStream(id);
  current.start();
  markCurrentRow();
}

/** After `end`: the verdict and its figures, from GET /api/v1/jobs/ID. */
async function showEnd(id, end) {
  let d = null;
  try {
    d = await api('GET', `/api/v1/jobs/${id}`);
  } catch (err) {
    log.error(`job ${id}: ${err.message}`);
  }
  if (id !== currentId) return;
  const job = d ? d.job : null;
  const r = (d && d.result) || end.verdict || null;
  const word = (r && r.verdict) || (job && job.verdict) || (job ? job.state.toUpperCase() : 'ENDED');
  const v = $('verdict');
  v.textContent = word;
  v.className = `badge badge-${badgeKind(word)}`;
  setJobState(job ? job.state : 'ended');
  $('cancel').disabled = true;
  const exit = end.exit || (job && job.exit) || (r ? { code: r.status, signal: r.signal } : null);
  $('exit').textContent = exit ? (exit.signal ? fmtExit(exit) : String(exit.code)) : '—';
  $('wall').textContent = r ? fmtMs(r.wall_ms) : (job && job.duration_ms ? fmtMs(job.duration_ms) : '—');
  $('cpu').textContent = r ? fmtMs(r.cpu_ms) : '—';
  $('memory').textContent = r && r.peak_memory ? fmtBytes(r.peak_memory) : '—';
  $('executor').textContent = (r && r.executor) || (job && job.executor) || '—';
  const notes = [];
  if (r && r.detail) notes.push(r.detail);
  if (job && job.reason && !notes.some((n) => n.includes(job.reason))) notes.push(job.reason);
  if (r && r.unsafe) notes.push('run without the sandbox (reshd -unsafe-no-sandbox)');
  const det = $('detail');
  det.textContent = notes.join(' — ');
  det.hidden = notes.length === 0;
  refreshJobs();
}

// ---------------------------------------------------------------- submit

const submitButton = $('submit');

async function submit() {
  if (submitButton.disabled) return;
  const source = editor.value;
  if (source.trim() === '') {
    log.error('the program is empty: open a file, pick a template or type it');
    $('editor').focus();
    return;
  }
  if (new TextEncoder().encode(source).length > MAX_SOURCE) {
    log.error('the program is larger than 1 MiB');
    return;
  }
  const body = { lang: wireLang(langSelect.value), source };
  const name = filename.value.trim();
  if (name) body.name = name;
  try {
    const args = parseArgs($('args').value);
    if (args.length > 256) throw new FieldError($('args'), 'at most 256 arguments');
    if (args.length) body.args = args;
    const limits = readLimits();
    if (Object.keys(limits).length) body.limits = limits;
  } catch (err) {
    log.error(err.message);
    (err.field || $('args')).focus();
    return;
  }
  const stdin = $('stdin').value;
  if (stdin.length > MAX_STDIN) {
    log.error('the standard input is larger than 16 MiB');
    return;
  }
  if (stdin !== '') body.stdin = stdin;
  submitButton.disabled = true;
  try {
    const r = await api('POST', '/api/v1/jobs', body);
    log.ok(`job ${r.id} submitted (${body.lang}, ${body.name || 'main'})`);
    follow(r.id, r.job);
    refreshJobs();
  } catch (err) {
    log.error(`submit refused: ${err.message}${err.status ? ` (${err.status})` : ''}`);
  } finally {
    submitButton.disabled = false;
  }
}

submitButton.addEventListener('click', submit);
document.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    submit();
  }
});

$('cancel').addEventListener('click', () => cancelJob(currentId));

async function cancelJob(id) {
  if (id === null) return;
  try {
    await api('POST', `/api/v1/jobs/${id}/cancel`, {});
    log.ok(`job ${id} cancelled`);
  } catch (err) {
    log.error(`cancel job ${id}: ${err.message}`);
  }
  refreshJobs();
}

// ---------------------------------------------------------------- past jobs

/** Loads a past job into the form and replays its output. */
async function openJob(id) {
  let d;
  try {
    d = await api('GET', `/api/v1/jobs/${id}`);
  } catch (err) {
    log.error(`job ${id}: ${err.message}`);
    return;
  }
  const job = d.job;
  setLanguage(job.lang, { keepName: true });
  filename.value = job.name || '';
  editor.value = d.source || '';
  $('args').value = joinArgs(job.args);
  $('stdin').value = d.stdin || '';
  showLimits(d.limits);
  $('template').value = '';
  log.info(`job ${id} reopened (${job.lang}, ${job.name || 'no name'})`);
  follow(id, job);
}

let jobsShown = '';

function markCurrentRow() {
  for (const tr of $('jobs').tBodies[0].rows) {
    const on = tr.dataset.id === String(currentId);
    tr.classList.toggle('current', on);
    if (on) tr.setAttribute('aria-current', 'true');
    else tr.removeAttribute('aria-current');
  }
}

async function refreshJobs() {
  let d;
  try {
    d = await api('GET', '/api/v1/jobs?limit=50');
  } catch (err) {
    setConn(false, err.message);
    return;
  }
  setConn(true);
  const jobs = d.jobs || [];
  const key = JSON.stringify(jobs);
  if (key === jobsShown) return;
  jobsShown = key;
  const rows = jobs.map((j) => {
    const word = j.verdict || j.state;
    const live = j.state === 'queued' || j.state === 'running';
    return h('tr', { dataset: { id: j.id } },
      h('td', { class: 'num' }, j.id),
      h('td', { class: 'name' }, j.name || '—', h('span', { class: 'muted' }, ` ${j.lang}`)),
      h('td', null, badge(word, badgeKind(word))),
      h('td', null, h('time', { datetime: j.submitted, title: j.submitted }, fmtTime(j.submitted))),
      h('td', { class: 'num' }, j.duration_ms ? fmtMs(j.duration_ms) : '—'),
      h('td', { class: 'row-actions' },
        h('button', { type: 'button', class: 'small', dataset: { action: 'open', key: j.id }, 'aria-label': `Open job ${j.id}` }, 'Open'),
        live ? h('button', { type: 'button', class: 'small danger', dataset: { action: 'cancel', key: j.id }, 'aria-label': `Cancel job ${j.id}` }, 'Cancel') : null));
  });
  if (!rows.length) rows.push(h('tr', null, h('td', { colspan: 6, class: 'empty' }, 'No jobs yet.')));
  replaceRows($('jobs').tBodies[0], rows);
  markCurrentRow();
}

$('jobs').addEventListener('click', (e) => {
  const btn = e.target.closest('button[data-action]');
  if (btn) {
    const id = Number(btn.dataset.key);
    if (btn.dataset.action === 'open') openJob(id);
    else if (btn.dataset.action === 'cancel') cancelJob(id);
    return;
  }
  const tr = e.target.closest('tr[data-id]');
  if (tr && !window.getSelection().toString()) openJob(Number(tr.dataset.id));
});
$('jobs-refresh').addEventListener('click', () => { jobsShown = ''; refreshJobs(); });

// ---------------------------------------------------------------- master

let connOK = null;

function setConn(ok, why) {
  if (ok === connOK) return;
  connOK = ok;
  const el = $('conn');
  el.textContent = ok ? 'connected' : 'unreachable';
  el.className = `badge badge-${ok ? 'ok' : 'err'}`;
  if (ok) log.ok('connected to the master');
  else log.error(`the master is unreachable: ${why}`);
}

async function loadInfo() {
  try {
    const info = await api('GET', '/api/v1/info');
    $('master-name').textContent = info.name;
    const langs = info.languages || [];
    masterLangs = langs;
    for (const l of langs) {
      const v = langValue(l);
      if (![...langSelect.options].some((o) => o.value === v)) langSelect.append(h('option', { value: v }, l));
    }
    for (const o of langSelect.options) {
      o.textContent = o.textContent.replace(/ \(no executor\)$/, '');
      if (langs.length && !langs.includes(wireLang(o.value))) o.textContent += ' (no executor)';
    }
    log.info(`master ${info.name}, ${info.version}; languages: ${langs.join(', ') || 'none (no executor connected)'}`);
  } catch (err) {
    log.error(`info: ${err.message}`);
  }
}

restoreDraft();
clearResult();
loadInfo();
every(4000, refreshJobs);
