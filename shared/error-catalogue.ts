/**
 * The error catalogue: every code any part of otaab raises or answers, defined once with its
 * kind, its HTTP status, a one-sentence message and the fix. The codes form the `ErrorCode`
 * union, so `new OtaError('DOWNLAOD_FAILED', …)` fails to compile. docs/ERRORS.md lists each
 * code once; test/docs/errors.test.ts fails when a code is defined but never raised, raised but
 * not documented, or documented but not defined.
 *
 * Commands print the code as the first word of their error line and exit 1; the server answers
 * `{ error: CODE, message }` with the status; the agent's state machine branches on the kind.
 * To add a code: add it at the end of its section here, raise it, and add its row to
 * docs/ERRORS.md.
 */

/** How a caller should treat an error: retry later (`transient`) or give up (`fatal`). */
export type ErrorKind = 'fatal' | 'transient';

/** One catalogue entry. */
export interface ErrorSpec {
  readonly kind: ErrorKind;
  /** The HTTP status when the server answers it (commands exit 1 whatever the code). */
  readonly status: number;
  /** One sentence: what went wrong. */
  readonly message: string;
  /** One sentence: what to do about it. */
  readonly fix: string;
}

const fatal = (status: number, message: string, fix: string): ErrorSpec => ({ kind: 'fatal', status, message, fix });
const transient = (status: number, message: string, fix: string): ErrorSpec => ({ kind: 'transient', status, message, fix });

