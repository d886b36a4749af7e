/** Semantic Versioning 2.0 parsing and precedence, for release and module versions. */

const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

/** True when `v` is a semantic version such as `2026.11.2` or `1.0.0-rc.1`. */
export function isVersion(v: string): boolean {
  return v.length <= 128 && SEMVER.test(v);
}

/** Compares two semantic versions by precedence: negative, zero or positive. Build metadata is ignored. */
export function compareVersions(a: string, b: string): number {
  const ma = SEMVER.exec(a);
  const mb = SEMVER.exec(b);
  if (!ma || !mb) throw new TypeError(`not a semantic version: ${!ma ? a : b}`);
  for (let k = 1; k <= 3; k++) {
    const d = BigInt(ma[k]!) - BigInt(mb[k]!);
    if (d !== 0n) return d < 0n ? -1 : 1;
  }
  const pa = ma[4];
  const pb = mb[4];
  if (pa === undefined || pb === undefined) return pa === pb ? 0 : pa === undefined ? 1 : -1;
  const xa = pa.split('.');
  const xb = pb.split('.');
  for (let k = 0; k < Math.max(xa.length, xb.length); k++) {
    const x = xa[k];
    const y = xb[k];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const nx = /^\d+$/.test(x);
    const ny = /^\d+$/.test(y);
    if (nx && ny) {
      const d = BigInt(x) - BigInt(y);
      if (d !== 0n) return d < 0n ? -1 : 1;
    } else if (nx !== ny) {
      return nx ? -1 : 1;
    } else if (x !== y) {
      return x < y ? -1 : 1;
    }
  }
  return 0;
}
