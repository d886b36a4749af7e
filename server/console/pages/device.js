// Device: slots, versions, attributes, tags; rollback requests and the button to ask for one;
// the history of transactions and reports with reasons and health-check excerpts.
import { api, can } from '../api.js';
import { badge, excerpt, field, fill, h, notify, table, time } from '../ui.js';

/** The page of one device. */
export function deviceView(id) {
  const facts = h('section', { class: 'card', 'aria-label': 'Device facts' });
  const actions = h('section', { class: 'card', 'aria-labelledby': 'rollback-title' });
  const history = h('section', { 'aria-label': 'History' });
  const note = h('input', { name: 'note', maxlength: 1024, placeholder: 'why (shown in the history)', size: 40 });
  const button = h('button', { type: 'submit', class: 'danger' }, 'Ask for a rollback');
  const why = h('p', { class: 'muted' });
  const form = h(
    'form',
    {
      class: 'row',
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          const r = await api('POST', `/v1/devices/${encodeURIComponent(id)}/rollback`, note.value.trim() ? { note: note.value.trim() } : {});
          notify(`Rollback ${r.id} asked: ${id} rolls back at its next check-in.`);
          note.value = '';
          await refresh();
        } catch (err) {
          notify(err.message, 'bad');
        }
      },
    },
    field('Note for the rollback', note),
    button,
  );
  fill(actions, h('h2', { id: 'rollback-title' }, 'Rollback'), why, form);
  const element = h('div', {}, h('p', {}, h('a', { href: '#/fleet' }, '← Fleet')), h('h1', {}, `Device ${id}`), h('div', { class: 'grid2' }, facts, actions), history);

  async function refresh() {
    const { device: d, transactions, reports, rollbacks } = await api('GET', `/v1/devices/${encodeURIComponent(id)}`);
    const slots = ['A', 'B'].map((s) => ({ name: s, version: d.attributes[`slot.${s}`] ?? null, booted: d.slot === s }));
    fill(
      facts,
      h('h2', {}, 'Now'),
      h(
        'dl',
        { class: 'facts' },
        h('dt', {}, 'Product'), h('dd', {}, d.product ?? '–'),
        h('dt', {}, 'Type'), h('dd', {}, d.compatible),
        h('dt', {}, 'Channel'), h('dd', {}, d.channel),
        h('dt', {}, 'Tags'), h('dd', {}, d.tags.length ? d.tags.map((t) => badge(t, 'tag')) : '–'),
        h('dt', {}, 'State'), h('dd', {}, badge(d.transaction ? d.transaction.state : (d.state ?? 'unknown')), d.transaction ? ` ${d.transaction.version} (${d.transaction.id})` : ''),
        h('dt', {}, 'Booted slot'), h('dd', {}, d.slot ?? '–'),
        h('dt', {}, 'Committed'), h('dd', {}, d.version ?? '–'),
        h('dt', {}, 'Last seen'), h('dd', {}, time(d.lastSeen)),
        h('dt', {}, 'Enrolled'), h('dd', {}, time(d.enrolled)),
        h('dt', {}, 'Last outcome'), h('dd', {}, d.lastOutcome ? [badge(d.lastOutcome.outcome), ` ${d.lastOutcome.version} `, d.lastOutcome.reason ? h('span', { class: d.lastOutcome.outcome === 'failure' ? 'reason' : 'muted' }, d.lastOutcome.reason) : null] : '–'),
      ),
      h('h2', {}, 'Slots'),
      table('Slots', [
        { head: 'Slot', cell: (s) => s.name },
        { head: 'Version', cell: (s) => s.version ?? h('span', { class: 'muted' }, 'not reported') },
        { head: 'Booted', cell: (s) => (s.booted ? badge('booted', 'ok') : '') },
      ], slots),
      h('h2', {}, 'Attributes'),
      table('Attributes', [{ head: 'Name', cell: (a) => h('code', {}, a[0]) }, { head: 'Value', cell: (a) => a[1] }], Object.entries(d.attributes), 'The device reported no attributes.'),
    );
    const allowed = can.rollback();
    button.disabled = !allowed || d.pendingRollback !== null;
    note.disabled = button.disabled;
    why.textContent = !allowed
      ? 'Your token may not ask for rollbacks.'
      : d.pendingRollback
        ? `Rollback ${d.pendingRollback} is waiting for the device's next check-in.`
        : 'The device goes back to the release in its other slot at its next check-in; the release it leaves is not offered to it again.';
    fill(
      history,
      h('h2', {}, 'Rollback requests'),
      table('Rollback requests', [
        { head: 'Asked', cell: (r) => time(r.requested) },
        { head: 'By', cell: (r) => h('code', {}, r.requestedBy) },
        { head: 'Note', cell: (r) => r.note ?? '' },
        { head: 'Delivered', cell: (r) => time(r.delivered) },
        { head: 'Outcome', cell: (r) => (r.outcome ? [badge(r.outcome, r.outcome === 'refused' ? 'failure' : r.outcome), r.outcomeReason ? h('div', { class: 'muted' }, r.outcomeReason) : null] : '–') },
      ], rollbacks, 'No rollback was asked for.'),
      h('h2', {}, 'Transactions'),
      table('Transactions', [
        { head: 'Transaction', cell: (t) => h('code', {}, t.id) },
        { head: 'Version', cell: (t) => t.version },
        { head: 'State', cell: (t) => badge(t.state) },
        { head: 'Outcome', cell: (t) => (t.outcome ? badge(t.outcome) : '–') },
        { head: 'Reason', cell: (t) => (t.reason ? h('span', { class: t.outcome === 'failure' ? 'reason' : '' }, t.reason) : '') },
        { head: 'Started', cell: (t) => time(t.started) },
        { head: 'Updated', cell: (t) => time(t.updated) },
      ], transactions, 'No transaction yet.'),
      h('h2', {}, 'Reports'),
      table('Reports', [
        { head: 'At', cell: (r) => time(r.at) },
        { head: 'Version', cell: (r) => r.version },
        { head: 'State', cell: (r) => badge(r.state) },
        { head: 'Outcome', cell: (r) => (r.outcome ? badge(r.outcome) : '') },
        { head: 'Reason', cell: (r) => r.reason ?? '' },
        { head: 'Details', cell: (r) => [r.progress ? `${r.progress.bytes} / ${r.progress.total} bytes` : null, excerpt(r.details)] },
      ], reports.slice(0, 100), 'No report yet.'),
    );
  }

  return { title: `Device ${id}`, element, refresh };
}
