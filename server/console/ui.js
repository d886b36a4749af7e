// DOM and formatting helpers of the console: no framework, elements built with h().

/** An element with attributes (`on*` functions become listeners) and children (strings, nodes, arrays, null). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    // Through the CSSOM: the Content-Security-Policy forbids style attributes.
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof HTMLElement || typeof c !== 'object' ? c : String(c));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** "12 s ago", "3 min ago", "2 h ago", else the date; a dash for null. */
export function ago(iso) {
  if (!iso) return '–';
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 0) return 'just now';
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 2 * 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(iso).toISOString().slice(0, 16).replace('T', ' ');
}

/** A time element showing `ago()` with the full time as its title. */
export function time(iso) {
  return iso ? h('time', { datetime: iso, title: iso }, ago(iso)) : h('span', { class: 'muted' }, '–');
}

/** Bytes for people. */
export function bytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/** A state or outcome badge. */
export function badge(text, kind = text) {
  return h('span', { class: `badge ${kind ?? ''}` }, text ?? '–');
}

/** A table: columns [{ head, cell(row) }], with a caption for screen readers. */
export function table(caption, columns, rows, empty = 'Nothing to show.') {
  if (rows.length === 0) return h('p', { class: 'muted' }, empty);
  return h(
    'table',
    {},
    h('caption', { class: 'sr-only' }, caption),
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c.head)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, columns.map((c) => h('td', {}, c.cell(r)))))),
  );
}

/** A labelled input; the label wraps it, so every field has its name. */
export function field(labelText, input) {
  return h('label', {}, labelText, input);
}

/** A select with options [[value, text]]. */
export function select(attrs, options, value) {
  return h('select', attrs, options.map(([v, t]) => h('option', { value: v, selected: v === value }, t)));
}

const statusEl = () => document.getElementById('status');

/** A short message in the live region (announced to screen readers). */
export function notify(message, kind = 'ok') {
  const el = h('div', { class: kind }, message);
  statusEl().append(el);
  setTimeout(() => el.remove(), kind === 'bad' ? 9000 : 5000);
}

/** A truncated excerpt of JSON details. */
export function excerpt(value, max = 600) {
  if (value === null || value === undefined) return null;
  const text = JSON.stringify(value, null, 1);
  return h('pre', { class: 'excerpt mono' }, text.length > max ? `${text.slice(0, max)}…` : text);
}
