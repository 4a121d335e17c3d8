// Berth's web console. One page; each view reads and changes the registry
// through its JSON APIs with the signed-in user's credentials, so the API's
// access control is the console's. Every value is shown as text: elements
// are built with createElement and textContent, never from markup.
'use strict';

const main = document.getElementById('main');
const who = document.getElementById('who');
const session = { auth: sessionStorage.getItem('berth-auth'), me: null };
let stopLive = null; // stops the events view's polling when leaving it
let generation = 0; // the newest navigation; an older one's page is dropped

// ---------------------------------------------------------------- elements

// h('a', {href: '#/x'}, 'text', child, ...): strings become text nodes.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'checked' || k === 'disabled' || k === 'selected' || k === 'open') el[k] = Boolean(v);
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// Shows nodes at once (views that render before they wait for anything).
function show(...nodes) { main.replaceChildren(...nodes.flat()); }
// What a view returns: the nodes to show, if it is still the newest.
function page(...nodes) { return nodes.flat(); }
function table(headers, rows) {
  return h('table', {}, h('thead', {}, h('tr', {}, headers.map((x) => h('th', {}, x)))),
    h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: headers.length, class: 'muted' }, 'Nothing here.'))));
}
function row(...cells) { return h('tr', {}, cells.map((c) => (c instanceof Node && c.tagName === 'TD' ? c : h('td', {}, c)))); }
function mono(text) { return h('td', { class: 'mono' }, text); }
function short(digest) { return digest ? String(digest).replace(/^(sha256:|sha512:)(.{12}).*$/, '$1$2…') : ''; }
function bytes(n) {
  if (n === null || n === undefined) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = Number(n), u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return (u ? v.toFixed(1) : v) + ' ' + units[u];
}
function enc(s) { return encodeURIComponent(s); }
function path(repo) { return repo.split('/').map(enc).join('/'); }
function isAdmin() { return session.me && session.me.role === 'admin'; }
function copyLine(text) {
  const code = h('code', {}, text);
  return h('div', { class: 'copy' }, code,
    h('button', { type: 'button', onclick: () => navigator.clipboard && navigator.clipboard.writeText(text) }, 'Copy'));
}
function failure(e) { return h('p', { class: 'failure' }, String(e.message || e)); }
function host() { return location.host; }

// ---------------------------------------------------------------- the API

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}
class SignInNeeded extends Error {}

// The error message of any of Berth's error shapes.
function messageOf(status, body) {
  if (body && Array.isArray(body.errors) && body.errors[0]) return body.errors[0].detail || body.errors[0].message;
  if (body && body.error && typeof body.error === 'object') return body.error.message;
  if (body && typeof body.error === 'string') return body.error;
  if (status === 403) return 'Your role does not allow this.';
  return 'The registry answered ' + status + '.';
}

async function api(method, url, body) {
  const headers = { 'X-Berth-Console': '1', Accept: 'application/json' };
  if (session.auth) headers.Authorization = 'Basic ' + session.auth;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'omit' });
  const text = await resp.text();
  let data = text;
  try { data = text ? JSON.parse(text) : null; } catch (_) { /* plain text */ }
  if (resp.status === 401) throw new SignInNeeded();
  if (!resp.ok) throw new ApiError(resp.status, messageOf(resp.status, data));
  return data;
}

// ---------------------------------------------------------------- routing

const routes = [
  [/^\/repositories$/, repositories],
  [/^\/repositories\/(.+)$/, repository],
  [/^\/manifest\/(.+)@(sha(?:256|512):[0-9a-f]+)$/, manifest],
  [/^\/webhooks$/, webhooks],
  [/^\/webhooks\/new$/, () => webhookForm(null)],
  [/^\/webhooks\/([A-Za-z0-9]+)\/edit$/, (name) => webhookForm(name)],
  [/^\/webhooks\/([A-Za-z0-9]+)$/, webhook],
  [/^\/events$/, events],
  [/^\/charts$/, charts],
  [/^\/charts\/(.+)$/, chartRepository],
  [/^\/quarantine$/, quarantine],
  [/^\/policies$/, policies],
  [/^\/status$/, status],
  [/^\/signin$/, signIn],
];

