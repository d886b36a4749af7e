/**
 * Full verification of a bundle without installing it: signature, every payload's hash and
 * size, and the contents of each payload (gzip bound, tree rules), exactly as a device would
 * check them while installing. Used by `ota-release verify` and the server's upload.
 */
import { openBundleFile } from './bundle-file.js';
import { BundleReader, type VerifiedBundle } from './bundle-reader.js';
import { unpackIndex } from './chunk-index.js';
import { IndexChecker, checkIndexMatchesModule } from './index-check.js';
import { gunzipLimited } from './inflate.js';
import type { ModuleSpec } from './manifest.js';
import type { Keyring } from './signing.js';
import { walkTree } from './tree.js';

/** What one payload turned out to hold. */
export interface PayloadReport {
  name: string;
  type: ModuleSpec['type'];
  size: number;
  unpackedBytes: number;
  entries?: number;
}

/** The outcome of a successful verification. */
export interface VerifyReport {
  bundle: VerifiedBundle;
  payloads: PayloadReport[];
}

async function drain(chunks: AsyncIterable<Buffer>): Promise<number> {
  let n = 0;
  for await (const c of chunks) n += c.length;
  return n;
}

/** Reads one payload's bytes to the end, checking its contents as an install would. */
export async function checkPayload(module: ModuleSpec, chunks: AsyncIterable<Buffer>, what: string): Promise<PayloadReport> {
  const report: PayloadReport = { name: module.name, type: module.type, size: module.size, unpackedBytes: 0 };
  if (module.type === 'image') {
    report.unpackedBytes =
      module.compression === 'gzip' ? await drain(gunzipLimited(chunks, module.unpackedSize ?? 0, what)) : await drain(chunks);
    return report;
  }
  const limits = { kind: module.type, unpackedSize: module.unpackedSize ?? 0, what, ...(module.target ? { target: module.target } : {}) };
  const summary = await walkTree(chunks, limits, async (_entry, body) => {
    await drain(body);
  });
  report.unpackedBytes = summary.fileBytes;
  report.entries = summary.entries;
  return report;
}

/** Verifies a bundle read from `input` (a stream of bytes) against `keyring`. */
export async function verifyBundleStream(input: AsyncIterable<Uint8Array>, keyring: Keyring, source: string): Promise<VerifyReport> {
  const reader = await BundleReader.open(input, { keyring, source });
  const payloads: PayloadReport[] = [];
  const indexes = await reader.indexes();
  for await (const p of reader.payloads()) {
    const what = `bundle ${source}: payload "${p.module.name}"`;
    const packed = indexes.get(p.module.name);
    if (!packed) {
      payloads.push(await checkPayload(p.module, p.chunks, what));
      continue;
    }
    const ix = unpackIndex(packed, `bundle ${source}: index/${p.module.name}`);
    checkIndexMatchesModule(ix, p.module, what);
    const checker = new IndexChecker(ix, what);
    const tapped = async function* (): AsyncGenerator<Buffer> {
      for await (const c of p.chunks) {
        checker.push(c);
        yield c;
      }
      checker.finish();
    };
    payloads.push(await checkPayload(p.module, tapped(), what));
  }
  return { bundle: reader.bundle, payloads };
}

/** Verifies the bundle file at `path`. */
export async function verifyBundleFile(path: string, keyring: Keyring): Promise<VerifyReport> {
  return verifyBundleStream(await openBundleFile(path), keyring, path);
}
