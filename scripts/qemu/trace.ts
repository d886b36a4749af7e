/** What a serial console log of one qemu run says happened, boot by boot. */
export interface BootTrace {
  /** Each GRUB choice in order, as `<slot><attempt>` (e.g. `B1`). */
  choices: string[];
  /** MAX_TRIES as GRUB reported it on each choice. */
  maxTries: number[];
  /** How often ota-select.cfg found no slot and reset the counters. */
  resets: number;
  /** Slots whose kernel or initrd GRUB could not load (then it rebooted). */
  loadFailures: string[];
  /** Kernel panics. */
  panics: number;
  /** Slots whose /init reported `up`, in order. */
  initsUp: string[];
  /** Slots whose /init reported being broken, in order. */
  initsBroken: string[];
  /** Kernel command lines printed by a good /init. */
  cmdlines: string[];
}

/** Parses a serial log (ANSI already stripped) into a {@link BootTrace}. */
export function parseTrace(log: string): BootTrace {
  const trace: BootTrace = { choices: [], maxTries: [], resets: 0, loadFailures: [], panics: 0, initsUp: [], initsBroken: [], cmdlines: [] };
  for (const line of log.split('\n')) {
    let m: RegExpExecArray | null;
    if ((m = /ota: slot ([AB]), attempt (\d) of (\d)/.exec(line))) {
      trace.choices.push(`${m[1]}${m[2]}`);
      trace.maxTries.push(Number(m[3]));
    }
    if (line.includes('ota: no slot is OK with tries left')) trace.resets++;
    if ((m = /ota: slot ([AB]) did not load/.exec(line))) trace.loadFailures.push(m[1] ?? '');
    if (line.includes('Kernel panic')) trace.panics++;
    if ((m = /OTA-INIT: slot ([AB]) userspace is up/.exec(line))) trace.initsUp.push(m[1] ?? '');
    if ((m = /OTA-INIT: slot ([AB]) userspace is broken/.exec(line))) trace.initsBroken.push(m[1] ?? '');
    if ((m = /OTA-CMDLINE: (.*)$/.exec(line))) trace.cmdlines.push(m[1]?.trim() ?? '');
  }
  return trace;
}

/** The slot an `ota.slot=` argument names, or null when there is none, several, or garbage. */
export function cmdlineSlot(cmdline: string): 'A' | 'B' | null {
  const args = cmdline.split(/\s+/).filter((a) => a.startsWith('ota.slot='));
  if (args.length !== 1) return null;
  const value = args[0]?.slice('ota.slot='.length);
  return value === 'A' || value === 'B' ? value : null;
}
