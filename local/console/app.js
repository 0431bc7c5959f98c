// The connector's web console: an employee's client and, on the sandbox, the contact's phone,
// over the local runner's API (openapi.yaml). Live from GET /events (read with fetch, so the
// token stays in a header) and /sandbox/events; nothing polls. No build step, no library.
'use strict';

const S = {
  config: { sandbox: false, dev_clock: false, now: 0, business_name: '' },
  offset: 0, // connector clock minus this browser's (the dev clock may run ahead)
  user: null, // { token, claims }
  users: [], // recent users, kept in localStorage
  threads: new Map(),
  tab: 'mine',
  open: null, // the open thread's id
  messages: new Map(), // the open thread's history, by id
  replyTo: null, // the message the next send answers
  templates: [],
  cursor: null, // Last-Event-ID
  stream: null, // AbortController of the event stream
  live: false,
  phone: null, // the contact shown on the phone panel (+E.164)
  media: new Map(), // media id -> blob URL
};

// ---- words, times ----
const lang = () => (S.user && (S.user.claims.locale || '').slice(0, 2) in I18N ? S.user.claims.locale.slice(0, 2) : 'en');
function t(key, vars) {
  const s = I18N[lang()][key] ?? I18N.en[key] ?? key;
  return vars ? s.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? '')) : s;
}
const fmt = (iso) => new Intl.DateTimeFormat(lang(), { dateStyle: 'short', timeStyle: 'short' }).format(new Date(iso));
const now = () => Date.now() + S.offset;
function left(ms) {
  const m = Math.max(0, Math.round(ms / 60000));
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

// ---- DOM ----
const $ = (id) => document.getElementById(id);
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat(Infinity)) if (kid != null && kid !== false) el.append(kid.nodeType ? kid : String(kid));
  return el;
}
/** Replaces an element's children, skipping the null and false of conditional parts. */
function put(el, ...kids) {
  el.replaceChildren(...kids.flat(Infinity).filter((k) => k != null && k !== false));
}
let ids = 0;
/** A labelled control: the label names it for screen readers. */
function field(label, control) {
  control.id = control.id || `f${++ids}`;
  return h('div', {}, h('label', { for: control.id }, label), control);
}
/** Re-renders a list without losing the keyboard's place: focus returns to the same key. */
function keepFocus(render) {
  const key = document.activeElement && document.activeElement.dataset.key;
  render();
  if (key) document.querySelector(`[data-key="${CSS.escape(key)}"]`)?.focus();
}
function toast(message) {
  const el = $('toast');
  el.textContent = message;
  el.hidden = !message;
}
/** Runs an action from a button or form: shows what failed, keeps the button from double sends. */
function act(fn) {
  return async (ev) => {
    ev.preventDefault();
    const button = ev.submitter || (ev.currentTarget.tagName === 'BUTTON' ? ev.currentTarget : null);
    if (button) button.disabled = true;
    try {
      toast('');
      await fn(ev);
    } catch (e) {
      toast(t('error', { message: e.message }));
    } finally {
      if (button) button.disabled = false;
    }
  };
}

// ---- the API ----
class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code;
  }
}
async function api(method, path, body, raw) {
  const headers = S.user ? { Authorization: `Bearer ${S.user.token}` } : {};
  let payload;
  if (raw) {
    payload = raw;
    headers['Content-Type'] = raw.type;
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers['Content-Type'] = 'application/json';
  }
  const r = await fetch(path, { method, headers, body: payload });
  const text = await r.text();
  let data = text;
  if ((r.headers.get('content-type') || '').startsWith('application/json')) data = JSON.parse(text);
  if (!r.ok) throw new ApiError(r.status, (data && data.error) || { message: text });
  return data;
}
const conv = (id) => `/conversations/${encodeURIComponent(id)}`;
const roles = () => (S.user ? S.user.claims.roles || [] : []);
const isAgent = () => roles().includes('agent') || roles().includes('admin');

