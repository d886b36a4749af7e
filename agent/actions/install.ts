/**
 * Starting an install: open the source, verify the manifest's signature, apply the device
 * policy, and only then persist the transaction and hand it to the state machine. Every
 * refusal here happens before any slot or bootloader variable is touched.
 */
import { randomUUID } from 'node:crypto';
import { BundleReader } from '../../shared/bundle-reader.js';
import { OtaError } from '../../shared/errors.js';
import { loadKeyring } from '../../shared/signing.js';
import { openSource, type OpenedSource } from '../infra/bundle-source.js';
import type { DeltaStart } from '../delta/start.js';
import { otherSlot } from '../config/types.js';
import { machineFor, type Device } from './device.js';
import { DownloadRetries, downloadSettings } from '../download/settings.js';
import type { RunResult } from '../machine/runner.js';
import { slotConfig } from '../machine/context.js';
import { checkBundlePolicy } from './policy.js';
import { slotBackend } from '../boot/slots/backend.js';

/** How an install was asked for. */
export interface InstallRequest {
  /** Path or URL of the bundle. */
  readonly source: string;
  readonly allowDowngrade?: boolean;
  readonly origin?: 'local' | 'server';
  readonly directiveId?: string;
  /** Announced size and hash of the whole bundle (from a server directive). */
  readonly size?: number;
  readonly sha256?: string;
  /**
   * The manifest bytes a server directive announced (already signature-checked there): the
   * bundle must carry exactly these, or it is not the release the server meant.
   */
  readonly manifest?: Buffer;
  readonly onProgress?: (done: number, total: number | null) => void;
  readonly log?: (line: string) => void;
  /** Aborted when the agent must stop: the download ends and the machine stops between states. */
  readonly signal?: AbortSignal;
  /**
   * Give up a URL that delivers no byte for this long (a technician waiting at the device);
   * absent for the daemon, which keeps retrying within server.downloadRetries.
   */
  readonly giveUpMs?: number;
}

/** A delta install reads by ranges: its "source" only names the bundle and counts bytes. */
function deltaSource(d: DeltaStart): OpenedSource {
  return { name: d.src.name, chunks: (async function* () {})(), total: d.plannedBytes, bytesRead: () => d.src.stats.bytes, close: () => undefined };
}

/** Runs an install until it ends or waits for the reboot. */
export async function install(dev: Device, req: InstallRequest): Promise<RunResult> {
  const inFlight = dev.store.current();
  if (inFlight) {
    throw new OtaError('TRANSACTION_IN_PROGRESS', `transaction ${inFlight.id} (${inFlight.kind} ${inFlight.version}) is in state ${inFlight.state}; see ota-agent status`);
  }
  const target = otherSlot(dev.booted);
  const slot = slotConfig(dev.config, target);
  const log = req.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const settings = downloadSettings(dev.config, dev.server);
  const retries = new DownloadRetries(dev.store, dev.booted, log, settings.retries);
  const keyring = await loadKeyring(dev.config.trustedKeys);
  // Every refusal happens here, before any slot or bootloader variable is touched.
  const vet = async (reader: BundleReader, name: string): Promise<void> => {
    if (req.manifest && !reader.bundle.manifestBytes.equals(req.manifest)) {
      throw new OtaError('BUNDLE_CHANGED', `bundle ${name}: its manifest (version ${reader.manifest.version}) is not the one announced for it`);
    }
    const capacity = await slotBackend(slot).capacity();
    checkBundlePolicy(reader.manifest, {
      compatible: dev.config.device.compatible,
      highestCommitted: dev.store.highestCommitted(),
      allowDowngrade: req.allowDowngrade === true,
      slotKind: slot.kind,
      ...(capacity !== undefined ? { slotCapacity: capacity } : {}),
    });
  };
  // The delta code (and the HTTP client its range reader loads) is loaded only for an install
  // that can go by delta: the conditions prepareDelta checks first.
  const deltaPossible = dev.config.delta.enabled && slot.kind === 'raw' && slotConfig(dev.config, dev.booted).kind === 'raw';
  const prepareDelta = deltaPossible ? (await import('../delta/start.js')).prepareDelta : async (): Promise<undefined> => undefined;
  const delta = await prepareDelta({
    config: dev.config,
    target: slot,
    active: slotConfig(dev.config, dev.booted),
    source: req.source,
    http: retries.http(settings, req.source, { sha256: req.sha256 ?? null, size: req.size ?? null }, req.signal, req.giveUpMs),
    keyring,
    ...(req.size !== undefined ? { size: req.size } : {}),
    log,
    vet,
    ...(req.manifest ? { manifest: req.manifest } : {}),
  });
  const src = delta
    ? deltaSource(delta)
    : await openSource(req.source, {
        ...(req.size !== undefined ? { maxBytes: req.size } : {}),
        http: retries.http(settings, req.source, { sha256: req.sha256 ?? null, size: req.size ?? null }, req.signal, req.giveUpMs),
      });
  let reader: BundleReader;
  try {
    reader = delta ? delta.head.reader : await BundleReader.open(src.chunks, { keyring, source: src.name });
    if (!delta) await vet(reader, src.name);
  } catch (err) {
    // Refused before anything was touched: let go of the file or the connection too.
    src.close();
    throw err;
  }
  const machine = machineFor(dev, {
    live: { reader, bytesRead: src.bytesRead, ...(delta ? { delta } : {}) },
    ...(req.onProgress ? { onProgress: req.onProgress } : {}),
    ...(req.signal ? { signal: req.signal } : {}),
    log,
  });
  const tx = machine.start({
    id: randomUUID(),
    kind: 'install',
    origin: req.origin ?? 'local',
    directiveId: req.directiveId ?? null,
    version: reader.manifest.version,
    state: 'downloading',
    sourceSlot: dev.booted,
    targetSlot: target,
    source: src.name,
    bundleSha256: req.sha256 ?? null,
    bundleSize: req.size ?? null,
    manifest: reader.bundle.manifestBytes,
    manifestSig: reader.bundle.signature,
    allowDowngrade: req.allowDowngrade === true,
    payloadsOffset: reader.bundle.payloadsOffset,
    bytesTotal: delta ? delta.plannedBytes : (req.size ?? src.total),
  });
  // The source was opened before the transaction existed; its later retries belong to it.
  retries.attach(tx.id);
  return machine.run(tx);
}