function params() {
  const q = location.hash.indexOf('?');
  return new URLSearchParams(q < 0 ? '' : location.hash.slice(q + 1));
}

async function route() {
  if (stopLive) { stopLive(); stopLive = null; }
  let hash = location.hash.replace(/^#/, '');
  const q = hash.indexOf('?');
  if (q >= 0) hash = hash.slice(0, q);
  if (hash === '' || hash === '/') { location.hash = '#/repositories'; return; }
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', hash.startsWith('/' + a.dataset.page));
  }
  const gen = ++generation;
  for (const [pattern, view] of routes) {
    const m = hash.match(pattern);
    if (!m) continue;
    try {
      if (!session.me && view !== signIn) await whoAmI();
      const nodes = await view(...m.slice(1).map(decodeURIComponent));
      if (nodes && gen === generation) main.replaceChildren(...nodes);
    } catch (e) {
      if (gen !== generation) return;
      if (e instanceof SignInNeeded) signIn();
      else show(h('h1', {}, 'Something went wrong'), failure(e));
    }
    return;
  }
  show(h('h1', {}, 'Not found'), h('p', {}, 'No such page.'));
}

async function whoAmI() {
  session.me = await api('GET', '/api/whoami');
  who.replaceChildren();
  if (session.me.auth) {
    who.append(h('span', {}, session.me.user + ' (' + session.me.role + ')'),
      h('button', { type: 'button', onclick: signOut }, 'Sign out'));
  }
}

function signOut() {
  session.auth = null; session.me = null;
  sessionStorage.removeItem('berth-auth');
  who.replaceChildren();
  location.hash = '#/signin';
}

function signIn() {
  const user = h('input', { type: 'text', id: 'user', name: 'user', autocomplete: 'username' });
  const pass = h('input', { type: 'password', id: 'password', name: 'password', autocomplete: 'current-password' });
  const message = h('p', { class: 'error' });
  const form = h('form', { class: 'stacked', onsubmit: async (ev) => {
    ev.preventDefault();
    session.auth = btoa(unescape(encodeURIComponent(user.value + ':' + pass.value)));
    try {
      await whoAmI();
      sessionStorage.setItem('berth-auth', session.auth);
      location.hash = '#/repositories';
      if (location.hash === '#/repositories') route();
    } catch (e) {
      session.auth = null;
      message.textContent = e instanceof SignInNeeded ? 'Wrong user name or password.' : String(e.message);
    }
  } },
  h('label', { for: 'user' }, 'User'), user,
  h('label', { for: 'password' }, 'Password'), pass,
  h('p', {}, h('button', { type: 'submit', class: 'primary' }, 'Sign in')), message);
  show(h('h1', {}, 'Sign in'), h('p', { class: 'muted' }, 'This registry asks for a user of its htpasswd file.'), form);
  user.focus();
}

// ---------------------------------------------------------------- repositories

async function repositories() {
  const p = params();
  const search = p.get('q') || '';
  const query = new URLSearchParams({ n: '50' });
  if (search) query.set('q', search);
  if (p.get('last')) query.set('last', p.get('last'));
  const data = await api('GET', '/api/repositories?' + query);
  const box = h('input', { type: 'search', id: 'search', placeholder: 'Search repositories', value: search, 'aria-label': 'Search repositories' });
  const go = (ev) => { ev.preventDefault(); location.hash = '#/repositories' + (box.value ? '?q=' + enc(box.value) : ''); };
  const rows = data.repositories.map((r) => row(
    h('td', {}, h('a', { href: '#/repositories/' + path(r.name) }, r.name)), String(r.tags)));
  const next = data.next ? h('a', { class: 'button', href: '#/repositories?' + new URLSearchParams({ q: search, last: data.next }) }, 'Next page') : null;
  return page(h('h1', {}, 'Repositories'),
    h('form', { class: 'search', onsubmit: go }, box, h('button', { type: 'submit' }, 'Search')),
    table(['Repository', 'Tags'], rows), next);
}

