// The replog dashboard: reads the node's JSON API (docs/HTTP.md) and follows
// its event stream. Every value shown comes from the network, so text is
// only ever set with textContent, never parsed as HTML.
'use strict';

const session = { csrf: '', nodeId: '' };
const openPaths = new Set();
const closedPaths = new Set();
const OPEN_DEPTH = 3;
const FEED_MAX = 200;
let stateTimer = null;
let conflictsTimer = null;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function showError(text) { document.getElementById('error').textContent = text || ''; }

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Replog-CSRF': session.csrf },
    body: JSON.stringify(body),
  };
  const res = await fetch(path, init);
  const data = await res.json().catch(() => ({ error: 'HTTP ' + res.status }));
  if (!res.ok) throw new Error(data.error || ('HTTP ' + res.status));
  return data;
}

function ago(ms) {
  if (!ms) return 'never';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 60 ? s + ' s ago' : Math.round(s / 60) + ' min ago';
}

// --- identity and status ---------------------------------------------------------

function renderStatus(status) {
  document.getElementById('node-id').textContent = status.node_id || '';
  document.getElementById('device-id').textContent = status.device_id || '(no device key)';
  document.getElementById('cluster-id').textContent = status.cluster_id || '';
  document.getElementById('update-count').textContent = String(status.updates);
  document.getElementById('state-hash').textContent = (status.state_hash || '').slice(0, 16);
  renderOrigins(status);
  renderArchive(status.archive);
}

// Per origin: what is held, how far a signed head verifies it, and what else is known of it.
function renderOrigins(status) {
  const body = document.querySelector('#origins tbody');
  body.replaceChildren();
  for (const [origin, held] of Object.entries(status.vector || {})) {
    const verified = (status.verified || {})[origin];
    const notes = [];
    if (origin === status.node_id) notes.push('this node');
    if ((status.forks || {})[origin]) notes.push('forked: ' + status.forks[origin]);
    if ((status.revoked || {})[origin] !== undefined) notes.push('revoked after #' + status.revoked[origin]);
    if ((status.former_origins || {})[origin]) notes.push('left: ' + status.former_origins[origin]);
    body.append(el('tr', { 'data-origin': origin },
      el('td', { class: 'mono' }, origin),
      el('td', {}, String(held)),
      el('td', { class: verified === held ? 'insync' : 'behind' }, verified === undefined ? 'none' : '#' + verified),
      el('td', {}, notes.join('; '))));
  }
}

function renderArchive(a) {
  const dl = document.getElementById('archive');
  dl.replaceChildren();
  const row = (k, v) => dl.append(el('dt', {}, k), el('dd', { 'data-field': k }, v));
  if (!a) return row('archive', 'not archiving (start the node with --archive)');
  row('last upload', a.last_push_ms ? new Date(a.last_push_ms).toLocaleString() + ' (' + ago(a.last_push_ms) + ')' : 'none yet');
  row('lag', a.lag_updates + ' updates, ' + Math.round((a.lag_age_ms || 0) / 1000) + ' s');
  row('last snapshot', a.last_snapshot || 'none');
  row('last poll', a.last_poll_ms ? ago(a.last_poll_ms) : 'never');
  row('last error', a.last_error || 'none');
}

function renderPeers(peers) {
  const body = document.querySelector('#peers tbody');
  body.replaceChildren();
  document.getElementById('no-peers').hidden = peers.length > 0;
  for (const p of peers) {
    let sync;
    if (!p.ready) sync = el('span', { class: 'down' }, 'not connected');
    else if (p.we_lack === 0 && p.they_lack === 0) sync = el('span', { class: 'insync' }, 'in sync');
    else if (p.we_lack > 0) sync = el('span', { class: 'behind' }, 'we are behind by ' + p.we_lack);
    else sync = el('span', { class: 'behind' }, 'behind by ' + p.they_lack);
    body.append(el('tr', { 'data-node-id': p.node_id },
      el('td', { class: 'mono' }, p.node_id),
      el('td', { class: 'mono' }, p.device_id || '-'),
      el('td', { class: 'mono' }, p.endpoint),
      el('td', { class: 'how' }, p.how || '-'),
      el('td', {}, ago(p.last_seen_ms)),
      el('td', { class: 'sync' }, sync),
      el('td', {}, p.bytes_sent + ' B / ' + p.bytes_received + ' B')));
  }
}

// --- typed values --------------------------------------------------------------------

function badge(kind, text) { return el('span', { class: 'type ' + kind }, text); }

