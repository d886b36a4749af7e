/** Options several ota-server commands share. */

/** --data and --config: which data directory a command acts on. */
export const dataOptions = {
  data: { type: 'string', short: 'd' },
  config: { type: 'string', short: 'c' },
} as const;

/** Help lines for `dataOptions`. */
export const dataHelp = `  --data DIR       data directory (env OTA_SERVER_DATA; default /var/lib/otaab-server)
  --config FILE    JSON config file (env OTA_SERVER_CONFIG); its "data" key is used`;