async function repository(name) {
  const p = params();
  const query = new URLSearchParams({ n: '50' });
  if (p.get('last')) query.set('last', p.get('last'));
  const data = await api('GET', '/api/repositories/' + path(name) + '/_tags?' + query);
  const rows = data.tags.map((t) => row(
    h('td', {}, h('a', { href: '#/manifest/' + path(name) + '@' + t.digest }, t.tag), t.quarantined ? h('span', { class: 'pill bad' }, ' quarantined') : null),
    mono(short(t.digest)), t.mediaType || '', bytes(t.size), (t.platforms || []).join(', '), t.pushed || '',
    h('td', {}, copyLine('docker pull ' + host() + '/' + name + ':' + t.tag)),
    h('td', {}, isAdmin() ? h('button', { type: 'button', class: 'danger', onclick: () => deleteTag(name, t.tag) }, 'Delete tag') : null)));
  const next = data.next ? h('a', { class: 'button', href: '#/repositories/' + path(name) + '?last=' + enc(data.next) }, 'Next page') : null;
  return page(h('p', {}, h('a', { href: '#/repositories' }, '← Repositories')), h('h1', {}, name),
    table(['Tag', 'Digest', 'Media type', 'Size', 'Platforms', 'Pushed', 'Pull', ''], rows), next);
}

async function deleteTag(repo, tag) {
  if (!confirm('Delete the tag ' + repo + ':' + tag + '?\nThe manifest stays (under its digest and other tags). No event is raised.')) return;
  try {
    await api('DELETE', '/v2/' + path(repo) + '/manifests/' + enc(tag));
    route();
  } catch (e) { alert(e.message); }
}

/** The command that pulls manifest `m` of `repo`: helm's for a chart pushed with `helm push`. */
function pullLine(repo, m) {
  const chart = m.config && m.config.mediaType === 'application/vnd.cncf.helm.config.v1+json';
  if (chart && (m.tags || []).length) return copyLine('helm pull oci://' + host() + '/' + repo + ' --version ' + m.tags[0] + (location.protocol === 'http:' ? ' --plain-http' : ''));
  return copyLine('docker pull ' + host() + '/' + repo + '@' + m.digest);
}

function descriptorRows(list, repo) {
  return (list || []).map((d) => row(mono(d.digest), d.mediaType || '', bytes(d.size),
    d.platform ? [d.platform.os, d.platform.architecture, d.platform.variant].filter(Boolean).join('/') : '',
    h('td', {}, repo && d.mediaType && /manifest|index/.test(d.mediaType) ? h('a', { href: '#/manifest/' + path(repo) + '@' + d.digest }, 'open') : null)));
}

