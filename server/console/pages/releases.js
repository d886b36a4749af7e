// Releases: product, version, modules with their sizes, signer key, channels, the chunk index of
// delta-capable images and what a device running an earlier release downloads by delta.
import { api, can } from '../api.js';
import { badge, bytes, fill, h, table, time } from '../ui.js';

/** The releases page. */
export function releasesView() {
  const list = h('section', { 'aria-label': 'Releases' });
  const element = h('div', {}, h('h1', {}, 'Releases'), list);
  // Delta figures per bundle sha256: bundles are immutable, so one answer per page view is enough.
  const deltas = new Map();

  /** The delta figures of a delta-capable release (GET …/delta), null when it has none or they failed. */
  async function deltaOf(r) {
    if (!r.modules.some((m) => m.chunkIndexSize !== undefined)) return null;
    if (!deltas.has(r.sha256)) {
      const got = await api('GET', `/v1/products/${encodeURIComponent(r.product)}/releases/${encodeURIComponent(r.version)}/delta`).catch((err) => ({ failed: err.message }));
      deltas.set(r.sha256, got);
    }
    return deltas.get(r.sha256);
  }

  async function refresh() {
    const { releases } = await api('GET', '/v1/fleet/releases');
    // Bytes served per bundle, where the server counts them (GET /v1/bundles/:sha256/served, ops
    // only, with delta updates): what a rollout really cost on the wire. Absent: not shown.
    const served = can.rollouts() ? await Promise.all(releases.slice(0, 20).map((r) => api('GET', `/v1/bundles/${r.sha256}/served`).catch(() => null))) : [];
    const delta = await Promise.all(releases.slice(0, 20).map(deltaOf));
    if (releases.length === 0) return void fill(list, h('p', { class: 'muted' }, 'No release uploaded yet (ota-release upload).'));
    fill(
      list,
      releases.map((r, i) =>
        h(
          'article',
          { class: 'card', 'aria-label': `${r.product} ${r.version}` },
          h('h2', {}, `${r.product} ${r.version}`, ' ', r.channels.map((c) => badge(c, 'ok'))),
          h(
            'dl',
            { class: 'facts' },
            h('dt', {}, 'Bundle'), h('dd', {}, bytes(r.size), ' · ', h('code', { title: r.sha256 }, `sha256 ${r.sha256.slice(0, 16)}…`), ` · format ${r.format}`),
            h('dt', {}, 'Signer key'), h('dd', {}, h('code', {}, r.signer)),
            h('dt', {}, 'For'), h('dd', {}, r.compatible.join(', ')),
            h('dt', {}, 'Built'), h('dd', {}, time(r.created), ' · uploaded ', time(r.uploaded)),
            h('dt', {}, 'Rollouts'), h('dd', {}, String(r.rollouts)),
            r.notes ? [h('dt', {}, 'Notes'), h('dd', {}, r.notes)] : null,
            served[i]
              ? [
                  h('dt', {}, 'Served'),
                  h('dd', {}, `${served[i].requests} download${served[i].requests === 1 ? '' : 's'} (${served[i].rangeRequests} partial), ${bytes(served[i].bytes)} since the server started`, r.size ? ` = ${(served[i].bytes / r.size).toFixed(1)} × the bundle` : ''),
                ]
              : null,
            delta[i] ? [h('dt', {}, 'Delta'), h('dd', {}, deltaFigures(r, delta[i]))] : null,
          ),
          table(`Modules of ${r.product} ${r.version}`, [
            { head: 'Module', cell: (m) => h('code', {}, m.name) },
            { head: 'Type', cell: (m) => m.type },
            { head: 'Version', cell: (m) => m.version ?? '' },
            { head: 'Size', cell: (m) => bytes(m.size) },
            { head: 'Unpacked', cell: (m) => (m.unpackedSize !== undefined ? bytes(m.unpackedSize) : '') },
            { head: 'Compression', cell: (m) => m.compression ?? 'none' },
            { head: 'Target', cell: (m) => (m.target ? h('code', {}, m.target) : '') },
            { head: 'Delta', cell: (m) => (m.chunkIndexSize !== undefined ? [badge('delta-capable', 'ok'), ` chunk index ${bytes(m.chunkIndexSize)}`] : h('span', { class: 'muted' }, 'full download')) },
          ], r.modules),
        ),
      ),
    );
  }

  return { title: 'Releases', element, refresh };
}

const pct = (part, whole) => `${((100 * part) / Math.max(1, whole)).toFixed(1)} %`;

/** What a device running each earlier release downloads for `r` (ota-release delta-report's figures). */
function deltaFigures(r, d) {
  if (d.failed) return h('span', { class: 'muted' }, `figures unavailable: ${d.failed}`);
  if (d.deltas.length === 0) return h('span', { class: 'muted' }, 'no earlier release of this product to update from');
  return h(
    'ul',
    { class: 'deltas', 'aria-label': `Delta downloads for ${r.product} ${r.version}` },
    d.deltas.map((x) =>
      h(
        'li',
        { 'data-from': x.from },
        `from ${x.from}: `,
        x.report
          ? [
              h('strong', {}, bytes(x.report.wireBytes)),
              ` (${pct(x.report.wireBytes, x.report.bundleBytes)} of ${bytes(x.report.bundleBytes)}) in ${x.report.requests} request${x.report.requests === 1 ? '' : 's'}; `,
              `${bytes(x.report.localBytes)} of the ${bytes(x.report.imageBytes)} image from the running slot, ${x.report.fetchedChunks} of ${x.report.chunks} chunks fetched`,
            ]
          : h('span', { class: 'muted' }, `${x.error.code}: ${x.error.message}`),
      ),
    ),
  );
}
