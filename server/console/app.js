// The console's shell: log in with a token, route by the URL fragment, refresh the page shown
// when the server's event stream says something changed (a running rollout moves without a
// reload), and poll every few seconds while the stream is down.
import { api, ApiError, openEvents, session } from './api.js';
import { deviceView } from './pages/device.js';
import { fleetView } from './pages/fleet.js';
import { releasesView } from './pages/releases.js';
import { rolloutsView } from './pages/rollouts.js';
import { field, fill, h, notify } from './ui.js';

/** Milliseconds between two refreshes of the page shown while polling. */
const REFRESH_MS = 2000;
/** Least milliseconds between two refreshes caused by events (a busy fleet sends many). */
const EVENT_GAP_MS = 700;

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const logout = document.getElementById('logout');
const liveEl = document.getElementById('live');
let current = null;

/**
 * Live updates: while the event stream (GET /v1/events) is up, each change refreshes the page
 * shown; while it is down, the page is polled every REFRESH_MS and the stream is tried again
 * after 2, 4, 8 … 30 s. `#live` shows which (data-mode: events | polling) for people and tests.
 */
const live = { mode: 'off', events: 0, refreshes: 0, close: null, poll: null, retry: null, backoff: 2000, lastId: null, busy: false, again: false, last: 0 };

function showLive() {
  liveEl.hidden = live.mode === 'off';
  liveEl.dataset.mode = live.mode;
  liveEl.dataset.events = String(live.events);
  liveEl.dataset.refreshes = String(live.refreshes);
  liveEl.textContent = live.mode === 'events' ? 'Live' : 'Polling';
  liveEl.title = live.mode === 'events' ? 'Updated as the server reports changes (server-sent events)' : `The event stream is down: refreshed every ${REFRESH_MS / 1000} s`;
}

function connect() {
  clearTimeout(live.retry);
  live.close?.();
  live.close = openEvents(
    {
      onOpen: (id) => {
        live.lastId = id;
        if (live.mode === 'events') return;
        live.mode = 'events';
        live.backoff = 2000;
        clearInterval(live.poll);
        showLive();
      },
      onChange: (_topics, id) => {
        live.lastId = id;
        live.events++;
        showLive();
        refreshSoon();
      },
      onDown: () => {
        live.close = null;
        if (!session.who) return;
        live.mode = 'polling';
        clearInterval(live.poll);
        live.poll = setInterval(refreshSoon, REFRESH_MS);
        showLive();
        live.retry = setTimeout(connect, live.backoff);
        live.backoff = Math.min(live.backoff * 2, 30_000);
      },
    },
    live.lastId,
  );
}

function stopLive() {
  live.close?.();
  live.close = null;
  clearInterval(live.poll);
  clearTimeout(live.retry);
  live.mode = 'off';
  showLive();
}

/** Refreshes the page shown, at most one refresh at a time and one per EVENT_GAP_MS. */
function refreshSoon() {
  if (document.visibilityState !== 'visible' || !current) return;
  if (live.busy) {
    live.again = true;
    return;
  }
  const wait = live.last + EVENT_GAP_MS - Date.now();
  if (wait > 0) {
    live.busy = true;
    setTimeout(() => {
      live.busy = false;
      refreshSoon();
    }, wait);
    return;
  }
  const view = current;
  const focus = focusKey();
  live.busy = true;
  live.again = false;
  live.last = Date.now();
  view
    .refresh()
    .then(() => {
      live.refreshes++;
      showLive();
      if (view === current) restoreFocus(focus);
    }, shown)
    .finally(() => {
      live.busy = false;
      if (live.again) refreshSoon();
    });
}

