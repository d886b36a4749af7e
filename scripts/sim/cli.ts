#!/usr/bin/env node
/**
 * Command line of the device simulator: lay out a device, boot it through real GRUB,
 * make a slot's kernel panic, read or set its grubenv. Exit 0 on success, 1 when an
 * operation fails, 2 on a usage error (DESIGN §9).
 */
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { boot, bootUntilUp, createDevice, openDevice, readEnv, setCrash, writeEnv } from './simulator.js';

const USAGE = `Usage: node dist/scripts/sim/cli.js <command> [options]

Simulates an A/B device whose boot runs the project's grub/ota-select.cfg under grub-emu.

Commands:
  init DIR [--kind raw|fs] [--slot-size BYTES] [--max-tries N]
        Lay out a new device in DIR: boot/grub/{grub.cfg,ota-select.cfg,grubenv},
        slots/A and slots/B (raw: files, default 4 MiB; fs: directories),
        cmdline (the fake /proc/cmdline) and crash/ (panic flags).
  boot DIR [--until-up] [--max-boots N] [--json] [--grub-output]
        Power the device on once: GRUB picks a slot, saves grubenv, and unless that
        slot is flagged to crash, DIR/cmdline gets "ota.slot=<slot>".
        --until-up boots again after each crash (at most --max-boots, default 10).
  crash-flag DIR A|B on|off
        Make the slot's kernel panic at every boot (on), or boot normally (off).
  env DIR [NAME=VALUE ...] [--json]
        Print the device's grubenv, after setting the given variables with grub-editenv.

Options:
  -h, --help   Show this help (also after a command).

Needs grub-emu, grub-common (grub-editenv) and e2fsprogs (mkfs.ext4, debugfs).`;

/** A mistake in how the command was called: exit code 2. */
class UsageError extends Error {
  override readonly name = 'UsageError';
}

function slotArg(value: string | undefined): 'A' | 'B' {
  if (value === 'A' || value === 'B') return value;
  throw new UsageError(`invalid slot ${JSON.stringify(value ?? '')}: use A or B`);
}

function intOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} must be a whole number, got ${JSON.stringify(value)}`);
  return Number(value);
}

function printEnv(env: Record<string, string>): string {
  return Object.entries(env).map(([k, v]) => `${k}=${v}`).join('\n');
}

/** Runs one CLI invocation and returns its exit code; output goes to the given writers. */
export async function main(argv: string[], out: (s: string) => void = console.log, err: (s: string) => void = console.error): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        kind: { type: 'string' },
        'slot-size': { type: 'string' },
        'max-tries': { type: 'string' },
        'until-up': { type: 'boolean' },
        'max-boots': { type: 'string' },
        json: { type: 'boolean' },
        'grub-output': { type: 'boolean' },
      },
    });
  } catch (e) {
    err(`ota-sim: ${(e as Error).message} (see --help)`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, dir, ...rest] = positionals;
  if (values.help || command === undefined || command === 'help') {
    out(USAGE);
    return command === undefined && !values.help ? 2 : 0;
  }
  try {
    if (dir === undefined) throw new UsageError(`${command} needs the device folder DIR`);
    switch (command) {
      case 'init': {
        if (rest.length > 0) throw new UsageError(`init takes one folder, got extra ${rest.join(' ')}`);
        if (values.kind !== undefined && values.kind !== 'raw' && values.kind !== 'fs') throw new UsageError(`--kind must be raw or fs, got ${values.kind}`);
        const opts: { kind?: 'raw' | 'fs'; slotSize?: number; maxTries?: number } = {};
        if (values.kind !== undefined) opts.kind = values.kind;
        const slotSize = intOption('slot-size', values['slot-size']);
        if (slotSize !== undefined) opts.slotSize = slotSize;
        const maxTries = intOption('max-tries', values['max-tries']);
        if (maxTries !== undefined) opts.maxTries = maxTries;
        const dev = await createDevice(dir, opts);
        out(values.json ? JSON.stringify(dev) : `created ${dev.kind} device in ${dev.root}`);
        return 0;
      }
      case 'boot': {
        if (rest.length > 0) throw new UsageError(`boot takes one folder, got extra ${rest.join(' ')}`);
        const dev = await openDevice(dir);
        if (values['until-up']) {
          const up = await bootUntilUp(dev, intOption('max-boots', values['max-boots']) ?? 10);
          out(values.json ? JSON.stringify(up) : `up on slot ${up.slot} after ${up.boots} boot(s)\n${printEnv(up.env)}`);
          return 0;
        }
        const result = await boot(dev);
        if (values['grub-output']) out(result.output);
        const summary = { slot: result.slot, crashed: result.crashed, env: result.env };
        out(values.json ? JSON.stringify(summary) : `${result.crashed ? 'crashed in' : 'booted'} slot ${result.slot}\n${printEnv(result.env)}`);
        return 0;
      }
      case 'crash-flag': {
        const [slot, state, ...extra] = rest;
        if (extra.length > 0 || (state !== 'on' && state !== 'off')) throw new UsageError('usage: crash-flag DIR A|B on|off');
        const which = slotArg(slot);
        await setCrash(await openDevice(dir), which, state === 'on');
        out(`slot ${slot} ${state === 'on' ? 'panics' : 'boots normally'} from the next boot`);
        return 0;
      }
      case 'env': {
        const dev = await openDevice(dir);
        const vars: Record<string, string> = {};
        for (const arg of rest) {
          const eq = arg.indexOf('=');
          if (eq <= 0) throw new UsageError(`expected NAME=VALUE, got ${JSON.stringify(arg)}`);
          vars[arg.slice(0, eq)] = arg.slice(eq + 1);
        }
        await writeEnv(dev.grubenvPath, vars);
        const env = await readEnv(dev.grubenvPath);
        out(values.json ? JSON.stringify(env) : printEnv(env));
        return 0;
      }
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}: use init, boot, crash-flag or env`);
    }
  } catch (e) {
    const message = (e as Error).message.split('\n')[0] ?? String(e);
    if (e instanceof UsageError) {
      err(`ota-sim: ${message} (see --help)`);
      return 2;
    }
    err(`ota-sim: ${command}: ${message}`);
    return 1;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