// ---- signing in ----
function claimsOf(token) {
  const part = token.split('.')[1] || '';
  return JSON.parse(atob(part.replace(/-/g, '+').replace(/_/g, '/')));
}
function saveUsers() {
  localStorage.setItem('console.users', JSON.stringify(S.users.slice(0, 8)));
  localStorage.setItem('console.current', S.user ? S.user.claims.sub : '');
}
function showSignIn() {
  S.stream?.abort();
  S.user = null;
  S.live = false;
  localize();
  for (const id of ['threads', 'thread', 'phone']) $(id).hidden = true;
  put($('who'), );
  const pane = $('signin');
  pane.hidden = false;
  const sub = h('input', { name: 'sub', required: true, maxlength: 64, autocomplete: 'off' });
  const name = h('input', { name: 'name', autocomplete: 'off' });
  const locale = h('select', { name: 'locale' }, Object.keys(I18N).map((l) => h('option', { value: l }, l)));
  const subOrg = h('input', { name: 'sub_org', value: 'retail' });
  const region = h('input', { name: 'region', value: 'eu' });
  const agent = h('input', { type: 'checkbox', name: 'agent' });
  const admin = h('input', { type: 'checkbox', name: 'admin' });
  const token = h('textarea', { name: 'token', rows: 2 });
  const mint = async () => {
    const r = [agent.checked && 'agent', admin.checked && 'admin'].filter(Boolean);
    const body = { sub: sub.value, name: name.value, locale: locale.value, sub_org: subOrg.value, region: region.value, roles: r };
    const minted = await api('POST', '/dev/token', body);
    await signIn({ token: minted.token, claims: minted.claims });
  };
  put(pane, 
    h('h2', { id: 'signin-title' }, t('signin_title')),
    S.users.length ? h('h3', {}, t('saved_users')) : null,
    h('ul', { class: 'list row' }, S.users.map((u) => h('li', {}, h('button', { class: 'quiet', onclick: act(() => signIn(u)) }, `${u.claims.name} (${u.claims.sub})`)))),
    S.config.sandbox
      ? h('form', { onsubmit: act(mint), 'aria-labelledby': 'mint-title' },
          h('h3', { id: 'mint-title' }, t('mint_title')),
          h('div', { class: 'row' }, field(t('user_id'), sub), field(t('name'), name), field(t('language'), locale)),
          h('div', { class: 'row' }, field(t('sub_org'), subOrg), field(t('region'), region)),
          h('label', { class: 'inline' }, agent, t('role_agent')),
          h('label', { class: 'inline' }, admin, t('role_admin')),
          h('p', {}, h('button', { type: 'submit' }, t('sign_in'))))
      : h('p', { class: 'muted' }, t('no_dev_tokens')),
    h('form', { onsubmit: act(() => signIn({ token: token.value.trim(), claims: claimsOf(token.value.trim()) })) },
      field(t('paste_token'), token),
      h('p', {}, h('button', { type: 'submit', class: 'quiet' }, t('use_token')))),
  );
  (S.config.sandbox ? sub : token).focus();
}
async function signIn(user) {
  S.stream?.abort();
  S.user = user;
  S.users = [user, ...S.users.filter((u) => u.claims.sub !== user.claims.sub)];
  saveUsers();
  Object.assign(S, { threads: new Map(), open: null, messages: new Map(), cursor: null, tab: 'mine' });
  localize();
  $('signin').hidden = true;
  $('threads').hidden = false;
  $('thread').hidden = false;
  put($('who'), 
    h('span', {}, t('signed_in_as', { name: user.claims.name || user.claims.sub })),
    h('button', { type: 'button', onclick: act(async () => showSignIn()) }, t('switch_user')),
  );
  renderClock();
  renderThreadsPane();
  renderThread();
  renderPhonePane();
  // The stream first: nothing that changes while the lists load is missed.
  listen();
  await Promise.all([loadThreads(), loadTemplates()]);
}
function localize() {
  document.documentElement.lang = lang();
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  document.title = t('app_title');
}

// ---- the dev clock ----
function renderClock() {
  const el = $('clock');
  el.hidden = !S.config.dev_clock;
  if (el.hidden) return;
  const advance = (secs) => act(async () => {
    const r = await fetch('/dev/clock', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ advance_secs: secs }) });
    const body = await r.json();
    if (!r.ok) throw new ApiError(r.status, body.error || {});
    S.offset = Date.parse(body.now) - Date.now();
    tick();
  });
  put(el, 
    h('span', { id: 'clock-now' }),
    h('button', { type: 'button', onclick: advance(3600) }, t('advance_1h')),
    h('button', { type: 'button', onclick: advance(25 * 3600) }, t('advance_25h')),
  );
  tick();
}
/** What moves with time alone: the connector's clock and the open thread's window. */
function tick() {
  const clock = $('clock-now');
  if (clock) clock.textContent = t('clock_now', { time: fmt(now()) });
  const win = $('window');
  const c = S.threads.get(S.open);
  if (win && c) win.textContent = windowText(c);
}
function windowText(c) {
  const until = c.window_open_until ? Date.parse(c.window_open_until) : 0;
  return until > now() ? t('window_open', { left: left(until - now()) }) : t('window_closed');
}

// ---- live events ----
function setLive(on) {
  S.live = on;
  const el = $('live');
  el.className = `live ${on ? 'on' : 'off'}`;
  el.textContent = S.user ? t(on ? 'live_on' : 'live_off') : '';
}
/** Reads GET /events as Server-Sent Events; reconnects with Last-Event-ID, so nothing is lost. */
async function listen() {
  const ctrl = new AbortController();
  S.stream = ctrl;
  while (!ctrl.signal.aborted) {
    try {
      const headers = { Authorization: `Bearer ${S.user.token}`, Accept: 'text/event-stream' };
      if (S.cursor) headers['Last-Event-ID'] = S.cursor;
      const r = await fetch('/events', { headers, signal: ctrl.signal });
      if (r.status === 401) {
        // The token expired or was refused: asking again will not help.
        showSignIn();
        toast(t('error', { message: (await r.json()).error.message }));
        return;
      }
      if (!r.ok) throw new Error(`events: ${r.status}`);
      setLive(true);
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n?/g, '\n');
        let end;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          dispatch(block);
        }
      }
    } catch (e) {
      if (ctrl.signal.aborted) return;
    }
    setLive(false);
    await new Promise((r) => setTimeout(r, 1000));
  }
}
function dispatch(block) {
  let event = 'message';
  let id = null;
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const [field, ...rest] = line.split(':');
    const value = rest.join(':').replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'id') id = value;
    else if (field === 'data') data.push(value);
  }
  if (!data.length) return;
  if (id) S.cursor = id;
  const body = JSON.parse(data.join('\n'));
  if (event === 'message') onMessage(body);
  else if (event === 'conversation') onConversation(body);
  else if (event === 'removed') onRemoved(body);
}
function onMessage(m) {
  if (m.conversation_id !== S.open) return;
  S.messages.set(m.id, m);
  renderMessages();
  // Its thread's event may come first or second: whichever comes last marks it read.
  if (m.direction === 'inbound') markRead().catch((e) => toast(t('error', { message: e.message })));
}
function onConversation(c) {
  // An agent hears of unclaimed threads; once a colleague claims one, it is not ours to list.
  if (c.status !== 'unassigned' && !c.participants.some((p) => p.user_id === S.user.claims.sub)) {
    S.threads.delete(c.id);
    renderThreadList();
    return;
  }
  const before = S.threads.get(c.id);
  S.threads.set(c.id, c);
  renderThreadList();
  if (c.id === S.open) {
    renderHeader();
    renderPeople();
    // A colleague joined or left: a group shows no ticks (renderMessage).
    if ((before?.participants.length > 1) !== (c.participants.length > 1)) renderMessages();
    // Opted out or back in: the composer is disabled or enabled.
    if ((before?.consent === 'opted_out') !== (c.consent === 'opted_out')) renderComposer();
    if (c.unread_count) markRead().catch((e) => toast(t('error', { message: e.message })));
  }
}
function onRemoved(r) {
  S.threads.delete(r.conversation_id);
  renderThreadList();
  if (r.conversation_id === S.open) {
    S.open = null;
    renderThread();
    $('thread').append(h('p', { class: 'msg notice', role: 'status' }, (r.notice && r.notice.text) || t('removed')));
  }
}

