/**
 * The environment the agent runs in: set by its launcher (`/usr/bin/ota-agent`, scripts/package.ts),
 * by its systemd unit (agent/otaab-agent.service, which a test holds to this list) and by the
 * benchmarks that measure it (scripts/bench/agent-run.ts), so that what is measured is what ships.
 *
 * `MALLOC_MMAP_THRESHOLD_=65536`: glibc's malloc gives every block of 64 KiB or more a mapping of
 * its own, unmapped when it is freed. A download's socket delivers 64 KiB chunks and zlib keeps
 * 64 to 256 KiB buffers; from the heap, those blocks left holes that glibc kept after they were
 * freed (17 to 23 MiB of the URL path's 57 MiB, docs/PERFORMANCE.md). Read at process start by
 * glibc (mallopt's M_MMAP_THRESHOLD), so it cannot be set from inside the agent. Setting it also
 * switches off glibc's dynamic threshold, which had raised itself after the first large frees.
 */
export const AGENT_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: '65536' };
