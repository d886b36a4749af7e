/**
 * The store's schema, as an append-only list of migrations: entry k brings a store from
 * schema version k to k+1 (PRAGMA user_version). Never edit a shipped entry: devices in the
 * field hold stores at every version, and a new agent must upgrade each of them.
 */

/** Migrations in order; the store's schema version is how many have run. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE transactions (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('install', 'rollback')),
    origin          TEXT NOT NULL CHECK (origin IN ('local', 'server')),
    directive_id    TEXT,
    version         TEXT NOT NULL,
    state           TEXT NOT NULL,
    prev_state      TEXT,
    source_slot     TEXT NOT NULL CHECK (source_slot IN ('A', 'B')),
    target_slot     TEXT NOT NULL CHECK (target_slot IN ('A', 'B')),
    source          TEXT,
    bundle_sha256   TEXT,
    bundle_size     INTEGER,
    manifest        BLOB,
    manifest_sig    BLOB,
    allow_downgrade INTEGER NOT NULL DEFAULT 0,
    payloads_offset INTEGER,
    bytes_read      INTEGER NOT NULL DEFAULT 0,
    bytes_total     INTEGER,
    resume_index    INTEGER,
    resume_data_offset INTEGER,
    durable_offset  INTEGER NOT NULL DEFAULT 0,
    slot_digest     TEXT,
    step            TEXT,
    transitions     INTEGER NOT NULL DEFAULT 0,
    reason          TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    finished_at     TEXT
  );
  -- At most one transaction in flight, whatever process tries to start another.
  CREATE UNIQUE INDEX one_in_flight ON transactions ((1)) WHERE finished_at IS NULL;

  CREATE TABLE events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    at             TEXT NOT NULL,
    transaction_id TEXT REFERENCES transactions (id),
    type           TEXT NOT NULL,
    from_state     TEXT,
    to_state       TEXT,
    slot           TEXT,
    reason         TEXT,
    details        TEXT
  );
  CREATE INDEX events_by_transaction ON events (transaction_id, id);

  CREATE TABLE slots (
    name           TEXT PRIMARY KEY CHECK (name IN ('A', 'B')),
    version        TEXT,
    status         TEXT NOT NULL,
    transaction_id TEXT,
    updated_at     TEXT NOT NULL,
    committed_at   TEXT
  );

  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );

  CREATE TABLE outbox (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    transaction_id TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('state', 'progress')),
    body           TEXT NOT NULL,
    sent           INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    sent_at        TEXT
  );
  CREATE INDEX outbox_unsent ON outbox (sent, seq);
  `,
];
