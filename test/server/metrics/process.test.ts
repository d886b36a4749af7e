/**
 * `ota-server start --metrics-listen`: the real process prints where its metrics are, serves
 * them there and not on the API port, and counts the check-in traffic it answered.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServerProcess } from '../../../scripts/fleet/server.js';
import { tempDir } from '../../helpers/cli.js';
import { releaseKey } from '../helpers.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let server: ServerProcess;

beforeAll(async () => {
  tmp = await tempDir('otaab-metrics-process-');
  const pub = join(tmp.dir, 'release.pub');
  await writeFile(pub, (await releaseKey()).publicKey);
  server = await ServerProcess.start({ data: join(tmp.dir, 'data'), releaseKeys: [pub], args: ['--metrics-listen', '127.0.0.1:0'] });
});

afterAll(async () => {
  await server?.stop();
  await tmp?.cleanup();
});

describe('ota-server start --metrics-listen', () => {
  it('serves /metrics on its own address only', async () => {
    let m: RegExpExecArray | null = null;
    for (let i = 0; i < 50 && !m; i++) {
      m = /metrics on (http:\/\/\S+\/metrics)/.exec(server.log);
      if (!m) await sleep(100);
    }
    expect(m, server.log).not.toBeNull();
    await fetch(`${server.url}/v1/openapi.json`);
    const res = await fetch(m![1]!);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/^otaab_http_request_duration_seconds_count\{method="GET",route="\/v1\/openapi.json",status="200"\} 1$/m);
    const onApi = await fetch(`${server.url}/metrics`);
    expect([onApi.status, ((await onApi.json()) as { error: string }).error]).toEqual([404, 'METRICS_DISABLED']);
  });
});
