/**
 * The one fake the agent's tests use: systemd cannot run as PID 1 here, so `tools.systemctl`
 * points at this script. Same CLI as systemctl for what the agent calls (is-active, restart,
 * status); unit states live in files of its directory; every call is logged to `calls`.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Writes the fake into `dir`; returns its path. Set a unit's state with `setUnit`. */
export async function fakeSystemctl(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, 'systemctl');
  await writeFile(
    path,
    `#!/bin/sh
# fake systemctl for tests: unit state in ${dir}/<unit>; <unit>.failing-restarts = restarts
# that leave the unit failed before one brings it up; <unit>.substate and <unit>.nrestarts
# answer show (a unit systemd keeps restarting: activating, auto-restart).
D='${dir}'
cmd=$1; shift
unit=
for a in "$@"; do case "$a" in -*) ;; *) unit=$a ;; esac; done
echo "$cmd $unit" >> "$D/calls"
state() { cat "$D/$unit" 2>/dev/null || echo inactive; }
case "$cmd" in
  is-active) s=$(state); echo "$s"; [ "$s" = active ] ;;
  restart)
    n=$(cat "$D/$unit.failing-restarts" 2>/dev/null || echo 0)
    if [ "$n" -gt 0 ]; then echo $((n - 1)) > "$D/$unit.failing-restarts"; echo failed > "$D/$unit"; else echo active > "$D/$unit"; fi ;;
  status) echo "* $unit - fake unit"; echo "   Active: $(state)"; [ "$(state)" = active ] || exit 3 ;;
  show)
    [ -f "$D/$unit.substate" ] || { echo "fake systemctl: no properties for $unit" >&2; exit 1; }
    echo "SubState=$(cat "$D/$unit.substate")"; echo "NRestarts=$(cat "$D/$unit.nrestarts" 2>/dev/null || echo 0)"; echo "Result=exit-code" ;;
  *) echo "fake systemctl: unknown command $cmd" >&2; exit 1 ;;
esac
`,
  );
  await chmod(path, 0o755);
  return path;
}

/** Sets a unit's state, and how many restarts fail before one brings it up (-1: none does). */
export async function setUnit(dir: string, unit: string, state: string, failingRestarts = 0): Promise<void> {
  await writeFile(join(dir, unit), `${state}\n`);
  await writeFile(join(dir, `${unit}.failing-restarts`), `${failingRestarts < 0 ? 1_000_000 : failingRestarts}\n`);
}

/** Makes `unit` one that systemd keeps restarting: is-active says activating, show auto-restart. */
export async function setAutoRestarting(dir: string, unit: string, restarts: number): Promise<void> {
  await writeFile(join(dir, unit), 'activating\n');
  await writeFile(join(dir, `${unit}.substate`), 'auto-restart\n');
  await writeFile(join(dir, `${unit}.nrestarts`), `${restarts}\n`);
}