async function manifest(repo, digest) {
  const m = await api('GET', '/api/repositories/' + path(repo) + '/_manifests/' + digest);
  const parts = [h('p', {}, h('a', { href: '#/repositories/' + path(repo) }, '← ' + repo)),
    h('h1', {}, repo + '@' + short(digest)),
    h('dl', { class: 'grid' },
      h('dt', {}, 'Digest'), h('dd', { class: 'mono' }, m.digest),
      h('dt', {}, 'Media type'), h('dd', {}, m.mediaType),
      m.artifactType ? [h('dt', {}, 'Artifact type'), h('dd', {}, m.artifactType)] : null,
      h('dt', {}, 'Size'), h('dd', {}, bytes(m.size)),
      h('dt', {}, 'Tags'), h('dd', {}, (m.tags || []).join(', ') || 'untagged'),
      m.updated ? [h('dt', {}, 'Last changed'), h('dd', {}, m.updated)] : null,
      m.quarantine ? [h('dt', {}, 'Quarantine'), h('dd', {}, m.quarantine.failed ? 'failed' : 'held')] : null),
    h('h2', {}, 'Pull'), pullLine(repo, m)];
  if (m.config) parts.push(h('h2', {}, 'Config'), table(['Digest', 'Media type', 'Size', '', ''], descriptorRows([m.config])));
  if (m.layers) parts.push(h('h2', {}, 'Layers'), table(['Digest', 'Media type', 'Size', '', ''], descriptorRows(m.layers)));
  if (m.manifests) parts.push(h('h2', {}, 'Manifests'), table(['Digest', 'Media type', 'Size', 'Platform', ''], descriptorRows(m.manifests, repo)));
  if (m.subject) parts.push(h('h2', {}, 'Subject'), table(['Digest', 'Media type', 'Size', '', ''], descriptorRows([m.subject], repo)));
  if (m.annotations) parts.push(h('h2', {}, 'Annotations'), table(['Key', 'Value'], Object.entries(m.annotations).map(([k, v]) => row(mono(k), String(v)))));
  parts.push(h('h2', {}, 'Referrers (signatures, SBOMs, attestations)'),
    table(['Digest', 'Artifact type', 'Size', ''], (m.referrers || []).map((r) => row(mono(r.digest), r.artifactType || r.mediaType || '', bytes(r.size),
      h('td', {}, h('a', { href: '#/manifest/' + path(repo) + '@' + r.digest }, 'open'))))));
  if (isAdmin()) {
    const tags = (m.tags || []).length ? ' and its tags ' + m.tags.join(', ') : '';
    parts.push(h('div', { class: 'toolbar' }, h('button', { type: 'button', class: 'danger', onclick: async () => {
      if (!confirm('Delete ' + repo + '@' + m.digest + tags + '?\nOne "delete" event is raised (webhooks, event log); its blobs go at the next gc.')) return;
      try { await api('DELETE', '/v2/' + path(repo) + '/manifests/' + m.digest); location.hash = '#/repositories/' + path(repo); } catch (e) { alert(e.message); }
    } }, 'Delete manifest')));
  }
  return parts;
}

// ---------------------------------------------------------------- webhooks

const ACTIONS = ['push', 'delete', 'chart_push', 'chart_delete', 'quarantine'];

function statusCell(last) {
  if (!last) return h('td', { class: 'muted' }, 'none yet');
  if (last.error) return h('td', { class: 'error' }, String(last.error));
  const code = Number(last.statusCode);
  return h('td', { class: code >= 200 && code < 300 ? 'ok' : 'error' }, String(last.statusCode));
}

async function webhooks() {
  const data = await api('GET', '/api/webhooks');
  const rows = data.webhooks.map((w) => row(
    h('td', {}, h('a', { href: '#/webhooks/' + enc(w.name) }, w.name)),
    w.status, (w.actions || []).join(', '), w.scope || '(all)', w.location || '(all)', statusCell(w.lastDelivery)));
  return page(h('h1', {}, 'Webhooks'),
    h('div', { class: 'toolbar' }, isAdmin() ? h('a', { class: 'button', href: '#/webhooks/new', id: 'add-webhook' }, 'Add') : null),
    table(['Name', 'Status', 'Actions', 'Scope', 'Location', 'HTTP status'], rows));
}

function field(id, label, input, hint) {
  return [h('label', { for: id }, label), input, hint ? h('p', { class: 'hint' }, hint) : null];
}

