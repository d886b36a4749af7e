/** Every default of the agent configuration, in one place (docs/AGENT.md lists the same). */

/** Where the config is read from when neither --config nor OTA_AGENT_CONFIG says otherwise. */
export const DEFAULT_CONFIG_PATH = '/etc/otaab/agent.json';

/** Defaults applied to keys left out of the config file. */
export const DEFAULTS = Object.freeze({
  boot: Object.freeze({ grubenv: '/boot/grub/grubenv' }),
  cmdlinePath: '/proc/cmdline',
  rebootCommand: Object.freeze(['systemctl', 'reboot']),
  rebootTimeoutSeconds: 600,
  dataDir: '/var/lib/otaab',
  healthChecks: Object.freeze([]),
  healthDeadlineSeconds: 300,
  maxTransitions: 50,
  checkpointBytes: 64 * 1024 * 1024,
  tools: Object.freeze({ systemctl: 'systemctl', grubEditenv: 'grub-editenv' }),
  systemdCheck: Object.freeze({ restarts: 2, settleSeconds: 5 }),
  httpCheck: Object.freeze({ status: 200, timeoutSeconds: 10 }),
  commandCheck: Object.freeze({ timeoutSeconds: 60 }),
  delta: Object.freeze({ enabled: true, maxRequests: 4096, mergeGapBytes: 0 }),
  server: Object.freeze({ pollIntervalSeconds: 3600, stallTimeoutSeconds: 60, downloadRetries: 1000 }),
});
