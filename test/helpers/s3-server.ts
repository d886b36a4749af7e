/**
 * A real S3-compatible server for the storage tests, as a child process on 127.0.0.1:
 * s3rver (npm devDependency, Node) always; moto_server (Python's moto) where it is installed,
 * because s3rver implements neither AbortMultipartUpload nor ListMultipartUploads and so cannot
 * show that a refused multipart upload leaves nothing behind.
 */
import { S3Client, ListObjectsV2Command, CreateBucketCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT } from './cli.js';

/** A running S3-compatible server with one bucket. */
export interface S3Server {
  kind: 's3rver' | 'moto';
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  client: S3Client;
  /** `ota-server start` flags for this store (prefix and download mode added by the caller). */
  flags(prefix: string, extra?: string[]): string[];
  /** Environment carrying the credentials the way AWS tools do. */
  env: Record<string, string>;
  /** Every key under `prefix`. */
  keys(prefix: string): Promise<string[]>;
  /** Multipart uploads in progress (null where the server cannot list them). */
  multipartUploads(): Promise<string[] | null>;
  stop(): Promise<void>;
}

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** True when moto_server runs here. */
export function motoAvailable(): boolean {
  const r = spawnSync('moto_server', ['--help'], { stdio: 'ignore', timeout: 30_000 });
  return r.status === 0;
}

function wrap(kind: S3Server['kind'], proc: ChildProcess, endpoint: string, bucket: string, creds: [string, string], cleanup: () => Promise<void>): S3Server {
  const [accessKeyId, secretAccessKey] = creds;
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return {
    kind,
    endpoint,
    bucket,
    accessKeyId,
    secretAccessKey,
    client,
    env: { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey },
    flags: (prefix, extra = []) => ['--storage', 's3', '--s3-endpoint', endpoint, '--s3-bucket', bucket, '--s3-prefix', prefix, '--s3-path-style', 'true', ...extra],
    async keys(prefix) {
      const out: string[] = [];
      let token: string | undefined;
      do {
        const r = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
        for (const o of r.Contents ?? []) out.push(o.Key!);
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (token);
      return out.sort();
    },
    async multipartUploads() {
      try {
        const r = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
        return (r.Uploads ?? []).map((u) => `${u.Key} ${u.UploadId}`);
      } catch {
        return null;
      }
    },
    async stop() {
      client.destroy();
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
      await cleanup();
    },
  };
}

async function waitListening(proc: ChildProcess, what: string, ready: () => Promise<boolean>): Promise<void> {
  let out = '';
  proc.stdout?.setEncoding('utf8').on('data', (c: string) => (out += c));
  proc.stderr?.setEncoding('utf8').on('data', (c: string) => (out += c));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${what} exited with ${proc.exitCode}:\n${out}`);
    if (await ready().catch(() => false)) return;
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`${what} did not answer within 30 s:\n${out}`);
    }
    await sleep(100);
  }
}

/** s3rver with bucket `otaab`, its files in a fresh temporary directory. */
export async function startS3rver(): Promise<S3Server> {
  const dir = await mkdtemp(join(tmpdir(), 'otaab-s3rver-'));
  const port = await freePort();
  const bucket = 'otaab';
  const proc = spawn(process.execPath, [join(ROOT, 'node_modules', 's3rver', 'bin', 's3rver.js'), '-d', dir, '-a', '127.0.0.1', '-p', String(port), '-s', '--configure-bucket', bucket], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const endpoint = `http://127.0.0.1:${port}`;
  await waitListening(proc, 's3rver', async () => (await fetch(`${endpoint}/${bucket}?list-type=2`)).status < 500);
  // s3rver accepts only its built-in credentials.
  return wrap('s3rver', proc, endpoint, bucket, ['S3RVER', 'S3RVER'], () => rm(dir, { recursive: true, force: true }));
}

/** moto_server (in memory) with bucket `otaab`. */
export async function startMoto(): Promise<S3Server> {
  const port = await freePort();
  const bucket = 'otaab';
  const proc = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const endpoint = `http://127.0.0.1:${port}`;
  await waitListening(proc, 'moto_server', async () => (await fetch(`${endpoint}/moto-api/`)).status < 500);
  const s = wrap('moto', proc, endpoint, bucket, ['otaab-test', 'otaab-test-secret'], async () => undefined);
  await s.client.send(new CreateBucketCommand({ Bucket: bucket }));
  return s;
}
