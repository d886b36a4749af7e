/**
 * The one command-line framework of ota-release, ota-agent and ota-server: sub-commands with
 * `--help`, option parsing that names unknown options, exit codes (0 ok, 1 operational
 * failure, 2 usage), one-line errors on stderr, and a progress bar on terminals only.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { OtaError, errorMessage, isOtaError } from './errors.js';

/** Exit codes of every command. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** A usage mistake: exit 2 with the message. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** One sub-command: its options, a help text and what it does. */
export interface Command<O extends Options = Options> {
  name: string;
  summary: string;
  usage: string;
  /** Help text after the usage line: options and examples. */
  help: string;
  options: O;
  /** Positional arguments allowed: [min, max]. */
  positionals?: [number, number];
  run(args: ParsedArgs): Promise<number | void>;
}

/** Parsed arguments; `tokens` keeps the order options were given in. */
export interface ParsedArgs {
  values: Record<string, unknown>;
  positionals: string[];
  tokens: { name: string; value: string | undefined }[];
}

/** Declares a command with typed options. */
export function defineCommand<O extends Options>(c: Command<O>): Command {
  return c as unknown as Command;
}

function parse(cmd: Command, argv: string[]): ParsedArgs {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...cmd.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true, tokens: true });
  } catch (err) {
    const msg = errorMessage(err).replace(/\. To specify a positional argument.*$/, '');
    throw new UsageError(`${msg}; see '${cmd.usage.split(' ').slice(0, 2).join(' ')} --help'`);
  }
  const tokens = parsed.tokens.flatMap((t) => (t.kind === 'option' ? [{ name: t.name, value: t.value }] : []));
  return { values: parsed.values as Record<string, unknown>, positionals: parsed.positionals, tokens };
}

/** Runs a multi-command program; returns the exit code. */
export async function runProgram(program: string, description: string, commands: Command[], argv: string[]): Promise<number> {
  const top = (): string =>
    [`Usage: ${program} <command> [options]`, '', description, '', 'Commands:', ...commands.map((c) => `  ${c.name.padEnd(12)} ${c.summary}`), '', `Run '${program} <command> --help' for a command's options.`].join('\n');
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${top()}\n`);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === '--version') {
    process.stdout.write(`${process.env.npm_package_version ?? '0.1.0'}\n`);
    return EXIT.ok;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    process.stderr.write(`${program}: unknown command "${name}"; run '${program} --help' for the list\n`);
    return EXIT.usage;
  }
  try {
    const args = parse(cmd, rest);
    if (args.values.help) {
      process.stdout.write(`Usage: ${cmd.usage}\n\n${cmd.summary}\n\n${cmd.help.trim()}\n`);
      return EXIT.ok;
    }
    const [min, max] = cmd.positionals ?? [0, 0];
    if (args.positionals.length < min || args.positionals.length > max) {
      throw new UsageError(`expected ${min === max ? min : `${min} to ${max}`} argument(s), got ${args.positionals.length}; usage: ${cmd.usage}`);
    }
    const code = await cmd.run(args);
    return code ?? EXIT.ok;
  } catch (err) {
    clearProgressLine();
    if (err instanceof UsageError) {
      process.stderr.write(`${program} ${cmd.name}: ${err.message}\n`);
      return EXIT.usage;
    }
    process.stderr.write(`${program} ${cmd.name}: ${formatError(err)}\n`);
    if (process.env.OTA_DEBUG && err instanceof Error) process.stderr.write(`${err.stack ?? ''}\n`);
    return EXIT.failure;
  }
}

/** One line naming the error code (when there is one) and what went wrong. */
export function formatError(err: unknown): string {
  if (isOtaError(err)) return `${err.code}: ${err.message.replace(/\s*\n\s*/g, ' ')}`;
  return errorMessage(err).replace(/\s*\n\s*/g, ' ');
}

/** Entry point helper for bin scripts: runs and exits with the code. */
export function main(program: string, description: string, commands: Command[]): void {
  runProgram(program, description, commands, process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`${program}: ${formatError(err)}\n`);
      process.exitCode = EXIT.failure;
    },
  );
}

/** A value from repeated options as a list. */
export function list(v: unknown): string[] {
  if (v === undefined) return [];
  return Array.isArray(v) ? (v as string[]) : [v as string];
}

/** A required string option, or a usage error naming it. */
export function required(values: Record<string, unknown>, key: string): string {
  const v = values[key];
  if (typeof v !== 'string' || v === '') throw new UsageError(`option --${key} is required`);
  return v;
}

/** Parses a whole number option or throws a usage error naming it. */
export function intOption(values: Record<string, unknown>, key: string, def: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const v = values[key];
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`option --${key} must be a whole number from ${min} to ${max}, not "${String(v)}"`);
  return n;
}

function human(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  let v = n;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}

/** Formats a byte count for people (1.5 MiB). */
export const formatBytes = human;

/** The bar whose line is on the terminal now, if any: the next message must erase it first. */
let shownBar: { stream: NodeJS.WritableStream; hide(): void } | undefined;

/**
 * Erases a progress bar's line (carriage return, erase line) so the message written next
 * starts on a clean line; the bar draws itself again at its next update. A no-op without one.
 */
export function clearProgressLine(): void {
  shownBar?.hide();
}

/** A progress bar on stderr, drawn only when stderr is a terminal, at most 10 times a second. */
export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): { update(done: number, total: number): void; end(): void } {
  if (!stream.isTTY) return { update() {}, end() {} };
  let last = 0;
  let drawn = false;
  const me = {
    stream,
    hide(): void {
      if (drawn) stream.write('\r\x1b[2K');
      drawn = false;
      if (shownBar === me) shownBar = undefined;
    },
  };
  const started = Date.now();
  const draw = (done: number, total: number): void => {
    const width = 30;
    const frac = total > 0 ? Math.min(1, done / total) : 0;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
    const secs = (Date.now() - started) / 1000;
    const rate = secs > 0 ? `${human(done / secs)}/s` : '';
    stream.write(`\r${label} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${human(done)} / ${human(total)} ${rate}   `);
    drawn = true;
    shownBar = me;
  };
  return {
    update(done, total) {
      const now = Date.now();
      if (now - last < 100 && done < total) return;
      last = now;
      draw(done, total);
    },
    end() {
      // The finished bar stays on its line; an erased one is not drawn again.
      if (drawn) stream.write('\n');
      drawn = false;
      if (shownBar === me) shownBar = undefined;
    },
  };
}

/** Prints JSON to stdout (for --json). */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export { OtaError };