/** The catalogue by section; sections are for reading and for docs/ERRORS.md's headings. */
export const ERROR_SECTIONS = {
  /** Bundles, manifests, signatures and keys (ota-release, the server on upload, the agent on install). */
  bundle: {
    BUNDLE_EMPTY: fatal(400, 'The file is empty.', 'Rebuild or re-download the bundle.'),
    BUNDLE_NOT_TAR: fatal(400, 'A header block is not a valid tar header: the file is not a bundle, or is corrupt.', 'Check that the file is an .otab bundle; re-download or rebuild it.'),
    BUNDLE_TRUNCATED: fatal(400, 'The archive ends in the middle of an entry or before its end marker.', 'Re-download the bundle.'),
    BUNDLE_TRAILING_DATA: fatal(400, 'Non-zero bytes follow the end-of-archive marker.', 'Use the bundle as ota-release build wrote it; re-download it.'),
    BUNDLE_TOO_LARGE: fatal(400, 'More bytes arrived than the signed manifest allows.', 'Re-download the bundle; if it recurs, the source serves another file than the one signed.'),
    MANIFEST_MISSING: fatal(400, 'The first entry must be manifest.json.', 'Build the bundle with ota-release build.'),
    MANIFEST_TOO_LARGE: fatal(400, 'manifest.json is larger than 1 MiB.', 'Build the bundle with ota-release build; a real manifest is a few KiB.'),
    MANIFEST_INVALID_JSON: fatal(400, 'manifest.json is not valid UTF-8 JSON.', 'Build the bundle with ota-release build.'),
    MANIFEST_DUPLICATE_KEY: fatal(400, 'A JSON object in manifest.json repeats a key.', 'Build the bundle with ota-release build.'),
    MANIFEST_UNKNOWN_FIELD: fatal(400, 'manifest.json has a field the format does not define.', 'Remove the field, or build with the ota-release of the agent\'s version.'),
    MANIFEST_FIELD_TYPE: fatal(400, 'A manifest field has the wrong JSON type.', 'Fix the field named in the message and build again.'),
    MANIFEST_FIELD_MISSING: fatal(400, 'A required manifest field is absent.', 'Add the field named in the message and build again.'),
    MANIFEST_FIELD_VALUE: fatal(400, 'A manifest field has a value outside what the format allows.', 'Fix the field named in the message and build again.'),
    MANIFEST_DUPLICATE_MODULE: fatal(400, 'Two modules in the manifest share a name.', 'Give each module its own name and build again.'),
    SIGNATURE_MISSING: fatal(400, 'The second entry must be manifest.json.sig.', 'Build (and so sign) the bundle with ota-release build.'),
    SIGNATURE_MALFORMED: fatal(400, 'manifest.json.sig is not an OpenPGP signature.', 'Sign again with ota-release build; re-download if the bundle was transferred.'),
    SIGNATURE_UNKNOWN_KEY: fatal(400, 'The manifest was signed by a key that is not trusted here.', 'Add the signer\'s public key to the trusted keys, or sign with a trusted key.'),
    SIGNATURE_BAD: fatal(400, 'The signature does not match manifest.json.', 'Do not install it; rebuild from the original manifest or re-download.'),
    SIGNATURE_KEY_EXPIRED: fatal(400, 'The signing key has expired.', 'Extend it or sign with a current key.'),
    SIGNATURE_KEY_REVOKED: fatal(400, 'The signing key is revoked.', 'Sign with a key that is not revoked and trust that key.'),
    SIGNATURE_WEAK_KEY: fatal(400, 'The signing key is neither Ed25519 nor RSA of 3072 bits or more.', 'Make a key with ota-release keygen (Ed25519) and sign with it.'),
    ENTRY_BAD_NAME: fatal(400, 'An entry name is absolute, contains "..", a NUL byte, or is not payloads/<name>.', 'Build the bundle with ota-release build; do not trust this file.'),
    ENTRY_BAD_TYPE: fatal(400, 'A bundle entry is not a regular file.', 'Build the bundle with ota-release build.'),
    ENTRY_UNDECLARED: fatal(400, 'A payload entry is not declared in the manifest.', 'Build the bundle with ota-release build; do not trust this file.'),
    ENTRY_DUPLICATE: fatal(400, 'A payload entry appears twice.', 'Build the bundle with ota-release build; do not trust this file.'),
    ENTRY_ORDER: fatal(400, 'Payload entries are not in manifest order.', 'Build the bundle with ota-release build.'),
    ENTRY_MISSING: fatal(400, 'A payload the manifest declares is absent.', 'Re-download the bundle, or build it again.'),
    PAYLOAD_SIZE_MISMATCH: fatal(400, 'A payload size differs from its signed size.', 'Re-download the bundle; do not trust this file.'),
    PAYLOAD_HASH_MISMATCH: fatal(400, 'A payload sha256 differs from its signed hash.', 'The payload was altered: re-download the bundle; do not trust this file.'),
    PAYLOAD_CORRUPT: fatal(400, 'A compressed payload or payload tree cannot be decoded.', 'Re-download or rebuild the bundle.'),
    PAYLOAD_UNPACKED_TOO_LARGE: fatal(400, 'A compressed payload inflates past its declared unpackedSize.', 'Rebuild the bundle with ota-release build; do not trust this file.'),
    TREE_BAD_NAME: fatal(400, 'An entry in a module or archive tree has a NUL byte or an empty name.', 'Rename the file in the source tree and build again.'),
    TREE_ESCAPE: fatal(400, 'An entry in a module or archive tree is absolute or climbs out with "..".', 'Build from a tree with relative paths only; do not trust this file.'),
    TREE_LINK_ESCAPE: fatal(400, 'A symlink or hard link in a module or archive tree points outside the tree.', 'Make the link point inside the tree and build again.'),
    TREE_DEVICE_NODE: fatal(400, 'A module tree contains a device node or FIFO.', 'Remove device nodes and FIFOs from the module tree and build again.'),
    TREE_TOO_LARGE: fatal(400, 'A module or archive tree unpacks to more than its declared unpackedSize.', 'Rebuild the bundle with ota-release build; do not trust this file.'),
    KEY_INVALID: fatal(400, 'A key file cannot be read as an OpenPGP key.', 'Give an armored OpenPGP key file (ota-release keygen writes one).'),
    KEY_LOCKED: fatal(400, 'The private key is protected.', 'Set OTA_KEY_PASSPHRASE to its passphrase.'),
    BUNDLE_UNREADABLE: fatal(400, 'The bundle file cannot be opened.', 'Check the path and its permissions.'),
    OUTPUT_UNWRITABLE: fatal(400, 'The output file cannot be written.', 'Check that its directory exists and is writable.'),
    PAYLOAD_SOURCE_UNREADABLE: fatal(400, 'A file or directory given to ota-release build as a payload cannot be read.', 'Check the path after "name=".'),
    KEY_EXISTS: fatal(400, 'A key file of that name exists; keys are never overwritten.', 'Choose another --out or remove the old key.'),
    INDEX_HASH_MISMATCH: fatal(400, 'An index/<name> entry differs from the size or sha256 the manifest signed: the index was altered.', 'Rebuild the bundle with ota-release build; re-download it.'),
    INDEX_MALFORMED: fatal(400, 'A chunk index is not an otaab index (magic, version, chunk sizes or length), or does not inflate.', 'Rebuild the bundle with ota-release build.'),
    INDEX_UNSORTED: fatal(400, 'A chunk index lists a chunk before one at a lower offset.', 'Rebuild the bundle with ota-release build.'),
    INDEX_OVERLAP: fatal(400, 'A chunk index lists chunks whose byte ranges overlap.', 'Rebuild the bundle with ota-release build.'),
    INDEX_GAP: fatal(400, 'A chunk index leaves bytes of the image in no chunk.', 'Rebuild the bundle with ota-release build.'),
    INDEX_CHUNK_TOO_LARGE: fatal(400, 'A chunk index lists an empty chunk or one larger than its maximum chunk size.', 'Rebuild the bundle with ota-release build.'),
    INDEX_PAST_END: fatal(400, 'A chunk index lists a chunk that runs past the end of the image.', 'Rebuild the bundle with ota-release build.'),
    INDEX_CHUNK_MISMATCH: fatal(400, 'A chunk\'s stored bytes do not decode to the bytes its signed hash names: the index does not describe its payload.', 'Rebuild the bundle with ota-release build.'),
    INDEX_STORED_RANGE: fatal(400, 'A chunk\'s stored bytes do not follow the previous chunk\'s, exceed its length\'s bound, or run past the payload.', 'Rebuild the bundle with ota-release build.'),
  },
  /** Check-in answers the agent refuses; it carries on and tries again at the next check-in. */
  protocol: {
    ANSWER_MALFORMED: transient(502, 'The check-in answer is not a signed envelope.', 'Check that server.url points at an ota-server of a matching version.'),
    ANSWER_WRONG_DEVICE: transient(502, 'The answer names another device.', 'Check any proxy between device and server; the agent asks again at the next check-in.'),
    ANSWER_WRONG_NONCE: transient(502, 'The answer does not echo this check-in\'s nonce: a replay or a stale cache.', 'Check any caching proxy between device and server; the agent asks again at the next check-in.'),
    ANSWER_EXPIRED: transient(502, 'The answer has expired.', 'Check the clocks of device and server, or a proxy that delays answers.'),
  },
  /** The device agent (ota-agent). The state machine branches on kind only: transient leaves the transaction where it is, fatal ends it. */
  agent: {
    CONFIG_UNREADABLE: fatal(500, 'The agent config file cannot be read or is not JSON.', 'Check the path given by --config or OTA_AGENT_CONFIG.'),
    CONFIG_UNKNOWN_KEY: fatal(500, 'The agent config has a key the agent does not know.', 'Remove it or fix its spelling.'),
    CONFIG_INVALID: fatal(500, 'An agent config value is missing or of the wrong type or range.', 'Fix the key named.'),
    STORE_FAILED: fatal(500, 'The agent state store (SQLite in dataDir) cannot be opened or written.', 'Check dataDir, its space and permissions.'),
    STORE_TOO_NEW: fatal(500, 'The state store was written by a newer agent.', 'Install that agent version again, or move the store aside.'),
    TRANSACTION_CHANGED: transient(409, 'Another ota-agent process moved the transaction on at the same time.', 'Run the command again.'),
    TRANSACTION_IN_PROGRESS: fatal(409, 'A transaction is already in flight.', 'Wait for it to end (ota-agent status), or let ota-agent daemon finish it.'),
    BOOTED_SLOT_UNKNOWN: fatal(500, 'The kernel command line has no ota.slot=A or ota.slot=B.', 'Install grub/ota-select.cfg and check cmdlinePath.'),
    BOOTENV_FAILED: transient(500, 'The GRUB environment could not be read or written: grub-editenv failed, or grubenv could not be replaced.', 'Check boot.grubenv and that the boot partition is mounted read-write.'),
    INCOMPATIBLE_DEVICE: fatal(400, 'The bundle is not built for this device: its compatible list misses the device\'s compatible string.', 'Install a bundle built for this device.compatible.'),
    VERSION_NOT_NEWER: fatal(400, 'The bundle\'s version is not greater than the highest committed one.', 'Use --allow-downgrade to install it on purpose.'),
    PAYLOAD_SLOT_MISMATCH: fatal(400, 'The bundle\'s payloads do not fit the slot kind: raw slots take one image, fs slots an archive and/or modules.', 'Build the bundle for the device\'s slot kind.'),
    SLOT_TOO_SMALL: fatal(400, 'The payload is larger than the slot.', 'Repartition, or build a smaller image.'),
    SOURCE_UNREADABLE: fatal(400, 'The bundle file cannot be opened.', 'Check the path (and that the USB stick is still mounted).'),
    DOWNLOAD_FAILED: transient(502, 'The bundle download failed on the network; it is retried.', 'Check connectivity and the URL.'),
    DOWNLOAD_REFUSED: fatal(502, 'The server answered the bundle download with an error status.', 'Check the URL and the device\'s access.'),
    BUNDLE_CHANGED: fatal(409, 'The bundle at the source is not the one the transaction started with.', 'Start a new install.'),
    SLOT_ACTIVE: fatal(500, 'The agent refused to write the slot it is running from: the transaction\'s target became the booted slot.', 'See ota-agent status; start a new install.'),
    SLOT_UNSAFE_PATH: fatal(500, 'A path inside the slot leads through a symlink or a non-directory.', 'Make the slot\'s tree match what the module expects.'),
    SLOT_WRITE_FAILED: fatal(500, 'Writing the inactive slot failed (I/O error, full, read-only).', 'Check the slot device or directory.'),
    SLOT_MOUNT_FAILED: transient(500, 'A slot mount or unmount command failed.', 'Check the slot\'s mount/unmount commands in the config.'),
    READBACK_MISMATCH: fatal(500, 'The bytes read back from the slot differ from those written: the storage drops writes.', 'Replace the storage before retrying.'),
    REBOOT_FAILED: transient(500, 'The reboot command failed; the transaction resumes at the next start of ota-agent daemon.', 'Check rebootCommand.'),
    REBOOT_TIMEOUT: transient(500, 'The reboot was requested but the system did not go down in time.', 'Check rebootCommand.'),
    ROLLBACK_UNAVAILABLE: fatal(409, 'The other slot does not hold a committed release.', 'Nothing safe to roll back to: install a release instead.'),
    MARK_REFUSED: fatal(409, 'The slot cannot be marked that way now.', 'See the message and ota-agent status.'),
    DOWNLOAD_STALLED: transient(504, 'No byte of the bundle arrived for server.stallTimeoutSeconds; the download is retried from where it stopped.', 'Check the link.'),
    DOWNLOAD_RETRIES_EXHAUSTED: fatal(504, 'The download failed more often than server.downloadRetries allows, so the update fails.', 'Check the network and the server, then publish or install again.'),
    AGENT_STOPPED: transient(503, 'The agent was asked to stop (SIGTERM).', 'Nothing: the transaction resumes at the next start of ota-agent daemon.'),
    SERVER_NOT_ENROLLED: fatal(409, 'No complete server connection (URL, device token, server key).', 'Run ota-agent enroll, or set server.url, server.token and server.serverKey.'),
    ENROLLMENT_FAILED: fatal(500, 'The enrollment file server.json in dataDir cannot be read or written, or is damaged.', 'Check dataDir, then enroll again (ota-agent enroll --replace with an ops token).'),
    SERVER_UNREACHABLE: transient(502, 'The update server cannot be reached; the agent tries again later.', 'Check server.url, the network and that the server runs.'),
    SERVER_FAILED: transient(502, 'The update server answered with a server error (5xx or 429); the agent tries again later.', 'See the server log for the detail.'),
    SERVER_BAD_ANSWER: transient(502, 'The update server answered something that is not an otaab answer.', 'Check that server.url points at ota-server.'),
    SERVER_AUTH_FAILED: fatal(401, 'The server refused the token (unknown, revoked or of the wrong role).', 'Use a valid enrollment token, or enroll the device again.'),
    SERVER_REFUSED: fatal(400, 'The server refused the request (HTTP 4xx).', 'Read the server\'s error code in the message and fix what it names.'),
    ENROLL_DEVICE_EXISTS: fatal(409, 'This device id is enrolled on the server already.', 'Re-enroll it with --replace and an ops token, or give the device another device.id.'),
    SERVER_KEY_MISMATCH: fatal(409, 'The server\'s key is not the one configured in server.serverKey.', 'Check server.url leads to your server, or configure its key; nothing was stored.'),
    UPDATE_HELD: transient(503, 'The update waits before arming or rebooting: outside the maintenance windows the server sent, or the busy gate said busy.', 'Nothing: it goes on by itself when a window opens or the gate says free (bounded by busyGate.maxWaitSeconds).'),
    DOWNLOAD_GAVE_UP: fatal(504, 'A technician install from a URL got no byte for server.installGiveUpSeconds (or --give-up-after), retries included.', 'Check the URL and the network, then install again.'),
    DELTA_RANGE_NOT_PARTIAL: fatal(502, 'A range request of a delta install was answered with 200 and the whole bundle.', 'Serve the bundle from an origin that honours single Range requests, or set delta.enabled false.'),
    DELTA_RANGE_MISMATCH: fatal(502, 'A range request of a delta install was answered with other bytes than asked (another Content-Range, or a longer body).', 'Fix or bypass the proxy or origin in between; nothing was armed.'),
    DELTA_CHUNK_HASH_MISMATCH: fatal(502, 'A chunk fetched for a delta install does not inflate or hash to its signed sha256.', 'Check that the origin serves the bundle that was signed; nothing was armed.'),
    DELTA_IMAGE_MISMATCH: fatal(500, 'The image a delta install assembled does not hash to the index\'s image sha256.', 'Install the release again (or with delta.enabled false); nothing was armed.'),
    DELTA_SLOT_UNREADABLE: fatal(500, 'The running slot cannot be read to take chunks from it.', 'Check the slot path, or set delta.enabled false to install whole images.'),
  },
  /** Answers of the server's HTTP API, as { error, message } with the status. */
  api: {
    AUTH_REQUIRED: fatal(401, 'The request has no bearer token.', 'Send "Authorization: Bearer TOKEN"; tokens come from `ota-server token create` or enrollment.'),
    AUTH_INVALID: fatal(401, 'The token is unknown or revoked.', 'Ask the server admin for a new one.'),
    AUTH_FORBIDDEN: fatal(403, 'The token\'s role may not use this route.', 'See the roles table in docs/SERVER.md.'),
    AUTH_WRONG_DEVICE: fatal(403, 'A device token may act only on its own device id.', 'Use the device\'s own id, or an ops token.'),
    REQUEST_INVALID: fatal(400, 'The request does not match the route\'s JSON schema.', 'Fix the named field.'),
    REQUEST_MALFORMED: fatal(400, 'The request body is not valid JSON, not valid UTF-8, or nests objects and arrays more than 32 levels deep.', 'Send a plain JSON object.'),
    REQUEST_TOO_LARGE: fatal(413, 'The JSON body is larger than the server accepts.', 'Send a smaller JSON body.'),
    REQUEST_MEDIA_TYPE: fatal(415, 'The request has the wrong Content-Type.', 'JSON routes take application/json, uploads application/octet-stream.'),
    ROUTE_NOT_FOUND: fatal(404, 'No such route.', 'Every route lives under /v1; see /v1/openapi.json.'),
    UPLOAD_TOO_LARGE: fatal(413, 'The bundle is larger than the server\'s maxBundleSize.', 'Raise it or ship a smaller bundle.'),
    UPLOAD_ABORTED: transient(400, 'The upload ended before the bundle did.', 'Retry the upload.'),
    RELEASE_EXISTS: fatal(409, 'A release with this version is already stored, and versions are immutable.', 'Build a new version.'),
    RELEASE_NOT_FOUND: fatal(404, 'No release has this version.', 'Upload it first (`ota-release upload`).'),
    DEVICE_EXISTS: fatal(409, 'A device with this id is enrolled already.', 'An ops token can re-enroll it with "replace": true.'),
    DEVICE_NOT_FOUND: fatal(404, 'No device has this id.', 'Check the id or enroll the device.'),
    ROLLBACK_PENDING: fatal(409, 'A rollback request for this device is already waiting for its next check-in.', 'Wait for the device to check in; see GET /v1/devices/:id.'),
    BUNDLE_NOT_FOUND: fatal(404, 'No stored release has a bundle with this sha256.', 'Check the sha256, or upload the release first.'),
    RANGE_NOT_SATISFIABLE: fatal(416, 'The Range starts past the end of the bundle.', 'Restart the download from 0.'),
    SERVER_INTERNAL: transient(500, 'The server failed unexpectedly.', 'Retry; the server log has the detail.'),
    ROLLOUT_NOT_FOUND: fatal(404, 'No rollout has this id.', 'List the rollouts with ota-release rollout list.'),
    ROLLOUT_STATE: fatal(409, 'The rollout is not in a state that allows this action (e.g. resuming a running rollout, anything on an aborted one).', 'Check the rollout\'s state with ota-release rollout show.'),
    ROLLOUT_INVALID: fatal(400, 'The rollout\'s phases, thresholds or target do not make sense.', 'Fix the field named in the message.'),
    WINDOW_INVALID: fatal(400, 'The maintenance window is not well formed.', 'Give days mon..sun, start HH:MM, durationMinutes 1-1440 and an IANA timeZone.'),
    WINDOW_NOT_FOUND: fatal(404, 'No maintenance window has this name.', 'List the windows with ota-release window list.'),
    METRICS_DISABLED: fatal(404, 'GET /metrics is not served on the API port.', 'Set metricsToken (and scrape with it) or scrape the metricsListen address.'),
    // s3
    STORAGE_UNAVAILABLE: transient(503, 'The object store holding the bundles failed or cannot be reached (storage "s3").', 'Retry; check the object store, the credentials and the server log.'),
  },
  /** ota-server at start-up and its admin commands. */
  server: {
    SERVER_CONFIG_UNREADABLE: fatal(500, 'The config file cannot be read or is not a JSON object.', 'Fix the path or its syntax.'),
    SERVER_CONFIG_UNKNOWN_KEY: fatal(500, 'The config names a key the server does not know.', 'Remove it or fix its spelling.'),
    SERVER_CONFIG_INVALID: fatal(500, 'A config value has the wrong type or range.', 'Fix the named key, flag or environment variable.'),
    SERVER_DATA_UNUSABLE: fatal(500, 'The data directory cannot be created or written.', 'Check the path and its permissions.'),
    SERVER_DB_TOO_NEW: fatal(500, 'The database was written by a newer ota-server.', 'Run that version or restore a backup.'),
    TOKEN_NOT_FOUND: fatal(404, 'No token has this id.', '`ota-server token list` shows the ids.'),
    SERVER_DATA_NOT_INITIALISED: fatal(500, 'The data directory was not made by ota-server init.', 'Check --data, or run ota-server init --data DIR once.'),
    SERVER_DATA_NOT_EMPTY: fatal(500, 'ota-server init was given a directory holding other files.', 'Give an empty or new directory.'),
    SERVER_PORT_IN_USE: fatal(500, 'The address and port cannot be bound: another process listens there, or the port needs privileges.', 'Choose another --port, or stop the other process.'),
    SERVER_RELEASE_KEY_PRIVATE: fatal(500, 'A --release-key file holds a private key; the server takes public keys only.', 'Give the public key (NAME.pub) and keep the private key offline.'),
    SERVER_TLS_UNUSABLE: fatal(500, 'The TLS certificate or key (tlsCert, tlsKey) cannot be read or do not match.', 'Fix the paths or the PEM files.'),
    SERVER_BACKUP_FAILED: fatal(500, 'The backup could not be written.', 'Give --out a new directory on a writable file system with free space.'),
    // s3
    SERVER_STORAGE_UNUSABLE: fatal(500, 'The object store named by the config cannot be used: endpoint unreachable, bucket missing or credentials refused.', 'Check s3Endpoint, s3Bucket, s3Region and the credentials; see docs/STORAGE.md.'),
    // pg
    SERVER_DB_UNAVAILABLE: transient(503, 'The PostgreSQL database (databaseUrl) cannot be reached or did not answer in time.', 'Check databaseUrl, the network and that PostgreSQL runs; the request can be retried.'),
    SERVER_DB_URL_INVALID: fatal(500, 'databaseUrl is not a postgres:// or postgresql:// URL.', 'Give a connection URL such as postgres://otaab@db.example.com/otaab.'),
    SERVER_BACKUP_POSTGRES: fatal(500, 'ota-server backup copies a SQLite data directory; this server keeps its database in PostgreSQL.', 'Back up PostgreSQL with pg_dump or its own tools (docs/DEPLOYMENT.md) and the bundle storage beside it.'),
  },
  /** The ops client of ota-release upload|publish talking to a server. */
  client: {
    CLIENT_UNREACHABLE: transient(502, 'The server cannot be reached.', 'Check --server (or OTA_SERVER), the network and that the server runs.'),
    CLIENT_BAD_ANSWER: transient(502, 'The server answered something that is not an otaab answer.', 'Check the URL points at ota-server.'),
    CLIENT_FILE_UNREADABLE: fatal(400, 'The bundle file cannot be read.', 'Check the path.'),
  },

} as const satisfies Record<string, Record<string, ErrorSpec>>;

type Sections = typeof ERROR_SECTIONS;

/** Every error code. */
export type ErrorCode = { [S in keyof Sections]: keyof Sections[S] }[keyof Sections];

/** The section a code belongs to. */
export type ErrorSection = keyof Sections;

function flatten(): Readonly<Record<ErrorCode, ErrorSpec>> {
  const all: Record<string, ErrorSpec> = {};
  for (const [section, codes] of Object.entries(ERROR_SECTIONS)) {
    for (const [code, spec] of Object.entries(codes)) {
      if (code in all) throw new Error(`error code ${code} is defined twice (again in section ${section})`);
      all[code] = spec;
    }
  }
  return Object.freeze(all) as Record<ErrorCode, ErrorSpec>;
}

/** Every code with its entry. */
export const ERRORS: Readonly<Record<ErrorCode, ErrorSpec>> = flatten();

/** True when `code` is one of the catalogue's codes. */
export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERRORS, code);
}
