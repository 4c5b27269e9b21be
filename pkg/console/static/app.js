// Streambed console: a small single-page app over the public HTTP API.
// No framework and no build step; every string from the API goes into the
// page as text (never as HTML).
'use strict';

const params = new URLSearchParams(location.search);
const API = (params.get('api') || location.origin).replace(/\/+$/, '');
const LAG_INTERVAL_MS = Number(params.get('lag_interval_ms')) || 5000;
const TOKEN_KEY = 'streambed.token';
const AWS_KEY = 'streambed.aws';

class APIError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || ('HTTP ' + status));
    this.status = status;
    this.problem = problem || {};
  }
}

let pendingLogin = null;

// api calls the Streambed API, with a bearer token or signed with SigV4
// when the user gave one; on 401 (or API Gateway's 403 for an unsigned
// request) it asks for credentials and retries once.
async function api(method, path, body, retried) {
  const headers = { Accept: 'application/json' };
  const payload = body === undefined ? undefined : JSON.stringify(body);
  if (payload !== undefined) headers['Content-Type'] = 'application/json';
  const token = sessionStorage.getItem(TOKEN_KEY);
  const aws = JSON.parse(sessionStorage.getItem(AWS_KEY) || 'null');
  if (token) headers.Authorization = 'Bearer ' + token;
  else if (aws) Object.assign(headers, await sigv4(method, API + path, payload || '', aws, new Date()));
  const resp = await fetch(API + path, { method, headers, body: payload });
  const signedIn = token || aws;
  if ((resp.status === 401 || (resp.status === 403 && !signedIn)) && !retried) {
    await askToken(signedIn ? 'Those credentials were refused.' : '');
    return api(method, path, body, true);
  }
  if (resp.status === 204) return null;
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!resp.ok) throw new APIError(resp.status, data);
  return data;
}

function askToken(message) {
  if (pendingLogin) return pendingLogin;
  const dlg = document.getElementById('login');
  const err = document.getElementById('login-error');
  err.hidden = !message;
  err.textContent = message || '';
  pendingLogin = new Promise((resolve) => {
    const form = document.getElementById('login-form');
    form.onsubmit = (ev) => {
      ev.preventDefault();
      const f = new FormData(form);
      const token = String(f.get('token')).trim();
      const aws = { key: String(f.get('aws_key')).trim(), secret: String(f.get('aws_secret')).trim(), session: String(f.get('aws_session')).trim(), region: String(f.get('aws_region')).trim() };
      if (!token && !(aws.key && aws.secret && aws.region)) {
        err.hidden = false;
        err.textContent = 'Give a token, or an access key id, secret access key and region.';
        return;
      }
      sessionStorage.removeItem(TOKEN_KEY);
      sessionStorage.removeItem(AWS_KEY);
      if (token) sessionStorage.setItem(TOKEN_KEY, token);
      else sessionStorage.setItem(AWS_KEY, JSON.stringify(aws));
      form.reset();
      dlg.close();
      pendingLogin = null;
      resolve();
    };
  });
  const region = document.getElementById('aws-region');
  // API Gateway's host names carry the region: execute-api.<region>.amazonaws.com.
  if (!region.value) region.value = (new URL(API).hostname.match(/\.execute-api\.([a-z0-9-]+)\./) || [])[1] || '';
  if (!dlg.open) dlg.showModal();
  return pendingLogin;
}

// ---- SigV4 -------------------------------------------------------------

const utf8 = (s) => new TextEncoder().encode(s);
const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');

async function sha256Hex(bytes) { return hex(await crypto.subtle.digest('SHA-256', bytes)); }

async function hmac(key, msg) {
  const k = await crypto.subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await crypto.subtle.sign('HMAC', k, utf8(msg)));
}

