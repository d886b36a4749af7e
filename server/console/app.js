// The console's shell: log in with a token, route by the URL fragment, refresh the page shown
// every few seconds while the tab is visible (a running rollout moves without a reload).
import { api, ApiError, session } from './api.js';
import { deviceView } from './pages/device.js';
import { fleetView } from './pages/fleet.js';
import { releasesView } from './pages/releases.js';
import { rolloutsView } from './pages/rollouts.js';
import { field, fill, h, notify } from './ui.js';

/** Seconds between two refreshes of the page shown. */
const REFRESH_MS = 2000;

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const logout = document.getElementById('logout');
let current = null;
let timer = null;

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
  await route();
}

async function route() {
  if (!session.who) return;
  clearInterval(timer);
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
  timer = setInterval(() => {
    if (document.visibilityState !== 'visible' || current !== view) return;
    const focus = focusKey();
    view.refresh().then(() => restoreFocus(focus), shown);
  }, REFRESH_MS);
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
    clearInterval(timer);
    return loginView(`Logged out: ${err.message}`);
  }
  notify(err.message, 'bad');
}

logout.addEventListener('click', () => {
  session.token = null;
  session.who = null;
  clearInterval(timer);
  loginView('Logged out.');
});
window.addEventListener('hashchange', () => void route());
void start();
