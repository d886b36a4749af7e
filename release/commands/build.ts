/** `ota-release build`: stage payloads, sign the manifest, write the bundle. */
import { UsageError, defineCommand, list, progressBar, required, formatBytes } from '../../shared/cli.js';
import { buildBundle, type PayloadInput } from '../../shared/bundle-writer.js';
import { loadPrivateKey } from '../../shared/signing.js';

/** Splits NAME=SOURCE (and NAME@VERSION=SOURCE). */
function nameAndSource(opt: string, raw: string): { name: string; version?: string; source: string } {
  const eq = raw.indexOf('=');
  if (eq <= 0 || eq === raw.length - 1) throw new UsageError(`--${opt} "${raw}" must look like NAME=PATH`);
  const left = raw.slice(0, eq);
  const at = left.indexOf('@');
  const name = at === -1 ? left : left.slice(0, at);
  const out: { name: string; version?: string; source: string } = { name, source: raw.slice(eq + 1) };
  if (at !== -1) out.version = left.slice(at + 1);
  return out;
}

/** Turns the payload options, in the order given, into payload inputs. */
export function payloadsFromTokens(tokens: { name: string; value: string | undefined }[], gzip: boolean): PayloadInput[] {
  const out: PayloadInput[] = [];
  for (const t of tokens) {
    if (t.value === undefined) continue;
    if (t.name === 'image') {
      const { name, source } = nameAndSource('image', t.value);
      out.push({ name, type: 'image', path: source, gzip });
    } else if (t.name === 'archive') {
      const { name, source } = nameAndSource('archive', t.value);
      out.push({ name, type: 'archive', path: source });
    } else if (t.name === 'module') {
      const { name, version, source } = nameAndSource('module', t.value);
      const colon = source.lastIndexOf(':/');
      if (colon <= 0) throw new UsageError(`--module "${t.value}" must look like NAME=DIR:/target/path`);
      const p: PayloadInput = { name, type: 'module', path: source.slice(0, colon), target: source.slice(colon + 1) };
      if (version !== undefined) p.version = version;
      out.push(p);
    }
  }
  return out;
}

/** The index options for --chunk-kib. */
function chunkOption(raw: string | undefined): { params?: { min: number; avg: number; max: number } } {
  if (raw === undefined) return {};
  const kib = Number(raw);
  if (!Number.isInteger(kib) || kib < 4 || kib > 1024 || (kib & (kib - 1)) !== 0) {
    throw new UsageError(`--chunk-kib must be a power of two from 4 to 1024, not "${raw}"`);
  }
  const avg = kib * 1024;
  return { params: { min: avg / 4, avg, max: avg * 4 } };
}

/** The build command. */
export const buildCommand = defineCommand({
  name: 'build',
  summary: 'Build and sign a bundle from images, root file system trees and modules',
  usage: 'ota-release build --key KEY --product P --version V --compatible C [...] PAYLOAD... -o OUT',
  help: `Payloads (at least one; several allowed, stored in the order given):
  --image NAME=FILE                raw file system image, written byte for byte into a raw slot
  --gzip                           compress every --image with gzip (the slot still gets raw bytes)
  --archive NAME=DIR|TAR           a whole root file system, extracted into an emptied fs slot
  --module NAME[@VER]=DIR|TAR:/target/path
                                   one module tree, extracted into <slot>/target/path; the rest
                                   of the new slot is copied from the active one

Options:
  --key FILE          release private key (ota-release keygen); passphrase from OTA_KEY_PASSPHRASE
  --product NAME      product name, e.g. gateway
  --version V         release version, semantic versioning (e.g. 2026.11.2)
  --compatible C      device type the bundle may install on (repeat for several)
  --notes TEXT        free text stored in the manifest
  --no-index          no chunk index for the images (format 1; devices then always download
                      whole images). By default every image gets one: delta updates
  --chunk-kib N       average chunk size of the index in KiB, a power of two from 4 to 1024
                      (default 32; min and max are a quarter and four times it). Smaller
                      chunks send less for file-system images, a bigger index for others
  -o, --out FILE      the bundle to write (written to a temporary name, then renamed)

Example:
  ota-release build --key release.key --product gateway --version 2026.11.2 \\
    --compatible rpi-cm4 --compatible x86-gw --image rootfs=rootfs.ext4 --gzip -o gateway-2026.11.2.otab`,
  options: {
    key: { type: 'string' },
    product: { type: 'string' },
    version: { type: 'string' },
    compatible: { type: 'string', multiple: true },
    image: { type: 'string', multiple: true },
    gzip: { type: 'boolean' },
    archive: { type: 'string', multiple: true },
    module: { type: 'string', multiple: true },
    notes: { type: 'string' },
    'no-index': { type: 'boolean' },
    'chunk-kib': { type: 'string' },
    out: { type: 'string', short: 'o' },
  },
  async run({ values, tokens }) {
    const keyPath = required(values, 'key');
    const out = required(values, 'out');
    const product = required(values, 'product');
    const version = required(values, 'version');
    const compatible = list(values.compatible);
    if (compatible.length === 0) throw new UsageError('option --compatible is required (repeat it for several device types)');
    const payloads = payloadsFromTokens(tokens, values.gzip === true);
    if (payloads.length === 0) throw new UsageError('at least one payload is required: --image, --archive or --module');
    const key = await loadPrivateKey(keyPath);
    const bar = progressBar('writing');
    const index = values['no-index'] === true ? (false as const) : chunkOption(values['chunk-kib'] as string | undefined);
    const input = { product, version, compatible, payloads, key, out, onProgress: bar.update, index };
    const result = await buildBundle(typeof values.notes === 'string' ? { ...input, notes: values.notes } : input);
    bar.end();
    process.stdout.write(`${out}: ${result.manifest.product} ${result.manifest.version}, ${result.manifest.modules.length} payload(s), ${formatBytes(result.size)}\nsha256 ${result.sha256}\n`);
  },
});
