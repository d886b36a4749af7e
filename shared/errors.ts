/**
 * One error type for the whole project: every failure a user can meet carries a stable
 * `code` from a catalogue, a one-line message naming what was wrong, and the original cause.
 * Each component (shared, agent, server) declares its own catalogue with `defineErrors`;
 * docs/ERRORS.md documents every code and a test keeps the two in step.
 */

/** How a caller should treat an error: retry later (`transient`) or give up (`fatal`). */
export type ErrorKind = 'fatal' | 'transient';

/** One catalogue entry: HTTP status when served, kind, and a sentence on what to do. */
export interface ErrorSpec {
  readonly status: number;
  readonly kind: ErrorKind;
  readonly hint: string;
}

const registry = new Map<string, ErrorSpec>();

/** Registers a component's catalogue and returns it, typed, for `OtaError` codes. */
export function defineErrors<const T extends Record<string, ErrorSpec>>(catalogue: T): T {
  for (const [code, spec] of Object.entries(catalogue)) {
    if (registry.has(code)) throw new Error(`error code ${code} is defined twice`);
    registry.set(code, spec);
  }
  return catalogue;
}

/** Every registered code with its spec (for docs checks and the server's error handler). */
export function allErrorCodes(): ReadonlyMap<string, ErrorSpec> {
  return registry;
}

/** A failure with a stable code; `message` names the operation and the thing it acted on. */
export class OtaError extends Error {
  override readonly name = 'OtaError';
  readonly code: string;
  readonly status: number;
  readonly kind: ErrorKind;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    const spec = registry.get(code);
    if (!spec) throw new Error(`unknown error code ${code} (message: ${message})`);
    this.code = code;
    this.status = spec.status;
    this.kind = spec.kind;
  }

  /** The catalogue's advice for this code. */
  get hint(): string {
    return registry.get(this.code)?.hint ?? '';
  }
}

/** True when `err` is an OtaError, optionally of the given code. */
export function isOtaError(err: unknown, code?: string): err is OtaError {
  return err instanceof OtaError && (code === undefined || err.code === code);
}

/** The error's message whatever was thrown. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const bad = (hint: string): ErrorSpec => ({ status: 400, kind: 'fatal', hint });

/** Errors of the bundle format, the manifest, signatures and payload trees (DESIGN §3–4). */
export const BundleErrors = defineErrors({
  BUNDLE_EMPTY: bad('The file is empty: rebuild or re-download the bundle.'),
  BUNDLE_NOT_TAR: bad('A header block is not a valid tar header: the file is not a bundle or is corrupt.'),
  BUNDLE_TRUNCATED: bad('The archive ends in the middle of an entry or before its end marker: re-download it.'),
  BUNDLE_TRAILING_DATA: bad('Non-zero bytes follow the end-of-archive marker: the file was altered.'),
  BUNDLE_TOO_LARGE: bad('More bytes arrived than the signed manifest allows.'),
  MANIFEST_MISSING: bad('The first entry must be manifest.json.'),
  MANIFEST_TOO_LARGE: bad('manifest.json is larger than 1 MiB.'),
  MANIFEST_INVALID_JSON: bad('manifest.json is not valid UTF-8 JSON.'),
  MANIFEST_DUPLICATE_KEY: bad('A JSON object in manifest.json repeats a key.'),
  MANIFEST_UNKNOWN_FIELD: bad('manifest.json has a field the format does not define.'),
  MANIFEST_FIELD_TYPE: bad('A manifest field has the wrong JSON type.'),
  MANIFEST_FIELD_MISSING: bad('A required manifest field is absent.'),
  MANIFEST_FIELD_VALUE: bad('A manifest field has a value outside what the format allows.'),
  MANIFEST_DUPLICATE_MODULE: bad('Two modules in the manifest share a name.'),
  SIGNATURE_MISSING: bad('The second entry must be manifest.json.sig.'),
  SIGNATURE_MALFORMED: bad('manifest.json.sig is not an OpenPGP signature.'),
  SIGNATURE_UNKNOWN_KEY: bad('The manifest was signed by a key that is not trusted here: add its public key to the keyring.'),
  SIGNATURE_BAD: bad('The signature does not match manifest.json: the manifest was altered.'),
  SIGNATURE_KEY_EXPIRED: bad('The signing key has expired: extend it or sign with a current key.'),
  SIGNATURE_KEY_REVOKED: bad('The signing key is revoked.'),
  SIGNATURE_WEAK_KEY: bad('The signing key is neither Ed25519 nor RSA of 3072 bits or more.'),
  ENTRY_BAD_NAME: bad('An entry name is absolute, contains "..", a NUL byte, or is not payloads/<name>.'),
  ENTRY_BAD_TYPE: bad('A bundle entry is not a regular file.'),
  ENTRY_UNDECLARED: bad('A payload entry is not declared in the manifest.'),
  ENTRY_DUPLICATE: bad('A payload entry appears twice.'),
  ENTRY_ORDER: bad('Payload entries are not in manifest order.'),
  ENTRY_MISSING: bad('A payload the manifest declares is absent.'),
  PAYLOAD_SIZE_MISMATCH: bad('A payload size differs from its signed size.'),
  PAYLOAD_HASH_MISMATCH: bad('A payload sha256 differs from its signed hash: the payload was altered.'),
  PAYLOAD_CORRUPT: bad('A compressed payload or payload tree cannot be decoded.'),
  PAYLOAD_UNPACKED_TOO_LARGE: bad('A compressed payload inflates past its declared unpackedSize.'),
  TREE_BAD_NAME: bad('An entry in a module or archive tree has a NUL byte or an empty name.'),
  TREE_ESCAPE: bad('An entry in a module or archive tree is absolute or climbs out with "..".'),
  TREE_LINK_ESCAPE: bad('A symlink or hard link in a module or archive tree points outside the tree.'),
  TREE_DEVICE_NODE: bad('A module tree contains a device node or FIFO.'),
  TREE_TOO_LARGE: bad('A module or archive tree unpacks to more than its declared unpackedSize.'),
  KEY_INVALID: bad('A key file cannot be read as an OpenPGP key.'),
  KEY_LOCKED: bad('The private key is protected: set OTA_KEY_PASSPHRASE to its passphrase.'),
  // delta
  INDEX_HASH_MISMATCH: bad('An index/<name> entry differs from the size or sha256 the manifest signed: the index was altered.'),
  INDEX_MALFORMED: bad('A chunk index is not an otaab index (magic, version, chunk sizes or length), or does not inflate.'),
  INDEX_UNSORTED: bad('A chunk index lists a chunk before one at a lower offset.'),
  INDEX_OVERLAP: bad('A chunk index lists chunks whose byte ranges overlap.'),
  INDEX_GAP: bad('A chunk index leaves bytes of the image in no chunk.'),
  INDEX_CHUNK_TOO_LARGE: bad('A chunk index lists an empty chunk or one larger than its maximum chunk size.'),
  INDEX_PAST_END: bad('A chunk index lists a chunk that runs past the end of the image.'),
  INDEX_CHUNK_MISMATCH: bad("A chunk's stored bytes do not decode to the bytes its signed hash names: the index does not describe its payload."),
  INDEX_STORED_RANGE: bad("A chunk's stored bytes do not follow the previous chunk's, exceed its length's bound, or run past the payload."),
});
