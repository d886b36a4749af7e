// Fleet: every device with product, tags, slot, running and committed versions, state, last
// seen and last outcome; filters; counts by state and version; pages by cursor.
import { api, query } from '../api.js';
import { badge, field, fill, h, select, table, time } from '../ui.js';

const PAGE_SIZE = 50;
const STATES = ['', 'idle', 'downloading', 'installed', 'armed', 'rebooting', 'verifying', 'committed', 'rolling-back', 'rolled-back', 'failed', 'unknown'];
const FILTERS = ['prefix', 'product', 'state', 'version', 'tag', 'outcome', 'silent'];

/** The fleet page for the filters in `search` (the fragment's query). */
export function fleetView(search) {
  const params = new URLSearchParams(search);
  const filters = Object.fromEntries(FILTERS.map((k) => [k, params.get(k) ?? '']));
  const cursors = [null];
  let page = 0;

  const input = (name, label, attrs = {}) => field(label, h('input', { name, value: filters[name], ...attrs }));
  const form = h(
    'form',
    { class: 'filters card', role: 'search', 'aria-label': 'Filter the fleet', onsubmit: (e) => go(e, new FormData(form)) },
    input('prefix', 'Device id starts with', { placeholder: 'gw-', size: 12 }),
    input('product', 'Product', { size: 10 }),
    field('State', select({ name: 'state' }, STATES.map((s) => [s, s === '' ? 'any' : s]), filters.state)),
    input('version', 'Committed version', { size: 8 }),
    input('tag', 'Tag', { size: 10 }),
    field('Last outcome', select({ name: 'outcome' }, [['', 'any'], ['success', 'success'], ['failure', 'failure']], filters.outcome)),
    field('Silent for', select({ name: 'silent' }, [['', 'any time'], ['3600', '1 hour'], ['86400', '1 day'], ['604800', '7 days']], filters.silent)),
    h('button', { type: 'submit' }, 'Apply filters'),
    h('button', { type: 'button', class: 'secondary', onclick: () => (location.hash = '#/fleet') }, 'Clear'),
  );

  function go(e, data) {
    e?.preventDefault();
    const next = {};
    for (const [k, v] of data.entries()) if (String(v).trim() !== '') next[k] = String(v).trim();
    location.hash = `#/fleet${query(next)}`;
  }

  const counts = h('section', { 'aria-label': 'Counts' });
  const list = h('section', { 'aria-label': 'Devices' });
  const prev = h('button', { type: 'button', class: 'secondary', onclick: () => turn(-1) }, '← Previous page');
  const next = h('button', { type: 'button', class: 'secondary', onclick: () => turn(1) }, 'Next page →');
  const where = h('span', { class: 'muted' });
  const element = h('div', {}, h('h1', {}, 'Fleet'), form, counts, list, h('nav', { class: 'pager', 'aria-label': 'Pages of devices' }, prev, where, next));

  async function turn(step) {
    page = Math.max(0, page + step);
    await refresh();
  }

  const chip = (name, value, text, n) =>
    h('button', { type: 'button', title: `Show only ${text}`, onclick: () => go(null, new URLSearchParams({ ...clean(filters), [name]: value })) }, text, h('strong', {}, String(n)));

  async function refresh() {
    const f = clean(filters);
    const [c, p] = await Promise.all([api('GET', `/v1/fleet/counts${query(f)}`), api('GET', `/v1/fleet/devices${query({ ...f, limit: PAGE_SIZE, cursor: cursors[page] })}`)]);
    cursors[page + 1] = p.next;
    fill(
      counts,
      h('p', {}, h('strong', { id: 'fleet-total' }, `${c.total} device${c.total === 1 ? '' : 's'}`), Object.keys(f).length ? ' match the filters' : ' enrolled'),
      h('div', { class: 'chips', 'aria-label': 'Devices by state' }, h('span', { class: 'muted' }, 'By state:'), c.byState.map((s) => chip('state', s.state, s.state, s.devices))),
      h('div', { class: 'chips', 'aria-label': 'Devices by committed version' }, h('span', { class: 'muted' }, 'By version:'), c.byVersion.map((v) => chip('version', v.version, v.version, v.devices))),
    );
    fill(
      list,
      table(
        'Devices',
        [
          { head: 'Device', cell: (d) => h('a', { href: `#/devices/${encodeURIComponent(d.id)}` }, d.id) },
          { head: 'Product', cell: (d) => d.product ?? '–' },
          { head: 'Tags', cell: (d) => d.tags.map((t) => badge(t, 'tag')) },
          { head: 'Slot', cell: (d) => d.slot ?? '–' },
          { head: 'Running', cell: (d) => d.running ?? '–' },
          { head: 'Committed', cell: (d) => d.version ?? '–' },
          { head: 'State', cell: (d) => [badge(d.transaction ? d.transaction.state : (d.state ?? 'unknown')), d.transaction ? h('span', { class: 'muted' }, ` ${d.transaction.version}`) : null, d.pendingRollback ? badge('rollback asked', 'warn') : null] },
          { head: 'Last seen', cell: (d) => time(d.lastSeen) },
          {
            head: 'Last outcome',
            cell: (d) =>
              d.lastOutcome ? [badge(d.lastOutcome.outcome), ` ${d.lastOutcome.version}`, d.lastOutcome.reason ? h('div', { class: d.lastOutcome.outcome === 'failure' ? 'reason' : 'muted' }, d.lastOutcome.reason) : null] : '–',
          },
        ],
        p.devices,
        'No device matches.',
      ),
    );
    prev.disabled = page === 0;
    next.disabled = p.next === null;
    where.textContent = `page ${page + 1}`;
  }

  return { title: 'Fleet', element, refresh };
}

function clean(f) {
  return Object.fromEntries(Object.entries(f).filter(([, v]) => v !== ''));
}
