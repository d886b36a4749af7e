import { DEFAULT_ENV } from '../sim/grubenv.js';
import { cmdlineSlot, type BootTrace } from './trace.js';

/** What slot B holds in a scenario (slot A always boots). */
export type SlotBContent = 'good' | 'panic' | 'no-kernel' | 'no-initrd';

/** One independent qemu boot scenario and everything it must show. */
export interface Scenario {
  /** Short id, used for the work folder and the summary. */
  id: string;
  /** One line saying what is shown. */
  title: string;
  /** Slot B's content. */
  slotB: SlotBContent;
  /** Variables written with grub-editenv into the disk's grubenv before power-on. */
  envEdits: Record<string, string>;
  /** GRUB's choices, boot by boot (`B1` = slot B, attempt 1). */
  choices: string[];
  /** Counter resets expected. */
  resets: number;
  /** Kernel panics expected. */
  panics: number;
  /** Boots where GRUB could not load a kernel, expected. */
  loadFailures: number;
  /** The slot that finally runs userspace. */
  finalSlot: 'A' | 'B';
  /** The whole grubenv expected on the disk after the run. */
  env: Record<string, string>;
}

/** The scenarios (a)–(d), plus a kernel and an initrd that fail to load. */
export const SCENARIOS: readonly Scenario[] = [
  {
    id: 'c-b-panics',
    title: "(c) B's kernel panics: tried MAX_TRIES=3 times, then A; B exhausted",
    slotB: 'panic',
    // What the agent writes when it arms a freshly installed slot B (DESIGN §6 step 3).
    envEdits: { B_OK: '1', B_TRY: '0', ORDER: 'B A' },
    choices: ['B1', 'B2', 'B3', 'A1'],
    resets: 0,
    panics: 3,
    loadFailures: 0,
    finalSlot: 'A',
    env: { ...DEFAULT_ENV, ORDER: 'B A', A_TRY: '1', B_TRY: '3' },
  },
  {
    id: 'e-b-no-kernel',
    title: "(e) B's kernel fails to load: GRUB reboots, 3 tries, then A",
    slotB: 'no-kernel',
    envEdits: { B_OK: '1', B_TRY: '0', ORDER: 'B A' },
    choices: ['B1', 'B2', 'B3', 'A1'],
    resets: 0,
    panics: 0,
    loadFailures: 3,
    finalSlot: 'A',
    env: { ...DEFAULT_ENV, ORDER: 'B A', A_TRY: '1', B_TRY: '3' },
  },
  {
    id: 'f-b-no-initrd',
    title: "(f) B's initrd fails to load: no boot without it, 3 tries, then A",
    slotB: 'no-initrd',
    envEdits: { B_OK: '1', B_TRY: '0', ORDER: 'B A' },
    choices: ['B1', 'B2', 'B3', 'A1'],
    resets: 0,
    panics: 0,
    loadFailures: 3,
    finalSlot: 'A',
    env: { ...DEFAULT_ENV, ORDER: 'B A', A_TRY: '1', B_TRY: '3' },
  },
  {
    id: 'a-default',
    title: '(a) default env boots A',
    slotB: 'good',
    envEdits: {},
    choices: ['A1'],
    resets: 0,
    panics: 0,
    loadFailures: 0,
    finalSlot: 'A',
    env: { ...DEFAULT_ENV, A_TRY: '1' },
  },
  {
    id: 'b-order-b-a',
    title: '(b) ORDER="B A" written with grub-editenv boots B',
    slotB: 'good',
    envEdits: { ORDER: 'B A' },
    choices: ['B1'],
    resets: 0,
    panics: 0,
    loadFailures: 0,
    finalSlot: 'B',
    env: { ...DEFAULT_ENV, ORDER: 'B A', B_TRY: '1' },
  },
  {
    id: 'd-both-exhausted',
    title: '(d) both exhausted: counters reset, first in ORDER boots',
    slotB: 'good',
    envEdits: { A_TRY: '3', B_TRY: '3' },
    choices: ['A1'],
    resets: 1,
    panics: 0,
    loadFailures: 0,
    finalSlot: 'A',
    env: { ...DEFAULT_ENV, A_TRY: '1', B_TRY: '0' },
  },
];

/** Linux `root=` each slot gets from grub.cfg's defaults (IDE disk: sda). */
export const LINUX_ROOT = { A: '/dev/sda2', B: '/dev/sda3' } as const;

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function sortedEnv(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).sort(([a], [b]) => a.localeCompare(b)));
}

/** Everything a finished run got wrong against its scenario; empty when it passed. */
export function checkScenario(s: Scenario, trace: BootTrace, env: Record<string, string>): string[] {
  const problems: string[] = [];
  const want = (what: string, got: unknown, expected: unknown) => {
    if (!same(got, expected)) problems.push(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(got)}`);
  };
  want('GRUB choices', trace.choices, s.choices);
  want('MAX_TRIES reported by GRUB', [...new Set(trace.maxTries)], [3]);
  want('counter resets', trace.resets, s.resets);
  want('kernel panics', trace.panics, s.panics);
  want('kernel load failures', trace.loadFailures.length, s.loadFailures);
  // Only a good /init prints the command line, and it powers off right after: exactly one.
  want('kernel command lines printed', trace.cmdlines.length, 1);
  const cmdline = trace.cmdlines.at(-1) ?? '';
  want('ota.slot on the kernel command line', cmdlineSlot(cmdline), s.finalSlot);
  want(`root= on the kernel command line`, /(?:^|\s)root=(\S+)/.exec(cmdline)?.[1] ?? null, LINUX_ROOT[s.finalSlot]);
  // The initrd says which slot it came from: GRUB loaded kernel and initrd from the slot it named.
  want('slot whose initrd came up', trace.initsUp, [s.finalSlot]);
  const brokenBoots = s.slotB === 'panic' ? s.choices.filter((c) => c.startsWith('B')).map(() => 'B') : [];
  want('slots whose init broke', trace.initsBroken, brokenBoots);
  want('grubenv read back from the disk', sortedEnv(env), sortedEnv(s.env));
  return problems;
}
