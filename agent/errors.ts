/**
 * The agent's error catalogue. The state machine branches on `kind` only: a `transient`
 * error leaves the transaction where it is, to be resumed later; a `fatal` one ends it.
 * docs/AGENT.md lists every code; test/agent/errors-doc.test.ts keeps the two in step.
 * Every module that raises one of these codes imports this file, so the catalogue is
 * registered whichever entry point (CLI, tests, the daemon's server loop) loads the agent.
 */
import { defineErrors, type ErrorSpec } from '../shared/errors.js';

const fatal = (status: number, hint: string): ErrorSpec => ({ status, kind: 'fatal', hint });
const transient = (status: number, hint: string): ErrorSpec => ({ status, kind: 'transient', hint });

/** Every error the device agent raises (bundle and signature errors come from shared/). */
export const AgentErrors = defineErrors({
  CONFIG_UNREADABLE: fatal(500, 'The agent config file cannot be read or is not JSON: check the path given by --config or OTA_AGENT_CONFIG.'),
  CONFIG_UNKNOWN_KEY: fatal(500, 'The agent config has a key the agent does not know: remove it or fix its spelling.'),
  CONFIG_INVALID: fatal(500, 'An agent config value is missing or of the wrong type or range: fix the key named.'),
  STORE_FAILED: fatal(500, 'The agent state store (SQLite in dataDir) cannot be opened or written: check dataDir, its space and permissions.'),
  STORE_TOO_NEW: fatal(500, 'The state store was written by a newer agent: install that agent version again, or move the store aside.'),
  TRANSACTION_CHANGED: transient(409, 'Another ota-agent process moved the transaction on at the same time: run the command again.'),
  TRANSACTION_IN_PROGRESS: fatal(409, 'A transaction is already in flight: wait for it to end (ota-agent status), or let ota-agent daemon finish it.'),
  NO_TRANSACTION: fatal(409, 'There is no transaction in the state this command needs: see ota-agent status.'),
  BOOTED_SLOT_UNKNOWN: fatal(500, 'The kernel command line has no ota.slot=A or ota.slot=B: install grub/ota-select.cfg and check cmdlinePath.'),
  BOOTENV_FAILED: transient(500, 'grub-editenv failed to read or write the GRUB environment: check boot.grubenv and that the boot partition is mounted read-write.'),
  INCOMPATIBLE_DEVICE: fatal(400, 'The bundle is not built for this device: its compatible list misses the device\'s compatible string.'),
  VERSION_NOT_NEWER: fatal(400, 'The bundle\'s version is not greater than the highest committed one: use --allow-downgrade to install it on purpose.'),
  PAYLOAD_SLOT_MISMATCH: fatal(400, 'The bundle\'s payloads do not fit the slot kind: raw slots take one image; fs slots take an archive and/or modules.'),
  SLOT_TOO_SMALL: fatal(400, 'The payload is larger than the slot: repartition, or build a smaller image.'),
  SOURCE_UNREADABLE: fatal(400, 'The bundle file cannot be opened: check the path (and that the USB stick is still mounted).'),
  DOWNLOAD_FAILED: transient(502, 'The bundle download failed on the network: it is retried; check connectivity and the URL.'),
  DOWNLOAD_REFUSED: fatal(502, 'The server answered the bundle download with an error status: check the URL and the device\'s access.'),
  BUNDLE_CHANGED: fatal(409, 'The bundle at the source is not the one the transaction started with: start a new install.'),
  SLOT_ACTIVE: fatal(500, 'The agent refused to write the slot it is running from: the transaction\'s target became the booted slot.'),
  SLOT_UNSAFE_PATH: fatal(500, 'A path inside the slot leads through a symlink or a non-directory: the slot\'s tree is not what the module expects.'),
  SLOT_WRITE_FAILED: fatal(500, 'Writing the inactive slot failed (I/O error, full, read-only): check the slot device or directory.'),
  SLOT_MOUNT_FAILED: transient(500, 'A slot mount or unmount command failed: check the slot\'s mount/unmount commands in the config.'),
  READBACK_MISMATCH: fatal(500, 'The bytes read back from the slot differ from those written: the storage drops writes; replace it before retrying.'),
  REBOOT_FAILED: transient(500, 'The reboot command failed: check rebootCommand; the transaction resumes at the next start of ota-agent daemon.'),
  REBOOT_TIMEOUT: transient(500, 'The reboot was requested but the system did not go down in time: check rebootCommand.'),
  ROLLBACK_UNAVAILABLE: fatal(409, 'The other slot does not hold a committed release, so there is nothing safe to roll back to.'),
  MARK_REFUSED: fatal(409, 'The slot cannot be marked that way now: see the message and ota-agent status.'),
  DOWNLOAD_STALLED: transient(504, 'No byte of the bundle arrived for server.stallTimeoutSeconds: the download is retried from where it stopped; check the link.'),
  DOWNLOAD_RETRIES_EXHAUSTED: fatal(504, 'The download failed more often than server.downloadRetries allows: the update fails; check the network and the server, then publish or install again.'),
  AGENT_STOPPED: transient(503, 'The agent was asked to stop (SIGTERM): the transaction resumes at the next start of ota-agent daemon.'),
  SERVER_NOT_ENROLLED: fatal(409, 'No complete server connection (URL, device token, server key): run ota-agent enroll, or set server.url, server.token and server.serverKey.'),
  ENROLLMENT_FAILED: fatal(500, 'The enrollment file server.json in dataDir cannot be read or written, or is damaged: check dataDir, then enroll again (ota-agent enroll --replace with an ops token).'),
  SERVER_UNREACHABLE: transient(502, 'The update server cannot be reached: check server.url, the network and that the server runs; the agent tries again later.'),
  SERVER_FAILED: transient(502, 'The update server answered with a server error (5xx or 429): the agent tries again later; the server log has the detail.'),
  SERVER_BAD_ANSWER: transient(502, 'The update server answered something that is not an otaab answer: check that server.url points at ota-server.'),
  SERVER_AUTH_FAILED: fatal(401, 'The server refused the token (unknown, revoked or of the wrong role): use a valid enrollment token, or enroll the device again.'),
  SERVER_REFUSED: fatal(400, 'The server refused the request (HTTP 4xx): the message names the server\'s error code.'),
  ENROLL_DEVICE_EXISTS: fatal(409, 'This device id is enrolled on the server already: re-enroll it with --replace and an ops token, or give the device another device.id.'),
  SERVER_KEY_MISMATCH: fatal(409, 'The server\'s key is not the one configured in server.serverKey: the URL may lead to another server; nothing was stored.'),
  // delta
  DELTA_RANGE_NOT_PARTIAL: fatal(502, 'A range request of a delta install was answered with 200 and the whole bundle: the origin must honour single Range requests (or set delta.enabled false).'),
  DELTA_RANGE_MISMATCH: fatal(502, 'A range request of a delta install was answered with other bytes than asked (another Content-Range, or a longer body): a broken proxy or origin.'),
  DELTA_CHUNK_HASH_MISMATCH: fatal(502, 'A chunk fetched for a delta install does not inflate or hash to its signed sha256: the bundle on the origin is not the one signed.'),
  DELTA_IMAGE_MISMATCH: fatal(500, 'The image a delta install assembled does not hash to the index\'s image sha256; nothing was armed.'),
  DELTA_SLOT_UNREADABLE: fatal(500, 'The running slot cannot be read to take chunks from it: check the slot path; set delta.enabled false to install whole images.'),
});

/** One of the agent's error codes. */
export type AgentErrorCode = keyof typeof AgentErrors;
