/**
 * The schema, as an append-only list of migrations. A migration is never edited once released:
 * a change is a new entry, so every data directory upgrades by the same steps.
 */

/** One schema step. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Every migration, in order. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'releases, channels, tokens, devices, reports, failures, rollbacks',
    sql: `
      CREATE TABLE releases (
        version TEXT PRIMARY KEY,
        sha256 TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        product TEXT NOT NULL,
        compatible TEXT NOT NULL,            -- JSON array of device types
        manifest BLOB NOT NULL,              -- manifest.json bytes exactly as signed
        signature BLOB NOT NULL,             -- manifest.json.sig bytes
        signer TEXT NOT NULL,                -- fingerprint of the release key
        created TEXT NOT NULL,               -- the manifest's "created"
        uploaded TEXT NOT NULL
      ) STRICT;
      CREATE TABLE channels (
        name TEXT PRIMARY KEY,
        version TEXT NOT NULL REFERENCES releases(version),
        updated TEXT NOT NULL
      ) STRICT;
      CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        compatible TEXT NOT NULL,
        channel TEXT NOT NULL,
        enrolled TEXT NOT NULL,
        last_seen TEXT,
        slot TEXT,
        version TEXT,                        -- highest committed release, as last reported
        state TEXT,
        tx_id TEXT,
        tx_version TEXT,
        tx_state TEXT,
        outcome TEXT,                        -- last final outcome: success | failure
        outcome_reason TEXT,
        outcome_version TEXT,
        outcome_at TEXT
      ) STRICT;
      CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,           -- sha256 of the token; the token itself is never stored
        role TEXT NOT NULL CHECK (role IN ('ops', 'technician', 'enroll', 'device')),
        name TEXT NOT NULL,
        device TEXT REFERENCES devices(id),
        created TEXT NOT NULL,
        revoked TEXT
      ) STRICT;
      CREATE INDEX tokens_device ON tokens(device);
      CREATE TABLE reports (
        seq INTEGER PRIMARY KEY,
        device TEXT NOT NULL REFERENCES devices(id),
        id TEXT NOT NULL,
        tx_id TEXT NOT NULL,
        version TEXT NOT NULL,
        state TEXT NOT NULL,
        outcome TEXT,
        reason TEXT,
        progress_bytes INTEGER,
        progress_total INTEGER,
        details TEXT,                        -- JSON
        at TEXT NOT NULL,
        received TEXT NOT NULL,
        UNIQUE (device, id)
      ) STRICT;
      CREATE TABLE failures (
        device TEXT NOT NULL REFERENCES devices(id),
        version TEXT NOT NULL,
        reason TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (device, version)
      ) STRICT;
      CREATE TABLE rollbacks (
        id TEXT PRIMARY KEY,
        device TEXT NOT NULL REFERENCES devices(id),
        requested_by TEXT NOT NULL,
        note TEXT,
        requested TEXT NOT NULL,
        delivered TEXT
      ) STRICT;
      CREATE INDEX rollbacks_pending ON rollbacks(device) WHERE delivered IS NULL;
    `,
  },
];
