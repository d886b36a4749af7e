/**
 * The server's error catalogue: every code the HTTP API answers (as `{ error, message }` with
 * the status below), the codes of `ota-server` itself, and those of the ops client that
 * `ota-release upload|publish` use. docs/SERVER.md documents each one; a test keeps them in step.
 */
import { defineErrors, type ErrorSpec } from '../shared/errors.js';

const fatal = (status: number, hint: string): ErrorSpec => ({ status, kind: 'fatal', hint });
const transient = (status: number, hint: string): ErrorSpec => ({ status, kind: 'transient', hint });

/** Errors the HTTP API answers. */
export const ApiErrors = defineErrors({
  AUTH_REQUIRED: fatal(401, 'Send "Authorization: Bearer TOKEN"; tokens come from `ota-server token create` or enrollment.'),
  AUTH_INVALID: fatal(401, 'The token is unknown or revoked: ask the server admin for a new one.'),
  AUTH_FORBIDDEN: fatal(403, 'The token\'s role may not use this route: see the roles table in docs/SERVER.md.'),
  AUTH_WRONG_DEVICE: fatal(403, 'A device token may act only on its own device id.'),
  REQUEST_INVALID: fatal(400, 'The request does not match the route\'s JSON schema: fix the named field.'),
  REQUEST_MALFORMED: fatal(400, 'The request body is not valid JSON, not valid UTF-8, or nests objects and arrays more than 32 levels deep: send a plain JSON object.'),
  REQUEST_TOO_LARGE: fatal(413, 'The JSON body is larger than the server accepts.'),
  REQUEST_MEDIA_TYPE: fatal(415, 'Wrong Content-Type: JSON routes take application/json, uploads application/octet-stream.'),
  ROUTE_NOT_FOUND: fatal(404, 'No such route: every route lives under /v1; see /v1/openapi.json.'),
  UPLOAD_TOO_LARGE: fatal(413, 'The bundle is larger than the server\'s maxBundleSize: raise it or ship a smaller bundle.'),
  UPLOAD_ABORTED: transient(400, 'The upload ended before the bundle did: retry the upload.'),
  RELEASE_EXISTS: fatal(409, 'A release with this version is already stored: versions are immutable, build a new version.'),
  RELEASE_NOT_FOUND: fatal(404, 'No release has this version: upload it first (`ota-release upload`).'),
  DEVICE_EXISTS: fatal(409, 'A device with this id is enrolled already: an ops token can re-enroll it with "replace": true.'),
  DEVICE_NOT_FOUND: fatal(404, 'No device has this id: check the id or enroll the device.'),
  ROLLBACK_PENDING: fatal(409, 'A rollback request for this device is already waiting for its next check-in.'),
  BUNDLE_NOT_FOUND: fatal(404, 'No stored release has a bundle with this sha256.'),
  RANGE_NOT_SATISFIABLE: fatal(416, 'The Range starts past the end of the bundle: restart the download from 0.'),
  SERVER_INTERNAL: transient(500, 'The server failed unexpectedly: retry; the server log has the detail.'),
});

/** Errors of `ota-server` at start-up and of its admin commands. */
export const ServerErrors = defineErrors({
  SERVER_CONFIG_UNREADABLE: fatal(500, 'The config file cannot be read or is not a JSON object: fix the path or its syntax.'),
  SERVER_CONFIG_UNKNOWN_KEY: fatal(500, 'The config names a key the server does not know: remove it or fix its spelling.'),
  SERVER_CONFIG_INVALID: fatal(500, 'A config value has the wrong type or range: fix the named key, flag or environment variable.'),
  SERVER_DATA_UNUSABLE: fatal(500, 'The data directory cannot be created or written: check the path and its permissions.'),
  SERVER_DB_TOO_NEW: fatal(500, 'The database was written by a newer ota-server: run that version or restore a backup.'),
  TOKEN_NOT_FOUND: fatal(404, 'No token has this id: `ota-server token list` shows the ids.'),
  // setup
  SERVER_DATA_NOT_INITIALISED: fatal(500, 'The data directory was not made by `ota-server init`: check --data, or run `ota-server init --data DIR` once.'),
  SERVER_DATA_NOT_EMPTY: fatal(500, '`ota-server init` was given a directory holding other files: give an empty or new directory.'),
  SERVER_PORT_IN_USE: fatal(500, 'The address and port cannot be bound: another process listens there, or the port needs privileges; choose another --port.'),
  SERVER_RELEASE_KEY_PRIVATE: fatal(500, 'A --release-key file holds a private key: the server takes public keys only (NAME.pub).'),
  SERVER_TLS_UNUSABLE: fatal(500, 'The TLS certificate or key (tlsCert, tlsKey) cannot be read or do not match: fix the paths or the PEM files.'),
  SERVER_BACKUP_FAILED: fatal(500, 'The backup could not be written: check --out (a new directory on a writable file system) and free space.'),
});

/** Errors of the ops client (`ota-release upload|publish`) talking to a server. */
export const ClientErrors = defineErrors({
  CLIENT_UNREACHABLE: transient(502, 'The server cannot be reached: check --server (or OTA_SERVER), the network and that the server runs.'),
  CLIENT_BAD_ANSWER: transient(502, 'The server answered something that is not an otaab answer: check the URL points at ota-server.'),
  CLIENT_FILE_UNREADABLE: fatal(400, 'The bundle file cannot be read: check the path.'),
});
