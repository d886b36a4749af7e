/**
 * Preload (`node --import ./dist/scripts/rss-probe.js ...`) that writes the process's peak
 * resident set size (and its performance marks) to the file named by OTA_RSS_PROBE_OUT when it
 * exits. Used by the memory
 * checks and benchmarks to measure a real CLI run without changing the CLI.
 */
import { readFileSync, writeFileSync } from 'node:fs';

const out = process.env.OTA_RSS_PROBE_OUT;
if (out) {
  process.on('exit', () => {
    const status = readFileSync('/proc/self/status', 'utf8');
    const kib = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
    // Performance marks the process made (e.g. its first payload byte), ms after it started.
    const marks = Object.fromEntries(performance.getEntriesByType('mark').map((m) => [m.name, m.startTime]));
    writeFileSync(out, JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS, vmHwmKiB: kib('VmHWM'), rssAnonKiB: kib('RssAnon'), marks }));
  });
}
