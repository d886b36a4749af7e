/**
 * How grub/ota-select.cfg reads the env, mirrored for the agent: which slot it boots next and
 * what counts as OK or exhausted. Pure functions, so they are tested against the script's
 * documented decision table without running GRUB.
 */
import { SLOT_NAMES, type SlotName } from '../config/types.js';
import type { SlotBootState } from './bootloader.js';

/** MAX_TRIES as the script reads it: 1 to 5, anything else 3. */
export function maxTries(env: Record<string, string>): number {
  const n = env.MAX_TRIES;
  return n !== undefined && /^[1-5]$/.test(n) ? Number(n) : 3;
}

/** ORDER as the script reads it: known names in order, then any left out. */
export function slotOrder(env: Record<string, string>): SlotName[] {
  const out: SlotName[] = [];
  for (const s of [...(env.ORDER ?? '').split(/\s+/), ...SLOT_NAMES]) {
    if ((s === 'A' || s === 'B') && !out.includes(s)) out.push(s);
  }
  return out;
}

/** A slot's state as the script reads it: missing OK is bootable; a garbled counter is exhausted. */
export function slotState(env: Record<string, string>, slot: SlotName): SlotBootState {
  const ok = env[`${slot}_OK`];
  const tries = env[`${slot}_TRY`];
  const n = tries === undefined || tries === '' ? 0 : /^\d{1,3}$/.test(tries) ? Number(tries) : maxTries(env);
  return { ok: ok === undefined || ok === '' || ok === '1', tries: n };
}

/** The slot the script will boot next. */
export function nextBoot(env: Record<string, string>): SlotName {
  const order = slotOrder(env);
  const max = maxTries(env);
  const pick = order.find((s) => {
    const st = slotState(env, s);
    return st.ok && st.tries < max;
  });
  // No slot qualifies: the script resets the counters and prefers an OK slot.
  return pick ?? order.find((s) => slotState(env, s).ok) ?? order[0]!;
}

/** Parses `grub-editenv list` output. */
export function parseEnvList(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

/** What grub-editenv writes first in a block (grub-core/lib/envblk.c). */
const ENV_HEADER = '# GRUB Environment Block\n';
/** A variable as grub-editenv stores it without escaping: no backslash, no line end. */
const NAME = '[A-Za-z0-9_]+';
const VALUE = '[\\x20-\\x5b\\x5d-\\x7e]*';
const PLAIN_LINE = new RegExp(`^${NAME}=${VALUE}$`);
const PLAIN_NAME = new RegExp(`^${NAME}$`);
const PLAIN_VALUE = new RegExp(`^${VALUE}$`);

/**
 * The variables of a grubenv file read directly, when it is exactly the plain form grub-editenv
 * writes: 1024 bytes, its header, comment lines and `name=value` lines with nothing its `list`
 * would unescape (no backslash, printable ASCII), then `#` to the end. Undefined for anything else, which is then
 * read with `grub-editenv list`: the same answer, without a process for the usual file.
 */
export function parseEnvBlock(block: Buffer): Record<string, string> | undefined {
  if (block.length !== 1024) return undefined;
  const text = block.toString('latin1');
  if (!text.startsWith(ENV_HEADER)) return undefined;
  const env: Record<string, string> = {};
  for (let at = ENV_HEADER.length; ; ) {
    const nl = text.indexOf('\n', at);
    // The rest of the block, past its last line end: the padding.
    if (nl < 0) return /^#*$/.test(text.slice(at)) ? env : undefined;
    const line = text.slice(at, nl);
    at = nl + 1;
    // A comment (Debian's grub-editenv writes a warning after the header), as GRUB skips it.
    if (line.startsWith('#')) continue;
    if (!PLAIN_LINE.test(line)) return undefined;
    const eq = line.indexOf('=');
    env[line.slice(0, eq)] = line.slice(eq + 1);
  }
}

/**
 * The block `grub-editenv FILE set name=value...` would write over `block`, for a block in the
 * plain form (`parseEnvBlock`) and plain names and values; undefined for anything else, which
 * is then left to grub-editenv. As grub-core/lib/envblk.c does, one variable at a time: a name
 * already there has its first line's value replaced in place, a new one is appended after the
 * last line, and the rest of the block is `#`. A step that no longer fits in the block is
 * undefined too: grub-editenv refuses it ("environment block too small").
 */
export function setEnvBlock(block: Buffer, vars: Record<string, string>): Buffer | undefined {
  if (!parseEnvBlock(block)) return undefined;
  const text = block.toString('latin1');
  // Bytes up to the last line end; after it, the padding, which is written afresh.
  let used = text.lastIndexOf('\n') + 1;
  // Comment and variable lines, each without its line end.
  const lines = text.slice(ENV_HEADER.length, used).split('\n').slice(0, -1);
  for (const [name, value] of Object.entries(vars)) {
    if (!PLAIN_NAME.test(name) || !PLAIN_VALUE.test(value)) return undefined;
    const at = lines.findIndex((l) => l.startsWith(`${name}=`));
    const line = `${name}=${value}`;
    used += at < 0 ? line.length + 1 : line.length - lines[at]!.length;
    if (used > block.length) return undefined;
    if (at < 0) lines.push(line);
    else lines[at] = line;
  }
  const body = ENV_HEADER + lines.map((l) => `${l}\n`).join('');
  return Buffer.from(body.padEnd(block.length, '#'), 'latin1');
}
