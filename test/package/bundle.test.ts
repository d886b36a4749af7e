// The single-file bundles (`npm run bundle`, scripts/bundle.ts) behave as the compiled CLIs
// they are made from: the same help for every command, the same usage and config errors, and
// the bundled agent installs a real signed bundle into a simulated device's slots and reports
// the same status as dist/agent/cli.js. better-sqlite3's native module is the one file the agent
// loads from outside (the store passes its path), besides its own files for openpgp, got and
// execa, each loaded only by what needs it; the release tool leaves better-sqlite3 out.
import { execa } from 'execa';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import * as openpgp from 'openpgp';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commands as agentCommands } from '../../agent/commands/index.js';
import { commands as releaseCommands } from '../../release/commands/index.js';
import { ROOT } from '../helpers/cli.js';
import { imageBundle } from '../agent/helpers/bundles.js';
import { boot } from '../../scripts/sim/simulator.js';
import { makeRig, rebootCount, releaseImage, type Rig } from '../agent/helpers/rig.js';
import { AGENT_LAZY, lazyFile } from '../../scripts/bundle.js';

let out: { dir: string; cleanup: () => Promise<void> };
let rig: Rig;
const DIST = { agent: join(ROOT, 'dist', 'agent', 'cli.js'), release: join(ROOT, 'dist', 'release', 'cli.js') };
const BUNDLED = { agent: '', release: '' };
/** The agent's CommonJS code next to its launcher. */
const AGENT_CODE = (): string => join(out.dir, 'ota-agent.cjs');

beforeAll(async () => {
  // Inside the repository: the bundles resolve better-sqlite3 from its node_modules.
  const dir = await mkdtemp(join(ROOT, 'dist', 'bundle-test-'));
  out = { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
  const r = await execa('node', [join(ROOT, 'dist', 'scripts', 'bundle.js'), '--out', out.dir], { reject: false });
  expect(r.exitCode, String(r.stderr)).toBe(0);
  BUNDLED.agent = join(out.dir, 'ota-agent.mjs');
  BUNDLED.release = join(out.dir, 'ota-release.mjs');
  rig = await makeRig();
});
afterAll(async () => {
  await out?.cleanup();
  await rig?.cleanup();
});

async function run(file: string, args: string[], env: Record<string, string> = {}) {
  const r = await execa('node', [file, ...args], { reject: false, stdin: 'ignore', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, extendEnv: false });
  return { code: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr).replaceAll(file, 'CLI') };
}

/** A bundled agent run with Node's module-loader trace (NODE_DEBUG=module): which of its own files it required. */
async function runTraced(args: string[]) {
  const r = await run(BUNDLED.agent, args, { NODE_DEBUG: 'module' });
  const loaded = [...r.stderr.matchAll(/Module\._load REQUEST \.\/(ota-agent-[a-z]+\.cjs)/g)].map((m) => m[1]!);
  return { ...r, loaded: [...new Set(loaded)].sort(), stderr: r.stderr.split('\n').filter((l) => !l.startsWith('MODULE ')).join('\n') };
}

