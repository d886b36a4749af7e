// Parsing grub-emu's console: the pure half of scripts/sim/grub-emu.ts.
import { describe, expect, it } from 'vitest';
import { parseSelection, stripAnsi } from '../../scripts/sim/grub-emu.js';
import { parseEnvList } from '../../scripts/sim/grubenv.js';

describe('grub-emu output parsing', () => {
  it('strips colours, cursor moves and carriage returns', () => {
    const raw = '\x1b[37m\x1b[40mWelcome to GRUB!\r\n\r\x1b[3;42H      [ grubenv ]\x1b[3;1Hota: slot A\r\n';
    expect(stripAnsi(raw)).toBe('Welcome to GRUB!\n      [ grubenv ]ota: slot A\n');
  });

  it('reads the decision line wherever GRUB left the cursor', () => {
    expect(parseSelection('noise]OTA_SIM_RESULT slot=B attempt=3 reset=0 saved=1\n')).toEqual({ slot: 'B', attempt: 3, reset: false, saved: true });
    expect(parseSelection('OTA_SIM_RESULT slot=A attempt=1 reset=1 saved=0')).toEqual({ slot: 'A', attempt: 1, reset: true, saved: false });
  });

  it('rejects a missing or impossible decision', () => {
    expect(parseSelection('error: file not found')).toBeNull();
    expect(parseSelection('OTA_SIM_RESULT slot= attempt= reset= saved=')).toBeNull();
    expect(parseSelection('OTA_SIM_RESULT slot=C attempt=1 reset=0 saved=1')).toBeNull();
    expect(parseSelection('OTA_SIM_RESULT slot=A attempt=6 reset=0 saved=1')).toBeNull();
  });

  it('parses grub-editenv list output, keeping = inside values', () => {
    expect(parseEnvList('ORDER=B A\nnote=a=b\n\ngarbage line\n')).toEqual({ ORDER: 'B A', note: 'a=b' });
  });
});