// ---- threads ----
async function loadThreads() {
  const lists = [api('GET', '/conversations')];
  if (isAgent()) lists.push(api('GET', '/conversations?status=unassigned'));
  for (const list of await Promise.all(lists)) for (const c of list.conversations) S.threads.set(c.id, c);
  renderThreadList();
  renderPhonePicker();
}
async function loadTemplates() {
  S.templates = (await api('GET', '/templates')).templates;
  if (S.open) renderComposer();
}
function renderThreadsPane() {
  const phone = h('input', { type: 'tel', required: true, placeholder: '+447700900123', autocomplete: 'off' });
  const name = h('input', { autocomplete: 'off' });
  const start = async () => {
    const c = await api('POST', '/conversations', { contact: { phone: phone.value.trim(), name: name.value.trim() || undefined } });
    S.threads.set(c.id, c);
    phone.value = name.value = '';
    S.tab = 'mine';
    await openThread(c.id);
  };
  const tabs = isAgent()
    ? h('div', { class: 'tabs', role: 'group', 'aria-label': t('threads') },
        ['mine', 'unassigned'].map((tab) => h('button', { type: 'button', 'aria-pressed': String(S.tab === tab), 'data-tab': tab, onclick: act(async () => { S.tab = tab; renderThreadsPane(); }) }, t(tab))))
    : null;
  const words = h('input', { type: 'search', name: 'search', autocomplete: 'off' });
  const find = async () => {
    const q = words.value.trim();
    const out = $('search-results');
    if (!q) return put(out);
    const found = (await api('GET', `/search?q=${encodeURIComponent(q)}`)).results;
    put(out, ...found.map((r) => {
      const c = S.threads.get(r.conversation_id);
      const who = r.sender === 'contact' ? (c ? threadLabel(c) : t('contact')) : r.sender === 'system' ? t('system') : nameOf(r.sender);
      return h('li', {}, h('button', { type: 'button', 'data-thread': r.conversation_id, onclick: act(() => openThread(r.conversation_id)) },
        h('strong', {}, c ? threadLabel(c) : r.conversation_id), ' ', h('span', { class: 'muted' }, `${who}, ${fmt(r.at)}`), h('br'), r.text || ''));
    }));
    if (!found.length) out.append(h('li', { class: 'muted' }, t('search_none')));
  };
  put($('threads'), 
    h('h2', { id: 'threads-title' }, t('threads')),
    h('form', { role: 'search', onsubmit: act(find), 'aria-labelledby': 'search-title' },
      h('h3', { id: 'search-title' }, t('search_title')),
      field(t('search_words'), words),
      h('p', {}, h('button', { type: 'submit' }, t('search_go')))),
    h('ul', { id: 'search-results', class: 'list', 'aria-live': 'polite' }),
    h('form', { onsubmit: act(start), 'aria-labelledby': 'new-title' },
      h('h3', { id: 'new-title' }, t('new_thread')),
      field(t('contact_phone'), phone), field(t('contact_name'), name),
      h('p', {}, h('button', { type: 'submit' }, t('start')))),
    tabs,
    h('ul', { id: 'thread-list', class: 'list' }),
  );
  renderThreadList();
}
function threadLabel(c) {
  return (c.contact && (c.contact.name || c.contact.phone)) || c.id;
}
function renderThreadList() {
  keepFocus(renderThreadList_);
}
function renderThreadList_() {
  const list = $('thread-list');
  if (!list) return;
  const unassigned = S.tab === 'unassigned';
  const shown = [...S.threads.values()]
    .filter((c) => (c.status === 'unassigned') === unassigned)
    .sort((a, b) => b.last_activity_at.localeCompare(a.last_activity_at));
  put(list, ...shown.map((c) => h('li', {},
    unassigned
      ? h('div', { class: 'msg' }, h('strong', {}, threadLabel(c)), ' ', h('span', { class: 'muted' }, c.contact.phone || ''), ' ',
          h('button', { type: 'button', 'data-key': `claim-${c.id}`, onclick: act(() => claim(c.id)) }, t('claim')))
      : h('button', { type: 'button', 'data-key': `open-${c.id}`, 'data-thread': c.id, 'aria-current': String(c.id === S.open), onclick: act(() => openThread(c.id)) },
          h('strong', {}, threadLabel(c)), h('br'),
          h('span', { class: `badge ${c.status === 'closed' ? 'bad' : c.status === 'active' ? '' : 'warn'}` }, t(`st_${c.status}`)),
          h('span', { class: `badge ${c.consent === 'opted_in' ? '' : c.consent === 'requested' ? 'warn' : 'bad'}` }, t(`co_${c.consent}`)),
          c.unread_count ? h('span', { class: 'badge unread' }, t('unread', { n: c.unread_count })) : null,
          c.pending_count ? h('span', { class: 'badge warn' }, t('held', { n: c.pending_count })) : null))));
  if (!shown.length) list.append(h('li', { class: 'muted' }, t(unassigned ? 'no_unassigned' : 'no_threads')));
}
async function claim(id) {
  let c;
  try {
    c = await api('POST', `${conv(id)}/claim`);
  } catch (e) {
    if (e.code === 'already_claimed') {
      S.threads.delete(id);
      renderThreadList();
    }
    throw e;
  }
  S.threads.set(c.id, c);
  S.tab = 'mine';
  renderThreadsPane();
  await openThread(c.id);
}