// Dozens of process starts per test: generous on a loaded two-core machine.
describe('single-file bundles', { timeout: 300_000 }, () => {
  it("are one executable file each (the agent: a launcher, its code and its lazily loaded packages), with only better-sqlite3's native module loaded from outside", async () => {
    const outside = (text: string): Set<string> =>
      new Set(
        [...text.matchAll(/^import\s.*?from\s+["']([^"']+)["'];?$/gm), ...text.matchAll(/\brequire\(["']([^"']+)["']\)/g)]
          .map((m) => m[1]!)
          .filter((s) => !s.startsWith('node:') && !builtinModules.includes(s)),
      );
    for (const f of [BUNDLED.agent, BUNDLED.release]) {
      expect((await stat(f)).mode & 0o111).not.toBe(0);
      const text = await readFile(f, 'utf8');
      expect(text.startsWith('#!/usr/bin/env node\n')).toBe(true);
      expect(outside(text)).toEqual(new Set());
      expect(text).not.toMatch(/fastify/);
    }
    // The agent's code: CommonJS run by the launcher through vm.Script, which has no module
    // loader for a dynamic import(); only the agent's own dependencies, nothing of the server's.
    // better-sqlite3's JavaScript is inlined too: its native module is required by the path
    // agent/store/db.ts resolves, at run time.
    const code = await readFile(AGENT_CODE(), 'utf8');
    // Besides its own files for the packages an install does not load, each self-contained.
    const lazy = AGENT_LAZY.map((n) => lazyFile(n));
    expect(outside(code)).toEqual(new Set(lazy.map((f) => `./${f}`)));
    for (const f of lazy) {
      const side = await readFile(join(out.dir, f), 'utf8');
      expect(outside(side), f).toEqual(new Set());
      // eslint-disable-next-line no-control-regex
      expect(side, f).not.toMatch(/[^\u0000-\u00ff]/);
    }
    expect(code).toMatch(/better-sqlite3\/lib\/database\.js/);
    expect(code).not.toMatch(/(?<![\w$.{])import\(["'`]/); // `{import(...)}`: a JSDoc type
    expect(code).not.toMatch(/fastify/);
    // Latin-1 only: V8 keeps it as a one-byte string, half the memory (scripts/bundle.ts).
    // eslint-disable-next-line no-control-regex
    expect(code).not.toMatch(/[^\u0000-\u00ff]/);
  });

  it('ota-agent: its code cache is used, and a cache that does not fit is ignored', async () => {
    const code = AGENT_CODE();
    // In a plain node, as the launcher runs: V8 rejects a cache made under other V8 flags.
    const used = async (): Promise<string> => {
      const r = await execa('node', ['--input-type=module', '-e', `import { compileCached } from ${JSON.stringify(join(ROOT, 'dist', 'agent', 'code-cache.js'))}; process.stdout.write(String(compileCached(process.argv[1], process.argv[1] + '.cache').cacheUsed));`, code], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, extendEnv: false });
      return String(r.stdout);
    };
    expect(await used()).toBe('true');
    const help = await run(DIST.agent, ['--help']);
    // Another code's cache (its hash does not match), and bytes V8 rejects under the right hash.
    const saved = await readFile(`${code}.cache`);
    try {
      for (const bad of [Buffer.concat([Buffer.alloc(32), saved.subarray(32)]), Buffer.concat([saved.subarray(0, 32), Buffer.from('not a V8 code cache')])]) {
        await writeFile(`${code}.cache`, bad);
        expect(await used()).toBe('false');
        expect(await run(BUNDLED.agent, ['--help'])).toEqual(help);
      }
      await rm(`${code}.cache`);
      expect(await run(BUNDLED.agent, ['--help'])).toEqual(help);
    } finally {
      await writeFile(`${code}.cache`, saved);
    }
  });

  for (const [name, cmds] of [
    ['agent', agentCommands],
    ['release', releaseCommands],
  ] as const) {
    it(`ota-${name}: the same help, usage errors and exit codes as dist/${name}/cli.js`, async () => {
      const cases = [['--help'], [], ['frobnicate'], ...cmds.map((c) => [c.name, '--help']), [cmds[0]!.name, '--no-such-option']];
      for (const args of cases) {
        const a = await run(DIST[name], args);
        const b = await run(BUNDLED[name], args);
        expect(b, args.join(' ')).toEqual(a);
      }
    });
  }

  it('ota-agent: the same one-line error on a config it cannot read', async () => {
    const args = ['status', '--config', join(out.dir, 'absent.json')];
    const a = await run(DIST.agent, args);
    expect(a.code).toBe(1);
    expect(await run(BUNDLED.agent, args)).toEqual(a);
  });

  it('the bundled agent installs a signed bundle into raw slots; both CLIs report the same status', async () => {
    // The device is up on slot A (real GRUB under grub-emu picked it), as after a power-on.
    expect((await boot(rig.dev)).slot).toBe('A');
    const { path } = await imageBundle(rig.dir, rig.key, releaseImage('1.0.0', true), { version: '1.0.0' });
    const inst = await runTraced(['install', path, '--config', rig.configPath]);
    expect(inst.code, inst.stderr).toBe(0);
    // An install signed by an Ed25519 key loads none of openpgp, got and execa.
    expect(inst.loaded).toEqual([]);
    expect(inst.stdout).toMatch(/install 1\.0\.0: rebooting; the system reboots into slot B/);
    expect(await rebootCount(rig)).toBe(1);
    const slotB = await readFile(rig.dev.slots.B);
    expect(slotB.subarray(0, 64 * 1024).equals(releaseImage('1.0.0', true))).toBe(true);
    const a = await run(DIST.agent, ['status', '--json', '--config', rig.configPath]);
    const b = await run(BUNDLED.agent, ['status', '--json', '--config', rig.configPath]);
    expect(a.code, a.stderr).toBe(0);
    expect(b).toEqual(a);
    const status = JSON.parse(b.stdout) as { transaction: { version: string; state: string } | null };
    expect(status.transaction).toMatchObject({ version: '1.0.0', state: 'rebooting' });
    const h = await run(BUNDLED.agent, ['history', '--json', '--config', rig.configPath]);
    expect(h.code, h.stderr).toBe(0);
    expect(h.stdout).toEqual((await run(DIST.agent, ['history', '--json', '--config', rig.configPath])).stdout);
  });
  it('the bundled agent loads execa, got and openpgp from their files when a health check, a check-in and an RSA signature need them', async () => {
    // After the install above: the device reboots into B, and the daemon's health check (a
    // command, through execa) commits it. The health checks' module holds all three kinds of
    // check, so the HTTP one's got is loaded with it.
    expect((await boot(rig.dev)).slot).toBe('B');
    const d = await runTraced(['daemon', '--config', rig.configPath]);
    expect(d.code, d.stderr).toBe(0);
    expect(d.loaded).toEqual(['ota-agent-execa.cjs', 'ota-agent-got.cjs']);
    const status = JSON.parse((await run(BUNDLED.agent, ['status', '--json', '--config', rig.configPath])).stdout) as { highestCommitted: string | null; slots: { name: string; status: string; version: string | null }[] };
    expect(status.highestCommitted).toBe('1.0.0');
    expect(status.slots.find((s) => s.name === 'B')).toMatchObject({ status: 'committed', version: '1.0.0' });
    // A check-in (got) to a server that is not there: got's own error, mapped as the compiled CLI maps it.
    const withServer = join(rig.dir, 'agent-server.json');
    await writeFile(withServer, JSON.stringify({ ...rig.config, server: { url: 'http://127.0.0.1:9', token: 't', serverKey: rig.key.pubPath } }));
    const c = await runTraced(['check', '--config', withServer]);
    expect(c.loaded).toEqual(['ota-agent-got.cjs']);
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/SERVER_UNREACHABLE: POST http:\/\/127\.0\.0\.1:9\/v1\/devices\/sim-1\/\w+: connect ECONNREFUSED/);
    const a = await run(DIST.agent, ['check', '--config', withServer]);
    expect({ code: c.code, stdout: c.stdout, stderr: c.stderr }).toEqual(a);
    // A release signed by an RSA key: shared/pgp-verify.ts leaves it to openpgp.js.
    const rsa = await openpgp.generateKey({ type: 'rsa', rsaBits: 3072, userIDs: [{ name: 'rsa release' }], format: 'object' });
    const rsaPub = join(rig.dir, 'rsa.pub');
    await writeFile(rsaPub, rsa.publicKey.armor());
    const withRsa = join(rig.dir, 'agent-rsa.json');
    await writeFile(withRsa, JSON.stringify({ ...rig.config, trustedKeys: [rsaPub] }));
    const { path } = await imageBundle(rig.dir, { key: rsa.privateKey, pubPath: rsaPub }, releaseImage('2.0.0', true), { version: '2.0.0' });
    const inst = await runTraced(['install', path, '--config', withRsa]);
    expect(inst.code, inst.stderr).toBe(0);
    expect(inst.stdout).toMatch(/install 2\.0\.0: rebooting; the system reboots into slot A/);
    expect(inst.loaded).toEqual(['ota-agent-openpgp.cjs']);
  });
});
