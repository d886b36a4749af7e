/** The progress bar on a terminal: a message written while it is shown starts on a clean line. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { clearProgressLine, defineCommand, progressBar, runProgram } from '../../shared/cli.js';
import { OtaError } from '../../shared/errors.js';
import { log } from '../../agent/commands/common.js';

/** stderr as a terminal, recording every write in order. */
function terminal(): { out: string[] } {
  const out: string[] = [];
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out.push(String(chunk));
    return true;
  });
  Object.defineProperty(process.stderr, 'isTTY', { value: true, configurable: true });
  return { out };
}

afterEach(() => {
  vi.restoreAllMocks();
  Object.defineProperty(process.stderr, 'isTTY', { value: undefined, configurable: true });
});

const ERASE = '\r\x1b[2K';

describe('progressBar', () => {
  it('is erased before an agent log line, and drawn again at the next update', () => {
    const t = terminal();
    const bar = progressBar('installing x.otab');
    bar.update(10, 100);
    log('download interrupted at byte 10: retry 1 of 1000 in 0.8 s');
    bar.update(100, 100);
    bar.end();
    expect(t.out[0]).toMatch(/^\rinstalling x\.otab \[#+\.+\] {2}10% /);
    expect(t.out.slice(1, 3)).toEqual([ERASE, 'download interrupted at byte 10: retry 1 of 1000 in 0.8 s\n']);
    expect(t.out[3]).toMatch(/^\rinstalling x\.otab \[#{30}\] 100% /);
    expect(t.out.slice(4)).toEqual(['\n']);
    // Ended: nothing left to erase, and a second end writes nothing.
    bar.end();
    clearProgressLine();
    expect(t.out).toHaveLength(5);
  });

  it('is erased before a command\'s error line', async () => {
    const t = terminal();
    const cmd = defineCommand({
      name: 'fail',
      summary: 'draws a bar, then fails',
      usage: 'x fail',
      help: '',
      options: {},
      async run() {
        progressBar('downloading').update(1, 4);
        throw new OtaError('DOWNLOAD_GAVE_UP', 'bundle http://127.0.0.1:1/x.otab: no byte for 300 s');
      },
    });
    expect(await runProgram('x', 'test', [cmd], ['fail'])).toBe(1);
    expect(t.out.slice(1)).toEqual([ERASE, 'x fail: DOWNLOAD_GAVE_UP: bundle http://127.0.0.1:1/x.otab: no byte for 300 s\n']);
  });

  it('draws nothing when stderr is not a terminal', () => {
    const out: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
    const bar = progressBar('x');
    bar.update(1, 2);
    log('line');
    bar.end();
    expect(out).toEqual(['line\n']);
  });
});
