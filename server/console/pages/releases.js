// Releases: product, version, modules with their sizes, signer key, channels, and the chunk
// index of delta-capable images.
import { api, can } from '../api.js';
import { badge, bytes, fill, h, table, time } from '../ui.js';

/** The releases page. */
export function releasesView() {
  const list = h('section', { 'aria-label': 'Releases' });
  const element = h('div', {}, h('h1', {}, 'Releases'), list);

  async function refresh() {
    const { releases } = await api('GET', '/v1/fleet/releases');
    // Bytes served per bundle, where the server counts them (GET /v1/bundles/:sha256/served, ops
    // only, with delta updates): what a rollout really cost on the wire. Absent: not shown.
    const served = can.rollouts() ? await Promise.all(releases.slice(0, 20).map((r) => api('GET', `/v1/bundles/${r.sha256}/served`).catch(() => null))) : [];
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