// A typed JSON scalar (docs/VALUES.md): its text and type badge, or null for a container.
function scalar(v) {
  if (v === null) return [el('span', { class: 'num' }, 'null'), badge('null', 'null')];
  if (typeof v === 'string') return [el('span', { class: 'str' }, JSON.stringify(v)), badge('string', 'string')];
  if (typeof v === 'boolean') return [el('span', { class: 'num' }, String(v)), badge('bool', 'bool')];
  if (typeof v === 'number') return [el('span', { class: 'num' }, String(v)), badge('num', Number.isInteger(v) ? 'int' : 'float')];
  if (Array.isArray(v)) return null;
  if ('$time' in v) {
    const d = new Date(v.$time);
    return [el('time', { dateTime: v.$time, title: v.$time }, isNaN(d) ? v.$time : d.toLocaleString()), badge('time', 'time')];
  }
  if ('$enum' in v) {
    const dot = v.$enum.lastIndexOf('.');
    return [el('span', { class: 'enum' }, v.$enum.slice(dot + 1)), badge('enum', 'enum ' + v.$enum.slice(0, dot))];
  }
  if ('$bytes' in v) return [el('span', { class: 'str' }, v.$bytes), badge('bytes', 'bytes')];
  if ('$float' in v) return [el('span', { class: 'num' }, v.$float), badge('num', 'float')];
  return null;
}

// The children of a container: [key, value] pairs, and its type badge.
function members(v) {
  if (Array.isArray(v)) return [v.map((x, i) => [String(i), x]), badge('list', 'list of ' + v.length)];
  if ('$type' in v) return [Object.entries(v).filter(([k]) => k !== '$type'), badge('record', v.$type)];
  if ('$map' in v) return [Object.entries(v.$map), badge('map', 'map')];
  return [Object.entries(v), badge('map', 'map')];
}

// The first levels start open; what the person opens or closes stays so across refreshes.
function isOpen(path, depth) {
  return openPaths.has(path) || (depth < OPEN_DEPTH && !closedPaths.has(path));
}

function treeNode(key, v, path, depth = 0) {
  const s = scalar(v);
  if (s) return el('div', { class: 'leaf', 'data-path': path }, el('span', { class: 'key' }, key + ': '), ...s);
  const [entries, type] = members(v);
  const d = el('details', { 'data-path': path, open: isOpen(path, depth) });
  d.addEventListener('toggle', () => {
    (d.open ? openPaths : closedPaths).add(path);
    (d.open ? closedPaths : openPaths).delete(path);
  });
  d.append(el('summary', {}, el('span', { class: 'key' }, key), type));
  for (const [k, child] of entries) d.append(treeNode(k, child, path ? path + '.' + k : k, depth + 1));
  return d;
}

async function loadState() {
  const data = await api('/api/state?form=typed');
  const tree = document.getElementById('state-tree');
  tree.replaceChildren(treeNode('state', data.value, ''));
}

// --- live feed ----------------------------------------------------------------------

function addToFeed(u) {
  const feed = document.getElementById('feed');
  const own = u.origin === session.nodeId;
  const li = el('li', { class: 'fresh', 'data-id': u.id, 'data-origin': u.origin },
    el('span', { class: 'muted' }, new Date(u.time).toLocaleTimeString() + ' '),
    el('span', {}, (own ? 'this node' : u.origin) + ' #' + u.seq + ' '),
    el('span', { class: 'method' }, u.method + ' '),
    el('span', {}, JSON.stringify(u.arg)));
  feed.prepend(li);
  setTimeout(() => li.classList.remove('fresh'), 1500);
  while (feed.children.length > FEED_MAX) feed.lastChild.remove();
}

// --- conflicts ----------------------------------------------------------------------

function side(label, u, cls) {
  return el('div', { class: 'side ' + cls, 'data-id': u.id || '' },
    el('div', {}, el('strong', {}, label), ' ', el('span', { class: 'mono' }, u.id || '')),
    el('div', { class: 'muted' }, u.origin ? u.origin + ' #' + u.seq + ' at ' + u.time : ''),
    el('pre', {}, u.method ? u.method + ' ' + JSON.stringify(u.arg, null, 1) : '(not held)'));
}

async function fetchUpdate(id) {
  try { return await api('/api/update?id=' + encodeURIComponent(id)); } catch (e) { return { id }; }
}

