// Rollouts: each phase's progress, failures with their reasons, pause / resume / abort, and a
// form to start one. What the role may not do is disabled here and refused by the API.
import { api, can } from '../api.js';
import { badge, field, fill, h, notify } from '../ui.js';

/** "1%, 10%, 50%, 100%" or "2, 5, 100%" → phases. */
export function parsePhases(text) {
  const phases = [];
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+(?:\.\d+)?)\s*(%?)$/.exec(part);
    if (!m) throw new Error(`phase "${part}" is neither a percentage (10%) nor a device count (5)`);
    phases.push(m[2] ? { percent: Number(m[1]) } : { count: Number(m[1]) });
  }
  if (phases.length === 0) throw new Error('give at least one phase');
  return phases;
}

const phaseText = (p) => ('percent' in p ? `${p.percent}%` : `${p.count} device${p.count === 1 ? '' : 's'}`);

/** The rollouts page. */
export function rolloutsView() {
  const ops = can.rollouts();
  const productSel = h('select', { name: 'product', required: true });
  const versionSel = h('select', { name: 'version', required: true });
  const inputs = {
    channel: h('input', { name: 'channel', placeholder: 'any', size: 10 }),
    tags: h('input', { name: 'tags', placeholder: 'site:lyon, beta', size: 16 }),
    phases: h('input', { name: 'phases', value: '1%, 10%, 50%, 100%', size: 20 }),
    successShare: h('input', { name: 'successShare', type: 'number', min: 1, max: 100, value: 90, size: 4 }),
    failureShare: h('input', { name: 'failureShare', type: 'number', min: 0, max: 100, value: 10, size: 4 }),
    failures: h('input', { name: 'failures', type: 'number', min: 0, placeholder: 'none', size: 5 }),
    soak: h('input', { name: 'soak', type: 'number', min: 0, value: 0, size: 6 }),
  };
  let releases = [];
  const versions = () => {
    const chosen = releases.filter((r) => r.product === productSel.value);
    fill(versionSel, chosen.map((r) => h('option', { value: r.version }, r.version)));
  };
  productSel.addEventListener('change', versions);
  const fieldset = h(
    'fieldset',
    { disabled: !ops },
    h('legend', {}, 'Start a rollout'),
    ops ? null : h('p', { class: 'notice', id: 'start-refused' }, `Your ${'technician'} token may look at rollouts but not start, pause, resume or abort them: ops only.`),
    h(
      'div',
      { class: 'row' },
      field('Product', productSel),
      field('Version', versionSel),
      field('Channel', inputs.channel),
      field('Tags (all of them)', inputs.tags),
      field('Phases', inputs.phases),
      field('Advance at success %', inputs.successShare),
      field('Pause at failure %', inputs.failureShare),
      field('Pause at failures', inputs.failures),
      field('Soak seconds', inputs.soak),
      h('button', { type: 'submit' }, 'Start rollout'),
    ),
  );
  const form = h('form', { class: 'card', 'aria-label': 'Start a rollout', onsubmit: (e) => void startRollout(e) }, fieldset);
  const list = h('section', { 'aria-label': 'Rollouts', id: 'rollouts' });
  const element = h('div', {}, h('h1', {}, 'Rollouts'), form, list);

  async function startRollout(e) {
    e.preventDefault();
    try {
      const body = { product: productSel.value, version: versionSel.value, phases: parsePhases(inputs.phases.value) };
      if (inputs.channel.value.trim()) body.channel = inputs.channel.value.trim();
      const tags = inputs.tags.value.split(',').map((t) => t.trim()).filter(Boolean);
      if (tags.length) body.tags = tags;
      body.successShare = Number(inputs.successShare.value) / 100;
      body.pauseFailureShare = Number(inputs.failureShare.value) > 0 ? Number(inputs.failureShare.value) / 100 : null;
      body.pauseFailures = inputs.failures.value.trim() ? Number(inputs.failures.value) : null;
      body.soakSeconds = Number(inputs.soak.value || 0);
      const r = await api('POST', '/v1/rollouts', body);
      notify(`Rollout ${r.id} of ${r.product} ${r.version} started: ${r.totals.members} devices.`);
      await refresh();
    } catch (err) {
      notify(err.message, 'bad');
    }
  }

  async function control(r, action) {
    if (action === 'abort' && !window.confirm(`Abort the rollout of ${r.product} ${r.version} for good?`)) return;
    try {
      await api('POST', `/v1/rollouts/${r.id}/${action}`);
      notify(`Rollout of ${r.product} ${r.version}: ${action} done.`);
      await refresh();
    } catch (err) {
      notify(err.message, 'bad');
    }
  }

  function card(r, detail) {
    const open = r.state === 'running' || r.state === 'paused';
    const act = (action, text, cls, enabled) =>
      h('button', { type: 'button', class: cls, disabled: !ops || !enabled, title: ops ? undefined : 'ops only', 'data-action': action, onclick: () => void control(r, action) }, text);
    return h(
      'article',
      { class: 'card rollout', 'aria-label': `Rollout ${r.product} ${r.version}`, 'data-rollout': r.id, 'data-state': r.state },
      h(
        'header',
        {},
        h('h2', {}, `${r.product} ${r.version}`),
        badge(r.state),
        h('span', { class: 'muted' }, `${r.kind} · ${r.totals.members} devices · by ${r.createdBy}`),
        h(
          'div',
          { class: 'actions' },
          act('pause', 'Pause', 'secondary', r.state === 'running' || r.state === 'completed'),
          act('resume', 'Resume', '', r.state === 'paused'),
          act('abort', 'Abort', 'danger', r.state !== 'aborted' && r.state !== 'superseded'),
        ),
      ),
      r.reason ? h('p', { class: r.state === 'paused' ? 'notice' : 'muted', 'data-reason': '' }, r.reason) : null,
      h(
        'p',
        { class: 'muted' },
        `Target: ${r.target.channel ? `channel ${r.target.channel}` : 'any channel'}${r.target.tags.length ? `, tags ${r.target.tags.join(' + ')}` : ''}. `,
        `Next phase at ${Math.round(r.successShare * 100)} % success${r.soakSeconds ? ` and ${r.soakSeconds} s of soak` : ''}; pauses at `,
        [r.pauseFailureShare !== null ? `${Math.round(r.pauseFailureShare * 100)} % failures` : null, r.pauseFailures !== null ? `${r.pauseFailures} failures` : null].filter(Boolean).join(' or ') || 'no failure threshold',
        '.',
      ),
      r.phases.map((p, i) => {
        const c = r.counts[i] ?? { members: 0, success: 0, failure: 0, installing: 0, offered: 0, waiting: 0 };
        const w = (n) => ({ width: `${c.members ? (100 * n) / c.members : 0}%` });
        return h(
          'div',
          { class: `phase${i <= r.phase && open ? ' open' : ''}`, 'data-phase': i },
          h('span', { class: 'name' }, `Phase ${i + 1}: ${phaseText(p)}`, i <= r.phase && open ? ' (open)' : ''),
          h(
            'div',
            { class: 'bar', role: 'img', 'aria-label': `${c.success} succeeded, ${c.failure} failed, ${c.installing} installing, ${c.offered} offered, ${c.waiting} waiting of ${c.members}` },
            h('span', { class: 'success', style: w(c.success) }),
            h('span', { class: 'failure', style: w(c.failure) }),
            h('span', { class: 'installing', style: w(c.installing) }),
            h('span', { class: 'offered', style: w(c.offered) }),
          ),
          h('span', { class: 'mono' }, `${c.success} ok · ${c.failure} failed · ${c.installing + c.offered} busy · ${c.waiting} waiting / ${c.members}`),
        );
      }),
      detail && detail.failures.length
        ? h('div', {}, h('h3', {}, 'Failures by reason'), h('ul', {}, detail.failures.map((f) => h('li', {}, h('span', { class: 'reason' }, f.reason), ` · ${f.devices} device${f.devices === 1 ? '' : 's'}`))))
        : null,
    );
  }

  let loadedReleases = false;
  async function refresh() {
    if (!loadedReleases) {
      releases = (await api('GET', '/v1/fleet/releases')).releases;
      const products = [...new Set(releases.map((r) => r.product))].sort();
      fill(productSel, products.map((p) => h('option', { value: p }, p)));
      versions();
      loadedReleases = true;
    }
    const { rollouts } = await api('GET', '/v1/rollouts');
    const shown = rollouts.slice(0, 20);
    const details = await Promise.all(shown.map((r) => (r.totals.failure > 0 ? api('GET', `/v1/rollouts/${r.id}`) : null)));
    if (shown.length === 0) return void fill(list, h('p', { class: 'muted' }, 'No rollout yet.'));
    fill(list, shown.map((r, i) => card(r, details[i])));
  }

  return { title: 'Rollouts', element, refresh };
}