// ---- one thread ----
async function openThread(id) {
  S.open = id;
  S.replyTo = null;
  S.messages = new Map();
  renderThread();
  renderThreadList();
  const c = S.threads.get(id);
  if (c && c.contact.phone) showPhone(c.contact.phone);
  let after = '';
  for (;;) {
    const page = await api('GET', `${conv(id)}/messages?limit=500${after}`);
    for (const m of page.messages) S.messages.set(m.id, m);
    if (page.messages.length < 500) break;
    after = `&after=${encodeURIComponent(page.messages[page.messages.length - 1].id)}`;
  }
  if (S.open !== id) return;
  renderMessages();
  await markRead();
  $('thread-title')?.focus();
}
function renderThread() {
  const pane = $('thread');
  if (!S.open) {
    put(pane, h('h2', { id: 'thread-title' }, t('messages')), h('p', { class: 'muted' }, t('pick_thread')));
    return;
  }
  put(pane, 
    h('header', { id: 'thread-head' }),
    h('ol', { id: 'log', class: 'log', role: 'log', 'aria-live': 'polite', 'aria-label': t('messages') }),
    h('section', { id: 'composer', class: 'composer', 'aria-label': t('compose') }),
    h('section', { id: 'people', class: 'people', 'aria-labelledby': 'people-title' }),
    roles().includes('admin') ? h('details', { id: 'archive' }) : null,
  );
  renderHeader();
  renderMessages();
  renderComposer();
  renderPeopleForm();
  renderArchive();
}
function renderHeader() {
  const head = $('thread-head');
  const c = S.threads.get(S.open);
  if (!head || !c) return;
  const composer = $('composer');
  if (composer) composer.hidden = ['closed', 'unassigned'].includes(c.status);
  put(head, 
    h('h2', { id: 'thread-title', tabindex: '-1' }, threadLabel(c), ' ', h('span', { class: 'muted' }, c.contact.phone || '')),
    h('p', {},
      h('span', { class: 'badge' }, t(`st_${c.status}`)), h('span', { class: 'badge' }, t(`co_${c.consent}`)),
      c.pending_count ? h('span', { class: 'badge warn' }, t('held', { n: c.pending_count })) : null),
    c.consent === 'opted_in' && c.status !== 'closed'
      ? h('p', { id: 'window' }, windowText(c))
      : null,
    ['requested', 'failed'].includes(c.consent) && c.status !== 'closed'
      ? h('p', {}, h('button', { type: 'button', class: 'quiet', onclick: act(async () => onConversation(await api('POST', `${conv(c.id)}/optin`))) }, t('resend_optin')))
      : null,
  );
}
function nameOf(userId) {
  const c = S.threads.get(S.open);
  const p = c && c.participants.find((x) => x.user_id === userId);
  if (userId === S.user.claims.sub) return S.user.claims.name || userId;
  return p ? p.name : userId;
}
const TICKS = { queued: '🕓', sent: '✓', delivered: '✓✓', read: '✓✓', played: '✓✓', failed: '!' };
function renderMessages() {
  const log = $('log');
  if (!log) return;
  const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  put(log, ...[...S.messages.values()].sort((a, b) => a.id.localeCompare(b.id)).map(renderMessage));
  if (atEnd) log.scrollTop = log.scrollHeight;
}
function renderMessage(m) {
  if (m.direction === 'notice') {
    return h('li', { class: 'msg notice', 'data-id': m.id, 'data-code': m.notice && m.notice.code },
      m.text, m.notice && m.notice.sms_fallback ? h('div', {}, t('sms_fallback')) : null);
  }
  const who = m.direction === 'inbound' ? t('contact') : m.sender === 'system' ? t('system') : nameOf(m.sender);
  const system = m.system && (typeof m.system === 'string' ? m.system : 'participant_update');
  const times = Object.entries(m.status_at || {}).filter(([, v]) => v)
    .map(([k, v]) => h('span', {}, `${t(`ms_${k}`)} `, h('time', { datetime: v }, fmt(v))));
  const mine = m.direction === 'outbound' && m.sender === S.user.claims.sub;
  // "The delivery receipts will not be displayed for messages sent by a MultiLine User" in a
  // group: the status is kept (data-status), its ticks and words are not shown.
  const ticks = !(m.sender !== 'system' && (S.threads.get(m.conversation_id)?.participants || []).length > 1);
  return h('li', { class: `msg ${m.direction}`, 'data-id': m.id, 'data-status': m.status },
    h('div', { class: 'by' }, who, system ? ` · ${t(`sys_${system}`)}` : ''),
    m.reply_to ? quoted(m.reply_to) : null,
    m.media ? attachment(m) : null,
    m.kind === 'template' && m.template ? h('div', {}, h('em', {}, `${t('template')}: ${m.template.name} (${m.template.language})`), (m.template.params || []).length ? ` · ${m.template.params.join(' · ')}` : '') : null,
    m.location ? place(m.location) : null,
    m.contacts ? m.contacts.map(card) : null,
    m.interactive ? h('div', { class: 'tap' }, `↩ ${m.interactive.title}`) : null,
    m.unsupported ? h('div', { class: 'unsupported', 'data-type': m.unsupported.type }, h('em', {}, m.text), ` (${m.unsupported.type})`) : null,
    !m.media && !m.location && !m.contacts && !m.interactive && !m.unsupported && m.text ? h('div', { class: 'text' }, m.text) : null,
    m.reaction ? h('div', {}, m.reaction.emoji || '') : null,
    m.direction === 'outbound' ? h('div', { class: 'meta' },
      ticks ? h('span', { class: `tick ${m.status}`, 'aria-hidden': 'true' }, TICKS[m.status] || '') : null,
      ticks || ['pending', 'queued', 'failed'].includes(m.status) ? h('strong', { class: 'status' }, t(`ms_${m.status}`)) : null,
      m.status === 'pending' ? h('span', {}, `(${t('pending_why')})`) : null,
      ticks ? times : h('time', { datetime: m.created_at }, fmt(m.created_at)),
      mine && ['pending', 'queued'].includes(m.status)
        ? h('button', { type: 'button', class: 'danger', onclick: act(async () => onMessage(await api('DELETE', `${conv(m.conversation_id)}/messages/${encodeURIComponent(m.id)}`))) }, t('recall'))
        : null) : h('div', { class: 'meta' }, h('time', { datetime: m.created_at }, fmt(m.created_at))),
    m.error ? h('div', { class: 'err' }, m.error.message) : null,
    S.threads.get(S.open)?.status !== 'closed' ? h('button', { type: 'button', class: 'quiet reply', 'aria-label': t('reply_to_this'),
      onclick: act(async () => { S.replyTo = m.id; renderComposer(); $('composer')?.querySelector('textarea, input, select')?.focus(); }) }, t('reply_to_this')) : null);
}
/** The message a reply answers, quoted above it. */
function quoted(id) {
  const q = S.messages.get(id);
  const what = q ? (q.text || (q.media && (q.media.filename || t(`kind_${q.kind}`))) || t(`kind_${q.kind}`)) : t('quoted_gone');
  return h('blockquote', { class: 'quote', 'data-reply-to': id }, what);
}
function size(n) {
  if (n == null) return '';
  return n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`;
}
/** A message's file, fetched with the token (an <img> or <audio> cannot send one): a picture
 * or sticker shown, a voice note or audio played, a video played, a document to download. */
function attachment(m) {
  const { media } = m;
  const box = h('figure', { class: `file ${m.kind}`, 'data-kind': m.kind });
  const caption = m.text ? h('figcaption', {}, m.text) : null;
  const label = media.filename || t(`kind_${m.kind}`);
  if (!media.id) return h('div', { class: 'err' }, `${label}: ${t('file_unavailable')}`, caption);
  const show = (url) => {
    if (m.kind === 'image' || m.kind === 'sticker') put(box, h('img', { src: url, alt: m.text || t(`kind_${m.kind}`) }), caption);
    else if (m.kind === 'audio') put(box, media.voice ? h('span', { class: 'badge' }, t('voice_note')) : null, h('audio', { controls: true, src: url }), caption);
    else if (m.kind === 'video') put(box, h('video', { controls: true, src: url, width: 240 }), caption);
    else put(box, h('a', { href: url, download: label }, `${t('download')} ${label}`), ` · ${size(media.size)}`, caption);
  };
  if (S.media.has(media.id)) show(S.media.get(media.id));
  else {
    fetch(`/media/${encodeURIComponent(media.id)}`, { headers: { Authorization: `Bearer ${S.user.token}` } })
      .then((r) => (r.ok ? r.blob() : Promise.reject(new Error(r.status))))
      .then((b) => { const url = URL.createObjectURL(b); S.media.set(media.id, url); show(url); })
      .catch(() => put(box, h('span', { class: 'err' }, `${label}: ${t('file_unavailable')}`)));
  }
  return box;
}
function place(l) {
  const url = `https://www.openstreetmap.org/?mlat=${encodeURIComponent(l.latitude)}&mlon=${encodeURIComponent(l.longitude)}#map=17/${l.latitude}/${l.longitude}`;
  return h('div', { class: 'place' }, '📍 ', h('a', { href: url, target: '_blank', rel: 'noopener noreferrer' }, l.name || t('map')),
    l.address ? h('div', { class: 'muted' }, l.address) : null);
}
function card(c) {
  const name = (c.name && c.name.formatted_name) || '';
  return h('div', { class: 'card' }, '👤 ', h('strong', {}, name),
    (c.phones || []).map((p) => h('div', {}, h('a', { href: `tel:${p.phone}` }, p.phone))),
    (c.emails || []).map((e) => h('div', {}, e.email)));
}
async function markRead() {
  const c = S.threads.get(S.open);
  const last = [...S.messages.values()].filter((m) => m.direction === 'inbound').sort((a, b) => b.id.localeCompare(a.id))[0];
  if (!c || !last || !c.unread_count || document.hidden) return;
  const r = await api('POST', `${conv(c.id)}/read`, { up_to: last.id });
  c.unread_count = r.unread_count;
  renderThreadList();
}
document.addEventListener('visibilitychange', () => { if (!document.hidden && S.open) markRead().catch(() => {}); });