// rfc3986 encodes as SigV4 wants: everything but unreserved characters.
function rfc3986(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

// sigv4 returns the headers that sign a request for API Gateway
// (service execute-api) with creds {key, secret, session, region}: the
// path encoded once more than the URL has it (as AWS's SDKs do for every
// service but S3), the query sorted, and host, content-length (with a
// body), x-amz-date and x-amz-security-token signed. The browser sets Host
// and Content-Length itself, to the values signed here.
async function sigv4(method, url, body, creds, now) {
  const u = new URL(url);
  const amzDate = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const payload = utf8(body);
  const path = u.pathname.split('/').map(rfc3986).join('/') || '/';
  const query = Array.from(u.searchParams.entries()).map(([k, v]) => [rfc3986(k), rfc3986(v)])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => k + '=' + v).join('&');
  const signed = { host: u.host, 'x-amz-date': amzDate };
  if (payload.length > 0) signed['content-length'] = String(payload.length);
  if (creds.session) signed['x-amz-security-token'] = creds.session;
  const names = Object.keys(signed).sort();
  const canonical = [method, path, query, names.map((n) => n + ':' + signed[n] + '\n').join(''), names.join(';'), await sha256Hex(payload)].join('\n');
  const scope = `${day}/${creds.region}/execute-api/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, await sha256Hex(utf8(canonical))].join('\n');
  let key = utf8('AWS4' + creds.secret);
  for (const part of [day, creds.region, 'execute-api', 'aws4_request']) key = await hmac(key, part);
  const signature = hex(await hmac(key, toSign));
  const out = { 'X-Amz-Date': amzDate, Authorization: `AWS4-HMAC-SHA256 Credential=${creds.key}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}` };
  if (creds.session) out['X-Amz-Security-Token'] = creds.session;
  return out;
}

// h builds an element: h('a', {href: '#'}, 'text', child...). Strings are text nodes.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function svg(tag, attrs) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  return el;
}

function table(headers, rows, opts) {
  const numeric = new Set((opts && opts.numeric) || []);
  return h('table', { id: opts && opts.id },
    h('thead', {}, h('tr', {}, headers.map((t, i) => h('th', { class: numeric.has(i) ? 'num' : undefined }, t)))),
    h('tbody', {}, rows.length ? rows.map((r) => h('tr', {}, r.map((c, i) => h('td', { class: numeric.has(i) ? 'num' : undefined }, c)))) :
      h('tr', {}, h('td', { colspan: headers.length, class: 'muted' }, (opts && opts.empty) || 'Nothing here yet.'))));
}

function bytes(n) {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + ' ' + u[i];
}

function duration(ms) {
  if (ms === undefined || ms === null || ms < 0) return 'forever';
  const units = [['d', 86400000], ['h', 3600000], ['m', 60000], ['s', 1000]];
  for (const [u, size] of units) if (ms >= size && ms % size === 0) return (ms / size) + u;
  return ms + 'ms';
}

// lagTime is a time lag for people, as the CLI prints it: 850ms, 5m50.9s,
// 2h3m.
function lagTime(ms) {
  if (ms === undefined || ms === null) return '–';
  if (ms === 0) return '0s';
  if (ms < 1000) return ms + 'ms';
  if (ms < 3600000) {
    const m = Math.floor(ms / 60000);
    const sec = Math.round((ms % 60000) / 100) / 10;
    return (m ? m + 'm' : '') + (sec || !m ? sec + 's' : '');
  }
  const min = Math.round(ms / 60000);
  return Math.floor(min / 60) + 'h' + (min % 60 ? (min % 60) + 'm' : '');
}

function retention(cfg) {
  const parts = [];
  if (cfg.retention_ms !== undefined && cfg.retention_ms >= 0) parts.push(duration(cfg.retention_ms));
  if (cfg.retention_bytes !== undefined && cfg.retention_bytes >= 0) parts.push(bytes(cfg.retention_bytes));
  return parts.length ? parts.join(' / ') : 'forever';
}

function time(ms) { return ms ? new Date(ms).toISOString().replace('.000Z', 'Z') : '–'; }

const enc = encodeURIComponent;
const main = () => document.getElementById('main');
let timers = [];

function showError(err) {
  const box = document.getElementById('error');
  box.hidden = !err;
  box.textContent = err ? String(err.message || err) : '';
}

// ---- views -----------------------------------------------------------

async function topicsView() {
  const list = await api('GET', '/v1/topics?limit=1000');
  const rows = await Promise.all(list.topics.map(async (t) => {
    const parts = (await api('GET', `/v1/topics/${enc(t.name)}/partitions`)).partitions;
    const recs = parts.reduce((s, p) => s + p.log_end_offset - p.log_start_offset, 0);
    const size = parts.reduce((s, p) => s + p.bytes, 0);
    return [h('a', { href: '#/topics/' + enc(t.name) }, t.name), t.partitions, recs, bytes(size), retention(t.config), t.config.cleanup_policy || 'delete'];
  }));
  const form = h('form', { class: 'inline', id: 'create-topic' },
    h('label', {}, 'Name', h('input', { name: 'name', required: true, pattern: '[A-Za-z0-9._-]+', maxlength: 249 })),
    h('label', {}, 'Partitions', h('input', { name: 'partitions', type: 'number', min: 1, value: 1, required: true })),
    h('label', {}, 'Retention (hours, -1 forever)', h('input', { name: 'retention_hours', type: 'number', value: 168 })),
    h('label', {}, 'Cleanup', h('select', { name: 'cleanup' }, h('option', {}, 'delete'), h('option', {}, 'compact'))),
    h('button', { type: 'submit' }, 'Create topic'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const hours = Number(f.get('retention_hours'));
    try {
      await api('POST', '/v1/topics', {
        name: f.get('name'), partitions: Number(f.get('partitions')),
        config: { retention_ms: hours < 0 ? -1 : hours * 3600000, cleanup_policy: f.get('cleanup') },
      });
      location.hash = '#/topics/' + enc(f.get('name'));
    } catch (e) { showError(e); }
  });
  main().replaceChildren(
    h('h1', {}, 'Topics'),
    table(['Topic', 'Partitions', 'Records', 'Size', 'Retention', 'Cleanup'], rows, { id: 'topics', numeric: [1, 2, 3], empty: 'No topics yet: create one below.' }),
    h('h2', {}, 'Create a topic'), h('div', { class: 'card' }, form));
}

async function topicView(name, q) {
  const [t, parts] = await Promise.all([
    api('GET', `/v1/topics/${enc(name)}`),
    api('GET', `/v1/topics/${enc(name)}/partitions`).then((r) => r.partitions),
  ]);
  const messages = browser(t, parts, q);
  const cfg = Object.entries(t.config).map(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))]);
  const grow = h('form', { class: 'inline', id: 'grow-partitions' },
    h('label', {}, 'New partition count', h('input', { name: 'partitions', type: 'number', min: t.partitions + 1, value: t.partitions + 1, required: true })),
    h('button', { type: 'submit' }, 'Increase partitions'));
  grow.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await api('PATCH', `/v1/topics/${enc(name)}`, { partitions: Number(new FormData(grow).get('partitions')) });
      route();
    } catch (e) { showError(e); }
  });
  main().replaceChildren(
    h('h1', {}, 'Topic ', h('span', { id: 'topic-name' }, t.name)),
    h('div', { class: 'card' }, h('dl', { class: 'kv' },
      h('dt', {}, 'ID'), h('dd', {}, t.id), h('dt', {}, 'Partitions'), h('dd', { id: 'partition-count' }, t.partitions),
      h('dt', {}, 'Created'), h('dd', {}, time(t.created_ms)), h('dt', {}, 'Retention'), h('dd', {}, retention(t.config)), cfg)),
    h('h2', {}, 'Partitions'),
    table(['Partition', 'Log start', 'Log end', 'Records', 'Size', 'Last append'],
      parts.map((p) => [p.partition, p.log_start_offset, p.log_end_offset, p.log_end_offset - p.log_start_offset, bytes(p.bytes), time(p.last_append_ms)]),
      { id: 'partitions', numeric: [0, 1, 2, 3, 4] }),
    h('div', { class: 'card' }, grow),
    h('h2', {}, 'Messages'),
    messages.el);
  await messages.load();
}

// browser is the message browser of one topic: pick a partition and a
// start (offset, time or the last N), show records decoded as text, JSON or
// hex, and page older and newer. Its state lives in the URL (after the
// route, as a query), so a view can be linked and the back button returns
// to the page before; it opens on the partition's latest records.
function browser(t, parts, q) {
  const out = h('div', { id: 'messages' });
  const st = {
    partition: q.get('partition') || '0', mode: q.get('from') || 'tail',
    max: q.get('max') || '50', decode: q.get('decode') || 'text',
  };
  st.at = q.get('at') ?? (st.mode === 'tail' ? st.max : '');
  const opt = (value, label, cur) => h('option', { value, selected: String(value) === cur }, label);
  const opts = [];
  for (let p = 0; p < t.partitions; p++) opts.push(opt(p, String(p), st.partition));
  const form = h('form', { class: 'inline', id: 'browse' },
    h('label', {}, 'Partition', h('select', { name: 'partition' }, opts)),
    h('label', {}, 'From', h('select', { name: 'mode' },
      opt('offset', 'offset', st.mode), opt('timestamp', 'time (ISO or ms)', st.mode), opt('tail', 'last N', st.mode))),
    h('label', {}, 'Value', h('input', { name: 'at', value: st.at })),
    h('label', {}, 'Max records', h('input', { name: 'max', type: 'number', min: 1, max: 1000, value: st.max })),
    h('label', {}, 'Decode as', h('select', { name: 'decode' },
      opt('text', 'text', st.decode), opt('json', 'JSON', st.decode), opt('hex', 'hex', st.decode))),
    h('button', { type: 'submit' }, 'Fetch'));
  const base = '#/topics/' + enc(t.name);
  // go shows another page: a new history entry, which route() renders.
  const go = (mode, at) => {
    const f = new FormData(form);
    const next = base + '?' + new URLSearchParams({ partition: f.get('partition'), from: mode, at: String(at), max: f.get('max'), decode: f.get('decode') });
    if (location.hash === next) load(); else location.hash = next;
  };
  let last = null;
  const render = () => {
    if (!last) return;
    const mode = new FormData(form).get('decode');
    const max = Number(new FormData(form).get('max')) || 50;
    const first = last.records.length ? last.records[0].offset : last.next_offset;
    const older = h('button', { type: 'button', id: 'older', disabled: first <= last.log_start_offset },
      '← Older');
    older.addEventListener('click', () => go('offset', Math.max(last.log_start_offset, first - max)));
    const newer = h('button', { type: 'button', id: 'newer', disabled: last.next_offset >= last.log_end_offset }, 'Newer →');
    newer.addEventListener('click', () => go('offset', last.next_offset));
    out.replaceChildren(
      h('p', { class: 'muted', id: 'page-info' }, `${last.records.length} records; next offset ${last.next_offset}; log ${last.log_start_offset}–${last.log_end_offset}`),
      h('div', { class: 'pager' }, older, ' ', newer),
      table(['Offset', 'Timestamp', 'Key', 'Value', 'Headers'], last.records.map((r) => [
        r.offset, time(r.timestamp), h('pre', {}, decode(r.key, r.key_b64, 'text')),
        h('pre', { class: 'value' }, decode(r.value, r.value_b64, mode)),
        (r.headers || []).map((hd) => h('div', {}, h('span', { class: 'badge' }, hd.name), ' ', decode(hd.value, hd.value_b64, 'text'))),
      ]), { id: 'records', numeric: [0], empty: 'No records at this position.' }));
  };
  const load = async () => {
    const f = new FormData(form);
    const rq = new URLSearchParams({ format: 'auto', max_records: f.get('max') });
    const at = String(f.get('at')).trim();
    if (f.get('mode') === 'offset') rq.set('offset', at || '0');
    else if (f.get('mode') === 'tail') rq.set('tail', at || f.get('max'));
    else rq.set('timestamp', /^\d+$/.test(at) ? at : String(Date.parse(at)));
    try {
      last = await api('GET', `/v1/topics/${enc(t.name)}/partitions/${f.get('partition')}/records?${rq}`);
      showError(null);
      render();
    } catch (e) { showError(e); }
  };
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    go(f.get('mode'), String(f.get('at')).trim());
  });
  form.elements.decode.addEventListener('change', () => {
    // How records are shown is part of the link, but not a new page.
    const cur = new URLSearchParams(location.hash.split('?')[1] || '');
    cur.set('decode', new FormData(form).get('decode'));
    history.replaceState(null, '', base + '?' + cur);
    render();
  });
  return { el: h('div', {}, h('div', { class: 'card' }, form), out), load };
}

function toBytes(text, b64) {
  if (b64 !== undefined && b64 !== null) return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  if (text === undefined || text === null) return null;
  return new TextEncoder().encode(text);
}

function decode(text, b64, mode) {
  const b = toBytes(text, b64);
  if (b === null) return 'null';
  if (mode === 'hex') {
    const lines = [];
    for (let i = 0; i < b.length; i += 16) {
      const chunk = Array.from(b.slice(i, i + 16));
      lines.push(i.toString(16).padStart(6, '0') + '  ' + chunk.map((x) => x.toString(16).padStart(2, '0')).join(' ').padEnd(48) +
        '  ' + chunk.map((x) => (x >= 32 && x < 127 ? String.fromCharCode(x) : '.')).join(''));
    }
    return lines.join('\n');
  }
  const s = new TextDecoder('utf-8', { fatal: false }).decode(b);
  if (mode === 'json') {
    try { return JSON.stringify(JSON.parse(s), null, 2); } catch (e) { return '(not JSON) ' + s; }
  }
  return s;
}

async function groupsView() {
  const list = await api('GET', '/v1/groups?limit=1000');
  const rows = await Promise.all(list.groups.map(async (g) => {
    const [d, lag] = await Promise.all([api('GET', `/v1/groups/${enc(g)}`), api('GET', `/v1/groups/${enc(g)}/lag`)]);
    return [h('a', { href: '#/groups/' + enc(g) }, g), d.state, d.members.length, lag.total_lag, lag.max_lag];
  }));
  main().replaceChildren(h('h1', {}, 'Consumer groups'),
    table(['Group', 'State', 'Members', 'Total lag', 'Max lag'], rows, { id: 'groups', numeric: [2, 3, 4], empty: 'No consumer groups yet.' }));
}

async function groupView(name) {
  const [d, lag] = await Promise.all([api('GET', `/v1/groups/${enc(name)}`), api('GET', `/v1/groups/${enc(name)}/lag`)]);
  const tps = (list) => (list || []).map((tp) => `${tp.topic}: ${tp.partitions.join(', ')}`).join('; ') || '–';
  const lagTable = h('div', { id: 'lag-table' });
  const totals = h('p', { id: 'lag-total' });
  const chart = h('div', { id: 'lag-chart' });
  const samples = [];
  const draw = (l) => {
    totals.replaceChildren('Total lag ', h('strong', { id: 'total-lag' }, l.total_lag), ', max ', l.max_lag);
    lagTable.replaceChildren(table(['Topic', 'Partition', 'Committed', 'Log end', 'Lag', 'Time lag', 'Owner'],
      l.partitions.map((p) => [p.topic, p.partition, p.committed_offset ?? '–', p.log_end_offset, p.lag, lagTime(p.time_lag_ms), p.member_id || '–']),
      { id: 'lag', numeric: [1, 2, 3, 4] }));
    samples.push({ t: Date.now(), lag: l.total_lag });
    if (samples.length > 360) samples.shift();
    chart.replaceChildren(lagChart(samples));
  };
  main().replaceChildren(
    h('h1', {}, 'Group ', h('span', { id: 'group-name' }, d.group)),
    h('div', { class: 'card' }, h('dl', { class: 'kv' },
      h('dt', {}, 'State'), h('dd', { id: 'group-state' }, d.state), h('dt', {}, 'Group epoch'), h('dd', {}, d.group_epoch),
      h('dt', {}, 'Assignor'), h('dd', {}, d.assignor))),
    h('h2', {}, 'Members'),
    table(['Member', 'Epoch', 'Topics', 'Assigned', 'Client'], d.members.map((m) => [m.member_id, m.member_epoch, m.topics.join(', '), tps(m.assignment), m.client_id || '–']),
      { id: 'members', numeric: [1], empty: 'No live members.' }),
    h('h2', {}, 'Lag'), totals, chart, lagTable);
  draw(lag);
  timers.push(setInterval(async () => {
    try { draw(await api('GET', `/v1/groups/${enc(name)}/lag`)); } catch (e) { showError(e); }
  }, LAG_INTERVAL_MS));
}

// lagChart draws total lag over the samples taken while the page is open.
function lagChart(samples) {
  const W = 720, H = 160, P = 36;
  const el = svg('svg', { class: 'chart', width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'total lag over time' });
  const maxLag = Math.max(1, ...samples.map((s) => s.lag));
  const t0 = samples[0].t, t1 = Math.max(samples[samples.length - 1].t, t0 + 1);
  const x = (t) => P + (W - 2 * P) * (t - t0) / (t1 - t0);
  const y = (v) => H - P / 2 - (H - P) * v / maxLag;
  el.append(svg('line', { x1: P, y1: y(0), x2: W - P, y2: y(0) }), svg('line', { x1: P, y1: y(maxLag), x2: W - P, y2: y(maxLag) }));
  const lbl = (txt, xx, yy) => { const t = svg('text', { x: xx, y: yy }); t.textContent = txt; return t; };
  el.append(lbl(String(maxLag), 4, y(maxLag) + 4), lbl('0', 4, y(0) + 4), lbl(new Date(t0).toLocaleTimeString(), P, H - 2),
    lbl(new Date(t1).toLocaleTimeString(), W - P - 60, H - 2));
  const pts = samples.length === 1 ? [[P, y(samples[0].lag)], [W - P, y(samples[0].lag)]] : samples.map((s) => [x(s.t), y(s.lag)]);
  el.append(svg('polyline', { points: pts.map((p) => p.map((v) => v.toFixed(1)).join(',')).join(' ') }));
  return el;
}

// ---- routing ---------------------------------------------------------

async function route() {
  timers.forEach(clearInterval);
  timers = [];
  showError(null);
  const [path, query] = location.hash.replace(/^#\/?/, '').split('?');
  const parts = path.split('/').map(decodeURIComponent);
  const q = new URLSearchParams(query || '');
  const section = parts[0] || 'topics';
  document.querySelectorAll('nav a').forEach((a) => a.classList.toggle('active', a.dataset.nav === section));
  try {
    if (section === 'topics' && parts[1]) await topicView(parts[1], q);
    else if (section === 'groups' && parts[1]) await groupView(parts[1]);
    else if (section === 'groups') await groupsView();
    else await topicsView();
    document.body.dataset.ready = location.hash || '#/topics';
  } catch (e) {
    main().replaceChildren(h('p', { class: 'muted' }, 'Could not load this page.'));
    showError(e);
  }
}

async function start() {
  try {
    const info = await api('GET', '/v1');
    const be = [info.backends.objects, info.backends.metadata].filter(Boolean).join(' + ');
    document.getElementById('endpoint').textContent = [API, `${info.name} ${info.version}`, be].filter(Boolean).join(' · ');
  } catch (e) { showError(e); }
  window.addEventListener('hashchange', route);
  route();
}

start();