const ROUTES = [
  [/^#\/fleet(?:\?(.*))?$/, (m) => fleetView(m[1] ?? '')],
  [/^#\/devices\/([^/?]+)$/, (m) => deviceView(decodeURIComponent(m[1]))],
  [/^#\/releases$/, () => releasesView()],
  [/^#\/rollouts$/, () => rolloutsView()],
];

function loginView(message) {
  nav.hidden = true;
  logout.hidden = true;
  who.textContent = '';
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', required: true, spellcheck: 'false' });
  const form = h(
    'form',
    {
      class: 'card login',
      'aria-labelledby': 'login-title',
      onsubmit: async (e) => {
        e.preventDefault();
        session.token = input.value.trim();
        await start();
      },
    },
    h('h1', { id: 'login-title' }, 'Log in to the otaab console'),
    h('p', { class: 'muted' }, 'Paste an API token: ops tokens may steer rollouts, technician tokens may look and ask for rollbacks (ota-server token create --role ops|technician).'),
    message ? h('p', { class: 'error', role: 'alert' }, message) : null,
    field('API token', input),
    h('p', {}, h('button', { type: 'submit' }, 'Log in')),
  );
  fill(main, form);
  input.focus();
}

async function start() {
  if (!session.token) return loginView();
  try {
    session.who = await api('GET', '/v1/whoami');
  } catch (err) {
    session.token = null;
    return loginView(err instanceof ApiError ? `The server refused this token (${err.code}).` : `The server cannot be reached: ${err.message}`);
  }
  if (session.who.role !== 'ops' && session.who.role !== 'technician') {
    const role = session.who.role;
    session.token = null;
    return loginView(`A ${role} token cannot use the console: log in with an ops or technician token.`);
  }
  nav.hidden = false;
  logout.hidden = false;
  who.textContent = `${session.who.role} · ${session.who.id}`;
  if (!location.hash || location.hash === '#' || location.hash === '#/') history.replaceState(null, '', '#/fleet');
  connect();
  await route();
}

async function route() {
  if (!session.who) return;
  current?.unmount?.();
  const hash = location.hash;
  let view = null;
  for (const [re, make] of ROUTES) {
    const m = re.exec(hash);
    if (m) view = make(m);
  }
  if (!view) {
    history.replaceState(null, '', '#/fleet');
    view = fleetView('');
  }
  for (const a of nav.querySelectorAll('a')) {
    if (hash.startsWith(a.getAttribute('href'))) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  current = view;
  fill(main, view.element);
  document.title = `${view.title} · otaab console`;
  try {
    await view.refresh();
  } catch (err) {
    shown(err);
  }
}

/** What identifies the focused element across a re-render: its tag, link target or text. */
function focusKey() {
  const el = document.activeElement;
  if (!el || el === document.body || !main.contains(el)) return null;
  return { tag: el.tagName, href: el.getAttribute('href'), action: el.dataset.action ?? null, rollout: el.closest('[data-rollout]')?.dataset.rollout ?? null, text: el.textContent };
}

/** Puts the focus back on the element that replaced the focused one (keyboard users keep their place). */
function restoreFocus(key) {
  if (!key || (document.activeElement && document.activeElement !== document.body)) return;
  for (const el of main.querySelectorAll(key.tag)) {
    const same = key.href !== null ? el.getAttribute('href') === key.href : key.action !== null ? el.dataset.action === key.action && el.closest('[data-rollout]')?.dataset.rollout === key.rollout : el.textContent === key.text;
    if (same) return el.focus();
  }
}

/** Shows an API or network failure; a refused token sends back to the login. */
function shown(err) {
  if (err instanceof ApiError && err.status === 401) {
    session.token = null;
    session.who = null;
    stopLive();
    return loginView(`Logged out: ${err.message}`);
  }
  notify(err.message, 'bad');
}

logout.addEventListener('click', () => {
  session.token = null;
  session.who = null;
  stopLive();
  loginView('Logged out.');
});
// Back to a hidden tab: what changed meanwhile was not drawn.
document.addEventListener('visibilitychange', () => void (document.visibilityState === 'visible' && refreshSoon()));
window.addEventListener('hashchange', () => void route());
void start();