// ---- composing ----
const MIME_BY_EXT = {
  pdf: 'application/pdf', txt: 'text/plain', doc: 'application/msword', xls: 'application/vnd.ms-excel', ppt: 'application/vnd.ms-powerpoint',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  pptx: 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  ogg: 'audio/ogg', opus: 'audio/ogg', mp3: 'audio/mpeg', m4a: 'audio/mp4', aac: 'audio/aac', amr: 'audio/amr', mp4: 'video/mp4', '3gp': 'video/3gpp', webp: 'image/webp',
};
/** Uploads a file: in one request up to what the API takes in one body (5 MB), else in three
 * steps (announce, put the bytes where it says, complete), as a client must on AWS. */
async function uploadFile(f, mime) {
  const typed = new Blob([f], { type: mime });
  if (f.size <= 5 * 1024 * 1024) return api('POST', '/media', undefined, typed);
  const slot = await api('POST', '/media/uploads', { mime_type: mime });
  const headers = { ...slot.upload.headers };
  if (slot.upload.url.startsWith('/')) headers.Authorization = `Bearer ${S.user.token}`;
  const r = await fetch(slot.upload.url, { method: slot.upload.method, headers, body: f });
  if (!r.ok) throw new ApiError(r.status, { message: await r.text() });
  return api('POST', `/media/uploads/${encodeURIComponent(slot.media_id)}/complete`);
}
function renderComposer() {
  const box = $('composer');
  if (!box) return;
  const kind = box.dataset.kind || 'text';
  const key = () => (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`);
  const send = async (body) => {
    onMessage(await api('POST', `${conv(S.open)}/messages`, { ...body, client_id: key(), reply_to: S.replyTo || undefined }));
    S.replyTo = null;
    renderComposer();
  };
  const replying = S.replyTo && S.messages.get(S.replyTo);
  const quote = replying ? h('div', { class: 'replying' }, quoted(S.replyTo),
    h('button', { type: 'button', class: 'quiet', onclick: act(async () => { S.replyTo = null; renderComposer(); }) }, t('cancel_reply'))) : null;
  const tabs = h('div', { class: 'tabs', role: 'group', 'aria-label': t('compose') },
    ['text', 'picture', 'file', 'location', 'template'].map((k) => h('button', { type: 'button', 'aria-pressed': String(kind === k), 'data-kind': k,
      onclick: act(async () => { box.dataset.kind = k; renderComposer(); box.querySelector('textarea, input, select')?.focus(); }) }, t(`kind_${k}`))));
  let form;
  if (kind === 'text') {
    const text = h('textarea', { name: 'text', required: true, maxlength: 4096 });
    text.addEventListener('keydown', (e) => { if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); } });
    form = h('form', { onsubmit: act(async () => { await send({ text: text.value }); text.value = ''; text.focus(); }) },
      field(t('message'), text), h('button', { type: 'submit' }, t('send')));
  } else if (kind === 'picture') {
    const file = h('input', { type: 'file', name: 'picture', accept: 'image/png,image/jpeg', required: true });
    const caption = h('input', { name: 'caption', maxlength: 1024 });
    form = h('form', { onsubmit: act(async () => {
      const f = file.files[0];
      const up = await api('POST', '/media', undefined, f);
      await send({ image: { media_id: up.media_id, caption: caption.value || undefined } });
      form.reset();
    }) }, field(t('picture_file'), file), field(t('caption'), caption), h('button', { type: 'submit' }, t('send')));
  } else if (kind === 'file') {
    const file = h('input', { type: 'file', name: 'file', required: true,
      accept: '.pdf,.txt,.doc,.docx,.xls,.xlsx,.ppt,.pptx,audio/aac,audio/amr,audio/mpeg,audio/mp4,audio/ogg,video/mp4,video/3gpp,image/webp' });
    const caption = h('input', { name: 'caption', maxlength: 1024 });
    form = h('form', { onsubmit: act(async () => {
      const f = file.files[0];
      const mime = f.type || MIME_BY_EXT[f.name.split('.').pop().toLowerCase()] || 'application/octet-stream';
      const up = await uploadFile(f, mime);
      const as = mime === 'image/webp' ? 'sticker' : mime.startsWith('audio/') ? 'audio' : mime.startsWith('video/') ? 'video' : 'document';
      const body = { media_id: up.media_id };
      if (as === 'document') body.filename = f.name;
      if (caption.value && ['document', 'video'].includes(as)) body.caption = caption.value;
      await send({ [as]: body });
      form.reset();
    }) }, field(t('any_file'), file), field(t('caption'), caption), h('button', { type: 'submit' }, t('send')));
  } else if (kind === 'location') {
    const lat = h('input', { name: 'latitude', type: 'number', step: 'any', min: -90, max: 90, required: true });
    const lon = h('input', { name: 'longitude', type: 'number', step: 'any', min: -180, max: 180, required: true });
    const name = h('input', { name: 'place', maxlength: 1024 });
    const address = h('input', { name: 'address', maxlength: 1024 });
    form = h('form', { onsubmit: act(async () => {
      await send({ location: { latitude: Number(lat.value), longitude: Number(lon.value), name: name.value || undefined, address: address.value || undefined } });
      form.reset();
    }) }, h('div', { class: 'row' }, field(t('latitude'), lat), field(t('longitude'), lon)), field(t('place_name'), name), field(t('address'), address),
      h('button', { type: 'submit' }, t('send')));
  } else {
    const ours = S.templates.filter((x) => x.language === lang());
    const list = ours.length ? ours : S.templates;
    const select = h('select', { name: 'template' }, list.map((x, i) => h('option', { value: i }, `${x.name} (${x.language})`)));
    const params = h('div', {});
    const fill = () => {
      const x = list[select.value];
      put(params, ...Array.from({ length: x ? x.params : 0 }, (_, i) => field(t('param', { n: i + 1 }), h('input', { name: `param${i + 1}`, required: true }))));
    };
    select.addEventListener('change', fill);
    fill();
    form = list.length
      ? h('form', { onsubmit: act(async () => {
          const x = list[select.value];
          await send({ template: { name: x.name, language: x.language, params: [...params.querySelectorAll('input')].map((i) => i.value) } });
          form.reset();
          fill();
        }) }, field(t('template'), select), params, h('button', { type: 'submit' }, t('send')))
      : h('p', { class: 'muted' }, t('no_templates'));
  }
  // "The message templates and send message field will be disabled" for a contact who opted
  // out, with the reason shown.
  const out = S.threads.get(S.open)?.consent === 'opted_out';
  put(box, h('h3', {}, t('compose')),
    out ? h('p', { class: 'reason', id: 'composer-off', role: 'status' }, t('composer_opted_out')) : null,
    quote, h('fieldset', { class: 'plain', disabled: out, 'aria-describedby': out ? 'composer-off' : null }, tabs, form));
}

// ---- participants ----
/** The add / transfer form: built once per thread, so typing survives live updates. */
function renderPeopleForm() {
  const box = $('people');
  if (!box) return;
  const id = S.open;
  const search = h('input', { type: 'search', name: 'colleague', autocomplete: 'off' });
  const share = h('input', { type: 'checkbox', name: 'share_history' });
  const found = h('ul', { id: 'found', class: 'list', 'aria-live': 'polite' });
  const find = async () => {
    const q = `q=${encodeURIComponent(search.value)}&conversation_id=${encodeURIComponent(id)}`;
    const users = (await api('GET', `/directory/users?${q}`)).users;
    put(found, ...users.map((u) => h('li', {}, h('span', {}, `${u.name} (${u.user_id})`), h('span', {},
      h('button', { type: 'button', 'data-add': u.user_id, onclick: act(async () => {
        onConversation(await api('POST', `${conv(id)}/participants`, { user_id: u.user_id, share_history: share.checked }));
        search.value = '';
        put(found, );
      }) }, t('add')), ' ',
      h('button', { type: 'button', class: 'quiet', 'data-transfer': u.user_id, onclick: act(() => api('POST', `${conv(id)}/transfer`, { to_user_id: u.user_id, share_history: share.checked })) }, t('transfer'))))));
    if (!users.length) found.append(h('li', { class: 'muted' }, t('no_match')));
  };
  let timer;
  search.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => find().catch((e) => toast(t('error', { message: e.message }))), 250);
  });
  put(box, 
    h('h3', { id: 'people-title' }, t('participants')),
    h('ul', { id: 'people-list', class: 'list' }),
    h('p', { id: 'people-full', class: 'muted', hidden: true }, t('full')),
    h('fieldset', { id: 'people-add' }, h('legend', {}, t('colleague')), field(t('search_name'), search),
      h('label', { class: 'inline' }, share, t('share_history')), found),
  );
  renderPeople();
}
function renderPeople() {
  keepFocus(renderPeople_);
}
function renderPeople_() {
  const list = $('people-list');
  const c = S.threads.get(S.open);
  if (!list || !c) return;
  const me = S.user.claims.sub;
  put(list, ...c.participants.map((p) => h('li', {},
    h('span', {}, p.name, p.user_id === me ? ` (${t('you')})` : '', ' ', h('span', { class: 'muted' }, t('joined', { time: fmt(p.joined_at) }))),
    p.user_id === me
      ? h('button', { type: 'button', class: 'danger', 'data-key': 'leave', onclick: act(() => api('POST', `${conv(c.id)}/leave`)) }, t('leave'))
      : h('button', { type: 'button', class: 'danger', 'data-key': `remove-${p.user_id}`, 'aria-label': `${t('remove')} ${p.name}`,
          onclick: act(async () => onConversation(await api('DELETE', `${conv(c.id)}/participants/${encodeURIComponent(p.user_id)}`))) }, t('remove')))));
  const open = !['closed', 'unassigned'].includes(c.status);
  $('people-full').hidden = !(open && c.participants.length >= 10);
  $('people-add').hidden = !(open && c.participants.length < 10);
}

// ---- the archive (admins) ----
function renderArchive() {
  const box = $('archive');
  if (!box) return;
  const out = h('div', { 'aria-live': 'polite' });
  const show = act(async () => {
    const [text, v] = await Promise.all([api('GET', `/admin${conv(S.open)}/archive`), api('GET', `/admin${conv(S.open)}/archive?verify=true`)]);
    const records = String(text).split('\n').filter(Boolean).map((l) => JSON.parse(l));
    put(out, 
      h('p', { class: v.valid ? 'ok' : 'broken', id: 'verification' }, v.valid ? t('archive_valid', { n: v.records }) : t('archive_broken', { n: v.first_break, total: v.records })),
      h('table', {}, h('thead', {}, h('tr', {}, ['ar_seq', 'ar_kind', 'ar_actor', 'ar_at', 'ar_text'].map((k) => h('th', { scope: 'col' }, t(k))))),
        h('tbody', {}, records.map((r) => h('tr', {}, h('td', {}, r.seq), h('td', {}, r.kind), h('td', {}, r.actor), h('td', {}, fmt(r.at)),
          h('td', {}, r.text_as_sent || (r.details ? JSON.stringify(r.details) : '')))))));
  });
  put(box, h('summary', {}, t('archive')), h('button', { type: 'button', class: 'quiet', onclick: show }, t('show_archive')), out);
}

// ---- the contact's phone (sandbox) ----
function renderPhonePane() {
  const pane = $('phone');
  pane.hidden = !S.config.sandbox;
  if (pane.hidden) return;
  const pick = h('input', { type: 'tel', list: 'phones', placeholder: '+447700900123', autocomplete: 'off', value: S.phone || '' });
  const text = h('input', { name: 'reply', autocomplete: 'off' });
  const caption = h('input', { name: 'photo_caption', autocomplete: 'off' });
  const quote = h('input', { type: 'checkbox', name: 'quote' });
  const sample = h('select', { name: 'sample' },
    ['document', 'voice', 'video', 'sticker', 'location', 'contact', 'poll'].map((k) => h('option', { value: k }, t(`sample_${k}`))));
  const send = (body) => api('POST', `/sandbox/contacts/${encodeURIComponent(S.phone)}/messages`, { ...body, name: contactName() });
  put(pane, 
    h('h2', { id: 'phone-title' }, t('phone_title')),
    h('form', { class: 'row', onsubmit: act(async () => showPhone(pick.value.trim())) },
      field(t('phone_pick'), pick), h('datalist', { id: 'phones' }), h('button', { type: 'submit', class: 'quiet' }, t('phone_open'))),
    h('ol', { id: 'screen', class: 'screen', role: 'log', 'aria-live': 'polite', 'aria-label': t('phone_title') }),
    h('form', { class: 'row', onsubmit: act(async () => { if (!S.phone) return; await send(quote.checked ? { reply: text.value } : { text: text.value }); text.value = ''; text.focus(); }) },
      field(t('reply'), text), h('button', { type: 'submit' }, t('send'))),
    h('label', { class: 'inline' }, quote, t('quote_last')),
    h('form', { class: 'row', onsubmit: act(async () => { if (S.phone) await send({ sample: sample.value }); }) },
      field(t('sample'), sample), h('button', { type: 'submit', class: 'quiet' }, t('send_sample'))),
    h('form', { class: 'row', onsubmit: act(async () => { if (!S.phone) return; await send({ image: caption.value }); caption.value = ''; }) },
      field(t('caption'), caption), h('button', { type: 'submit', class: 'quiet' }, t('photo'))),
    h('p', {}, h('button', { type: 'button', class: 'quiet', onclick: act(async () => { if (S.phone) await send({ read: true }); }) }, t('read_all'))),
  );
  renderPhonePicker();
  renderScreen();
}
function contactName() {
  const c = [...S.threads.values()].find((x) => x.contact.phone === S.phone);
  return (c && c.contact.name) || undefined;
}
function renderPhonePicker() {
  const list = $('phones');
  if (!list) return;
  const phones = [...new Set([...S.threads.values()].map((c) => c.contact.phone).filter(Boolean))];
  put(list, ...phones.map((p) => h('option', { value: p })));
}
function showPhone(phone) {
  if (!S.config.sandbox || !phone) return;
  S.phone = phone.startsWith('+') ? phone : `+${phone}`;
  const pick = $('phone').querySelector('input[type=tel]');
  if (pick) pick.value = S.phone;
  renderScreen();
}
async function renderScreen() {
  const screen = $('screen');
  if (!screen || !S.phone) return;
  const phone = S.phone;
  const r = await fetch(`/sandbox/contacts/${encodeURIComponent(phone)}/messages`);
  if (!r.ok || phone !== S.phone) return;
  const { messages } = await r.json();
  put(screen, ...messages.map(phoneEntry));
  if (!messages.length) screen.append(h('li', { class: 'muted' }, t('phone_empty')));
  screen.scrollTop = screen.scrollHeight;
}
function phoneEntry(e) {
  const req = e.request || {};
  const tpl = req.type === 'template' && req.template;
  const params = tpl ? (tpl.components || []).filter((c) => c.type === 'body').flatMap((c) => c.parameters || []).map((p) => p.text) : [];
  const image = req.type === 'image' && req.image && req.image.id;
  // What the business sent of another kind of file: what the contact's phone offers for it.
  const file = !e.from_contact && ['document', 'audio', 'video', 'sticker'].includes(req.type) && req[req.type] && req[req.type].id;
  const src = file && `/sandbox/media/${encodeURIComponent(file)}`;
  return h('li', { class: `msg ${e.from_contact ? 'mine' : 'theirs'}`, 'data-wamid': e.wamid },
    tpl ? h('div', {}, h('em', {}, tpl.name), params.length ? `: ${params.join(' · ')}` : '') : null,
    image ? h('img', { src: `/sandbox/media/${encodeURIComponent(image)}`, alt: e.text || t('picture') }) : null,
    req.type === 'document' && src ? h('a', { href: src, download: req.document.filename || '' }, `📄 ${req.document.filename || t('kind_document')}`) : null,
    req.type === 'audio' && src ? h('audio', { controls: true, src }) : null,
    req.type === 'video' && src ? h('video', { controls: true, src, width: 200 }) : null,
    req.type === 'sticker' && src ? h('img', { src, alt: t('kind_sticker') }) : null,
    e.text ? h('div', { class: 'text' }, e.text) : null,
    !e.text && !tpl && !image && req.type ? h('em', {}, t(`kind_${req.type}`)) : null,
    e.buttons.length ? h('div', { class: 'buttons' }, e.buttons.map((payload) => h('button', { type: 'button', 'data-payload': payload,
      onclick: act(() => api('POST', `/sandbox/contacts/${encodeURIComponent(S.phone)}/messages`, { tap: payload, name: contactName() })) },
      t(`btn_${payload.split(':')[0]}`)))) : null);
}
function watchPhones() {
  const source = new EventSource('/sandbox/events');
  source.addEventListener('phone', (ev) => {
    const { phone } = JSON.parse(ev.data);
    if (phone === S.phone || phone === '*') renderScreen();
  });
}

// ---- start ----
async function boot() {
  S.config = await (await fetch('/console/config.json')).json();
  S.offset = S.config.now * 1000 - Date.now();
  S.users = JSON.parse(localStorage.getItem('console.users') || '[]');
  const current = S.users.find((u) => u.claims.sub === localStorage.getItem('console.current'));
  setInterval(tick, 30000);
  if (S.config.sandbox) watchPhones();
  if (current) await signIn(current);
  else showSignIn();
}
boot().catch((e) => toast(t('error', { message: e.message })));
