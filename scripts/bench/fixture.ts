/**
 * What the install, memory, check-in and wire benchmarks stand on: a release key, a real
 * `ota-server` process on loopback with an ops and an enrollment token, and the steps ops and
 * the factory take (build, upload, enroll), each through the project's own CLIs and API.
 */
import { execa } from 'execa';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ServerProcess, api, createToken } from '../fleet/server.js';
import { cliPath } from './util.js';

/** The device type every benchmark bundle is built for. */
export const COMPATIBLE = 'x86-gw';

/** A release as the server stored it. */
export interface Uploaded {
  version: string;
  sha256: string;
  size: number;
}

/** A release key and a running server that trusts it. */
export class BenchServer {
  private constructor(
    readonly work: string,
    readonly server: ServerProcess,
    /** Private release key (ota-release keygen). */
    readonly key: string,
    /** Its public half, trusted by the server and every device. */
    readonly pub: string,
    readonly opsToken: string,
    readonly enrollToken: string,
  ) {}

  /** Makes a release key in `work` and starts a server on `work/server-data` with `args`. */
  static async start(work: string, args: string[] = []): Promise<BenchServer> {
    await mkdir(work, { recursive: true });
    await execa('node', [cliPath('release'), 'keygen', '--out', join(work, 'release')]);
    const data = join(work, 'server-data');
    const server = await ServerProcess.start({ data, releaseKeys: [join(work, 'release.pub')], args });
    const ops = await createToken(data, 'ops', 'bench-ci');
    const enroll = await createToken(data, 'enroll', 'bench-factory');
    return new BenchServer(work, server, join(work, 'release.key'), join(work, 'release.pub'), ops, enroll);
  }

  /** The server's base URL. */
  get url(): string {
    return this.server.url;
  }

  /** `ota-release build` of `payloadArgs` (e.g. ['--image', 'rootfs=FILE']) as `version` into `out`. */
  async build(version: string, payloadArgs: string[], out: string): Promise<void> {
    await execa('node', [cliPath('release'), 'build', '--key', this.key, '--product', 'bench', '--version', version, '--compatible', COMPATIBLE, ...payloadArgs, '-o', out]);
  }

  /** `ota-release upload` of a bundle with the ops token; returns what the server stored. */
  async upload(bundle: string): Promise<Uploaded> {
    const r = await execa('node', [cliPath('release'), 'upload', bundle, '--server', this.url, '--json'], { env: { OTA_TOKEN: this.opsToken } });
    return JSON.parse(String(r.stdout)) as Uploaded;
  }

  /** Enrolls device `id` with the enrollment token; returns its own device token. */
  async enroll(id: string): Promise<string> {
    const r = await api<{ token: string }>(this.url, this.enrollToken, 'POST', '/v1/devices/enroll', { id, compatible: COMPATIBLE });
    return r.token;
  }

  /** Where a device downloads a stored bundle. */
  bundleUrl(sha256: string): string {
    return `${this.url}/v1/bundles/${sha256}`;
  }

  /** Stops the server. */
  async stop(): Promise<void> {
    await this.server.stop();
  }
}