async function webhookForm(name) {
  const editing = Boolean(name);
  const hook = editing ? await api('GET', '/api/webhooks/' + enc(name)) : { actions: ['push'], status: 'enabled', format: 'acr' };
  const config = editing ? await api('GET', '/api/webhooks/' + enc(name) + '/config') : { serviceUri: '', customHeaders: {} };
  const nameInput = h('input', { type: 'text', id: 'webhook-name', name: 'name', value: name || '', disabled: editing, autocomplete: 'off' });
  const nameCheck = h('p', { class: 'hint', id: 'name-check' }, '5 to 50 letters and digits.');
  nameInput.addEventListener('input', () => {
    const ok = /^[A-Za-z0-9]{5,50}$/.test(nameInput.value);
    nameCheck.textContent = ok ? 'Looks good.' : '5 to 50 letters and digits, nothing else.';
    nameCheck.className = ok ? 'hint ok' : 'hint error';
  });
  const uri = h('input', { type: 'text', id: 'service-uri', name: 'serviceUri', value: config.serviceUri || '' });
  const headers = h('textarea', { id: 'custom-headers', name: 'customHeaders' });
  headers.value = Object.entries(config.customHeaders || {}).map(([k, v]) => k + ': ' + v).join('\n');
  const boxes = ACTIONS.map((a) => h('input', { type: 'checkbox', id: 'action-' + a, value: a, checked: (hook.actions || []).includes(a) }));
  const status = h('select', { id: 'status', name: 'status' }, ['enabled', 'disabled'].map((s) => h('option', { value: s, selected: hook.status === s }, s)));
  const scope = h('input', { type: 'text', id: 'scope', name: 'scope', value: hook.scope || '', placeholder: 'repository:tag or repository:*' });
  const locationInput = h('input', { type: 'text', id: 'location', name: 'location', value: hook.location || '', placeholder: 'every location' });
  const secret = h('input', { type: 'password', id: 'secret', name: 'secret', autocomplete: 'new-password', placeholder: editing && hook.signed ? 'unchanged' : 'none' });
  const format = h('select', { id: 'format', name: 'format' }, ['acr', 'cloudevents'].map((f) => h('option', { value: f, selected: hook.format === f }, f)));
  const message = h('p', { class: 'error', id: 'form-error' });
  const form = h('form', { class: 'stacked', id: 'webhook-form', onsubmit: async (ev) => {
    ev.preventDefault();
    const custom = {};
    for (const line of headers.value.split('\n')) {
      if (!line.trim()) continue;
      const at = line.search(/[:=]/);
      if (at < 1) { message.textContent = 'Each custom header is one "Key: Value" line.'; return; }
      custom[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
    const body = {
      serviceUri: uri.value.trim(), customHeaders: custom,
      actions: boxes.filter((b) => b.checked).map((b) => b.value),
      status: status.value, scope: scope.value.trim(), format: format.value, location: locationInput.value.trim(),
    };
    if (secret.value) body.secret = secret.value;
    const target = editing ? name : nameInput.value.trim();
    try {
      await api(editing ? 'PATCH' : 'PUT', '/api/webhooks/' + enc(target), body);
      location.hash = '#/webhooks/' + enc(target);
    } catch (e) { message.textContent = e.message; }
  } },
  field('webhook-name', 'Webhook name', nameInput), nameCheck,
  field('location', 'Location', locationInput, 'Only events raised by replicas in this location; empty for every location.'),
  field('service-uri', 'Service URI', uri, 'Where events are POSTed (http:// or https://).'),
  field('custom-headers', 'Custom headers', headers, 'One "Key: Value" per line.'),
  h('fieldset', {}, h('legend', {}, 'Trigger actions'), ACTIONS.map((a, i) => [boxes[i], h('label', { for: 'action-' + a }, a)])),
  field('status', 'Status', status),
  field('scope', 'Scope', scope, 'repository:tag, repository:* or a repository (its latest tag); empty for everything.'),
  field('secret', 'Signing secret', secret, 'Optional: Standard Webhooks signatures.'),
  field('format', 'Format', format, 'acr: Azure Container Registry\'s payload; cloudevents: a CloudEvents 1.0 envelope.'),
  h('div', { class: 'toolbar' }, h('button', { type: 'submit', class: 'primary', id: 'save' }, editing ? 'Save' : 'Create'),
    h('a', { class: 'button', href: editing ? '#/webhooks/' + enc(name) : '#/webhooks' }, 'Cancel')),
  message);
  return page(h('h1', {}, editing ? 'Edit ' + name : 'Add a webhook'), form);
}

function deliveryRows(name, list) {
  return list.map((d) => {
    let action = '';
    try { const c = d.eventRequestMessage && d.eventRequestMessage.content; action = (typeof c === 'string' ? JSON.parse(c) : c).action || ''; } catch (_) { /* not JSON */ }
    const response = d.eventResponseMessage;
    const code = response ? response.statusCode : '';
    const detail = h('details', {}, h('summary', {}, 'Request and response'),
      h('h2', {}, 'Request'), h('pre', {}, JSON.stringify(d.eventRequestMessage, null, 2)),
      h('h2', {}, 'Response'), h('pre', {}, response ? JSON.stringify(response, null, 2) : String(d.error || 'no answer')));
    return row(h('td', { class: response && Number(code) < 300 ? 'ok' : 'error' }, response ? String(code) : String(d.error || '')),
      d.timestamp, action, String(d.attempts), d.result,
      h('td', {}, detail),
      h('td', {}, isAdmin() ? h('button', { type: 'button', onclick: () => redeliver(name, d.id) }, 'Redeliver') : null));
  });
}

async function redeliver(name, id) {
  try { await api('POST', '/api/webhooks/' + enc(name) + '/events/' + enc(id) + '/redeliver'); route(); } catch (e) { alert(e.message); }
}

async function webhook(name) {
  const hook = await api('GET', '/api/webhooks/' + enc(name));
  const history = await api('GET', '/api/webhooks/' + enc(name) + '/events?n=50');
  const result = h('p', { id: 'ping-result' });
  const toolbar = h('div', { class: 'toolbar' });
  if (isAdmin()) {
    toolbar.append(
      h('button', { type: 'button', id: 'ping', onclick: async () => {
        result.textContent = 'Pinging…';
        try {
          const r = await api('POST', '/api/webhooks/' + enc(name) + '/ping');
          await route();
          document.getElementById('ping-result').textContent = r.statusCode ? 'Ping answered ' + r.statusCode : 'Ping failed: ' + r.error;
        } catch (e) { result.textContent = e.message; }
      } }, 'Ping'),
      h('a', { class: 'button', href: '#/webhooks/' + enc(name) + '/edit', id: 'edit' }, 'Edit'),
      h('button', { type: 'button', id: 'toggle', onclick: async () => {
        try { await api('PATCH', '/api/webhooks/' + enc(name), { status: hook.status === 'enabled' ? 'disabled' : 'enabled' }); route(); } catch (e) { alert(e.message); }
      } }, hook.status === 'enabled' ? 'Disable' : 'Enable'),
      h('button', { type: 'button', class: 'danger', id: 'delete', onclick: async () => {
        if (!confirm('Delete the webhook ' + name + ' with its queue and delivery history?')) return;
        try { await api('DELETE', '/api/webhooks/' + enc(name)); location.hash = '#/webhooks'; } catch (e) { alert(e.message); }
      } }, 'Delete'));
  }
  return page(h('p', {}, h('a', { href: '#/webhooks' }, '← Webhooks')), h('h1', {}, name), toolbar, result,
    h('dl', { class: 'grid' },
      h('dt', {}, 'Status'), h('dd', {}, hook.status),
      h('dt', {}, 'Actions'), h('dd', {}, (hook.actions || []).join(', ')),
      h('dt', {}, 'Scope'), h('dd', {}, hook.scope || '(all)'),
      h('dt', {}, 'Location'), h('dd', {}, hook.location || '(all)'),
      h('dt', {}, 'Custom headers'), h('dd', {}, (hook.customHeaders || []).join(', ') || '(none)'),
      h('dt', {}, 'Signed'), h('dd', {}, hook.signed ? 'yes' : 'no'),
      h('dt', {}, 'Format'), h('dd', {}, hook.format),
      h('dt', {}, 'Pending'), h('dd', {}, String(hook.pending))),
    h('h2', {}, 'Deliveries'),
    table(['HTTP status', 'Time', 'Action', 'Attempts', 'Result', '', ''], deliveryRows(name, history.value || [])));
}

// ---------------------------------------------------------------- events

async function events() {
  const p = params();
  const action = h('select', { id: 'filter-action', 'aria-label': 'Action' }, ['', ...ACTIONS].map((a) => h('option', { value: a, selected: p.get('action') === a }, a || 'every action')));
  const repo = h('input', { type: 'search', id: 'filter-repository', placeholder: 'Repository', value: p.get('repository') || '' });
  const apply = (ev) => { ev.preventDefault(); location.hash = '#/events?' + new URLSearchParams({ action: action.value, repository: repo.value }); };
  const body = h('tbody', {});
  const live = h('span', { class: 'muted' }, 'live');
  show(h('h1', {}, 'Events'), h('form', { class: 'search', onsubmit: apply }, action, repo, h('button', { type: 'submit' }, 'Filter'), live),
    h('table', { id: 'events' }, h('thead', {}, h('tr', {}, ['Seq', 'Time', 'Action', 'Repository', 'Tag', 'Digest', 'User agent'].map((x) => h('th', {}, x)))), body));
  let after = 0;
  let stopped = false;
  stopLive = () => { stopped = true; };
  const poll = async () => {
    if (stopped) return;
    const query = new URLSearchParams({ after: String(after), n: '200' });
    if (p.get('action')) query.set('action', p.get('action'));
    if (p.get('repository')) query.set('repository', p.get('repository'));
    try {
      const data = await api('GET', '/api/events?' + query);
      for (const e of data.events) {
        after = Math.max(after, e.seq);
        const t = e.target || {};
        body.prepend(row(String(e.seq), e.timestamp, e.action, t.repository || '', t.tag || '', mono(short(t.digest)), (e.request || {}).useragent || ''));
      }
      live.textContent = 'live';
    } catch (e) { live.textContent = e.message; }
    if (!stopped) setTimeout(poll, 1500);
  };
  poll();
}

// ---------------------------------------------------------------- charts

async function charts() {
  const data = await api('GET', '/helm/api');
  return page(h('h1', {}, 'Chart repositories'),
    table(['Repository', 'Versions'], data.repositories.map((r) => row(h('td', {}, h('a', { href: '#/charts/' + path(r.name) }, r.name)), String(r.versions)))));
}

async function chartRepository(repo) {
  const data = await api('GET', '/helm/api/' + path(repo) + '/charts');
  const alias = repo.replace(/\//g, '-');
  const rows = [];
  for (const [name, versions] of Object.entries(data)) {
    for (const v of versions) {
      rows.push(row(name, v.version, v.appVersion || '', v.description || '', v.created || '',
        h('td', {}, copyLine('helm pull ' + alias + '/' + name + ' --version ' + v.version))));
    }
  }
  return page(h('p', {}, h('a', { href: '#/charts' }, '← Chart repositories')), h('h1', {}, repo),
    copyLine('helm repo add ' + alias + ' ' + location.protocol + '//' + host() + '/helm/' + repo),
    table(['Chart', 'Version', 'App version', 'Description', 'Created', 'Pull'], rows));
}

// ---------------------------------------------------------------- quarantine

async function quarantine() {
  const data = await api('GET', '/api/quarantine');
  const judge = async (m, state) => {
    try { await api('PATCH', '/api/quarantine/' + path(m.repository) + '/' + m.digest, { state, details: 'decided in the console' }); route(); } catch (e) { alert(e.message); }
  };
  const rows = (data.manifests || []).map((m) => row(m.repository, mono(m.digest), (m.tags || []).join(', '), m.state,
    h('td', {}, isAdmin() ? [h('button', { type: 'button', onclick: () => judge(m, 'Passed') }, 'Pass'), ' ', h('button', { type: 'button', class: 'danger', onclick: () => judge(m, 'Failed') }, 'Fail')] : null)));
  return page(h('h1', {}, 'Quarantine'), table(['Repository', 'Digest', 'Tags', 'State', ''], rows));
}

// ---------------------------------------------------------------- policies

async function policies() {
  const p = await api('GET', '/api/policies');
  const report = h('div', { id: 'retention-report' });
  const run = async (dry) => {
    if (!dry && !confirm('Run retention now? What it removes raises "delete" events; blobs go at the next gc.')) return;
    try {
      const r = await api(dry ? 'GET' : 'POST', '/api/retention');
      report.replaceChildren(h('p', {}, (dry ? 'Would remove ' : 'Removed ') + r.tags_removed.length + ' tag(s) and ' + r.manifests_removed.length + ' manifest(s).'),
        h('pre', {}, [...r.tags_removed, ...r.manifests_removed].join('\n') || '(nothing)'));
    } catch (e) { report.replaceChildren(failure(e)); }
  };
  const readOnly = p.maintenance.readOnly;
  const toolbar = isAdmin() ? h('div', { class: 'toolbar' },
    h('button', { type: 'button', id: 'retention-dry-run', onclick: () => run(true) }, 'Retention: dry run'),
    h('button', { type: 'button', class: 'danger', onclick: () => run(false) }, 'Run retention'),
    h('button', { type: 'button', id: 'read-only', disabled: p.maintenance.source === 'configuration', onclick: async () => {
      try { await api('PUT', '/api/maintenance', { readOnly: !readOnly }); route(); } catch (e) { alert(e.message); }
    } }, readOnly ? 'End read-only mode' : 'Start read-only mode')) : null;
  return page(h('h1', {}, 'Policies'),
    h('p', {}, 'Read-only: ' + (readOnly ? 'yes (' + p.maintenance.source + ')' : 'no')), toolbar, report,
    h('h2', {}, 'Retention rules (a repository follows the first that matches)'),
    table(['Repositories', 'Keep tags', 'Keep most recent', 'Max age', 'Untagged max age', 'Source'], p.retention.map((r) => row(
      r.repositories.join(', '), (r.keep_tags || []).join(', '), r.keep_most_recent === undefined ? '' : String(r.keep_most_recent),
      r.max_age || '', r.untagged_max_age || '', r.source))),
    h('h2', {}, 'Immutable tags'),
    table(['Repositories', 'Tags', 'Source'], p.immutable.map((r) => row(r.repositories.join(', '), r.tags.join(', '), r.source))),
    h('p', { class: 'muted' }, 'Rules come from the configuration file and from berth policy set (PUT /api/policies).'));
}

// ---------------------------------------------------------------- status

async function status() {
  const s = await api('GET', '/api/status');
  const parts = [h('h1', {}, 'Status'), h('dl', { class: 'grid' },
    h('dt', {}, 'Version'), h('dd', {}, s.version),
    h('dt', {}, 'Uptime'), h('dd', {}, Math.floor(s.uptimeSeconds / 3600) + ' h ' + Math.floor((s.uptimeSeconds % 3600) / 60) + ' min'),
    h('dt', {}, 'Health'), h('dd', { class: s.ready ? 'ok' : 'error' }, s.ready ? 'ready' : 'the store failed'),
    h('dt', {}, 'Read-only'), h('dd', {}, s.readOnly ? 'yes (maintenance)' : 'no'),
    h('dt', {}, 'Location'), h('dd', {}, s.location || '(none)'),
    h('dt', {}, 'Metadata'), h('dd', {}, s.storage.metadata),
    h('dt', {}, 'Blobs'), h('dd', {}, s.storage.blobs),
    h('dt', {}, 'Disk free'), h('dd', {}, s.storage.freeBytes === null ? '(no local disk)' : bytes(s.storage.freeBytes)),
    h('dt', {}, 'Repositories'), h('dd', {}, String(s.storage.repositories)),
    h('dt', {}, 'Uploads in progress'), h('dd', {}, String(s.storage.uploadsInProgress)),
    h('dt', {}, 'Requests answered'), h('dd', {}, s.requests.total + ' (' + s.requests.failed + ' failed)'))];
  if (isAdmin()) {
    try {
      const config = await api('GET', '/console/config');
      parts.push(h('h2', {}, 'Configuration (secrets masked)'), h('pre', { id: 'config' }, config));
    } catch (e) { parts.push(failure(e)); }
  }
  return parts;
}

window.addEventListener('hashchange', route);
route();