async function conflictCard(c) {
  const skipped = await fetchUpdate(c.update);
  const involved = await Promise.all(c.involved.filter((id) => id !== c.update).map(fetchUpdate));
  const method = el('input', { class: 'followup-method', value: skipped.method || 'set' });
  const arg = el('textarea', { class: 'followup-arg', rows: 3 });
  arg.value = JSON.stringify(skipped.arg === undefined ? {} : skipped.arg);
  const result = el('span', { class: 'muted' });
  const apply = el('button', { type: 'button', class: 'resolve' }, 'apply follow-up and resolve');
  apply.addEventListener('click', async () => {
    try {
      await api('/api/call', { method: method.value, arg: JSON.parse(arg.value) });
      await api('/api/resolve', { update: c.update });
      result.textContent = 'resolved';
      scheduleConflicts();
    } catch (e) { result.textContent = e.message; result.className = 'error'; }
  });
  const only = el('button', { type: 'button', class: 'resolve-only' }, 'resolve as is');
  only.addEventListener('click', async () => {
    try { await api('/api/resolve', { update: c.update }); scheduleConflicts(); } catch (e) { result.textContent = e.message; }
  });
  return el('div', { class: 'conflict', 'data-update': c.update },
    el('div', {}, el('strong', {}, c.kind), ' at ', el('span', { class: 'mono' }, c.path.join('.') || '(root)')),
    el('div', { class: 'sides' }, side('skipped', skipped, 'skipped'), ...involved.map((u) => side('involved', u, 'involved'))),
    el('div', { class: 'followup' }, method, arg, apply, only, result));
}

let conflictsLoad = 0;

// Cards already shown are kept as they are, so that a follow-up being typed survives a refresh.
async function loadConflicts() {
  const mine = ++conflictsLoad;
  const data = await api('/api/conflicts');
  const box = document.getElementById('conflicts');
  const shown = new Map([...box.children].map((c) => [c.getAttribute('data-update'), c]));
  const cards = await Promise.all(data.conflicts.map((c) => shown.get(c.update) || conflictCard(c)));
  if (mine !== conflictsLoad) return;  // a newer load has shown its own
  box.replaceChildren(...cards);
  document.getElementById('conflict-count').textContent = String(data.conflicts.length);
  document.getElementById('no-conflicts').hidden = data.conflicts.length > 0;
}

// --- refreshing ---------------------------------------------------------------------

function scheduleState() {
  clearTimeout(stateTimer);
  stateTimer = setTimeout(() => loadState().catch((e) => showError(e.message)), 100);
}

function scheduleConflicts() {
  clearTimeout(conflictsTimer);
  conflictsTimer = setTimeout(() => loadConflicts().catch((e) => showError(e.message)), 150);
}

let statusTimer = null;

function scheduleStatus() {
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => Promise.all([api('/api/status'), api('/api/peers')])
    .then(([status, peers]) => { renderStatus(status); renderPeers(peers); })
    .catch((e) => showError(e.message)), 300);
}

async function refreshAll() {
  const [status, peers] = await Promise.all([api('/api/status'), api('/api/peers')]);
  renderStatus(status);
  renderPeers(peers);
  scheduleState();
  scheduleConflicts();
}

let lastConflicts = -1;

function onEvent(m) {
  if (m.type === 'update') {
    addToFeed(m.update);
    scheduleState();
    scheduleStatus();
    if (m.update.method === 'resolve') scheduleConflicts();
  } else if (m.type === 'status') {
    renderStatus(m.status);
    renderPeers(m.peers);
    if (m.status.conflicts !== lastConflicts) { lastConflicts = m.status.conflicts; scheduleConflicts(); }
  } else if (m.type === 'overflow') {
    refreshAll().catch((e) => showError(e.message));
  }
}

function connect(delay) {
  const live = document.getElementById('live');
  const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/api/events');
  ws.onopen = () => { live.textContent = 'live'; live.className = 'live on'; refreshAll().catch((e) => showError(e.message)); };
  ws.onmessage = (e) => { try { onEvent(JSON.parse(e.data)); } catch (err) { showError(err.message); } };
  ws.onclose = () => {
    live.textContent = 'reconnecting'; live.className = 'live off';
    setTimeout(() => connect(Math.min(delay * 2, 5000)), delay);
  };
}

async function start() {
  const s = await api('/api/session');
  session.csrf = s.csrf;
  session.nodeId = s.node_id;
  if (location.search.includes('token=')) history.replaceState(null, '', '/');  // the cookie holds it now
  document.getElementById('state-refresh').addEventListener('click', scheduleState);
  document.getElementById('call-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const out = document.getElementById('call-result');
    try {
      const r = await api('/api/call', { method: document.getElementById('call-method').value,
                                         arg: JSON.parse(document.getElementById('call-arg').value) });
      out.textContent = 'stored ' + r.id; out.className = 'muted';
    } catch (err) { out.textContent = err.message; out.className = 'error'; }
  });
  connect(250);
}

start().catch((e) => showError('cannot reach the node: ' + e.message));
