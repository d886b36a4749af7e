/** The Debian mirror this machine's apt uses: debootstrap of the package test and the device image. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/** The Debian mirror this machine's apt uses (deb822 or one-line sources). */
export function aptMirror(): string {
  const files = ['/etc/apt/sources.list', ...(existsSync('/etc/apt/sources.list.d') ? readdirSync('/etc/apt/sources.list.d').filter((f) => /\.(list|sources)$/.test(f)).map((f) => `/etc/apt/sources.list.d/${f}`) : [])];
  for (const f of files) {
    const text = existsSync(f) ? readFileSync(f, 'utf8') : '';
    for (const m of text.matchAll(/^(?:URIs:\s*(\S+)|deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s)/gm)) {
      const uri = m[1] ?? m[2]!;
      if (/\/debian\/?$/.test(uri)) return uri;
    }
  }
  return 'http://deb.debian.org/debian';
}
