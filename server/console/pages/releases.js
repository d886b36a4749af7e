// Releases: product, version, modules with their sizes, signer key, channels, and the chunk
// index of delta-capable images.
import { api } from '../api.js';
import { badge, bytes, fill, h, table, time } from '../ui.js';

/** The releases page. */
export function releasesView() {
  const list = h('section', { 'aria-label': 'Releases' });
  const element = h('div', {}, h('h1', {}, 'Releases'), list);

  async function refresh() {
    const { releases } = await api('GET', '/v1/fleet/releases');
    if (releases.length === 0) return void fill(list, h('p', { class: 'muted' }, 'No release uploaded yet (ota-release upload).'));
    fill(
      list,
      releases.map((r) =>
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
