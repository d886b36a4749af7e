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
  {
    version: 2,
    name: 'products, inventory, rollouts, maintenance windows, rollback outcomes',
    // Releases and channels are keyed by (product, version) and (product, name): the tables are
    // rebuilt (SQLite cannot change a primary key) and every existing release keeps the product
    // its signed manifest named. A channel takes the product of the release it points at.
    sql: `
      CREATE TABLE releases_v2 (
        product TEXT NOT NULL,
        version TEXT NOT NULL,
        sha256 TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        compatible TEXT NOT NULL,
        manifest BLOB NOT NULL,
        signature BLOB NOT NULL,
        signer TEXT NOT NULL,
        created TEXT NOT NULL,
        uploaded TEXT NOT NULL,
        PRIMARY KEY (product, version)
      ) STRICT;
      INSERT INTO releases_v2 (product, version, sha256, size, compatible, manifest, signature, signer, created, uploaded)
        SELECT product, version, sha256, size, compatible, manifest, signature, signer, created, uploaded FROM releases;
      CREATE TABLE channels_v2 (
        product TEXT NOT NULL,
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        updated TEXT NOT NULL,
        PRIMARY KEY (product, name),
        FOREIGN KEY (product, version) REFERENCES releases_v2(product, version)
      ) STRICT;
      INSERT INTO channels_v2 (product, name, version, updated)
        SELECT r.product, c.name, c.version, c.updated FROM channels c JOIN releases r ON r.version = c.version;
      DROP TABLE channels;
      DROP TABLE releases;
      ALTER TABLE releases_v2 RENAME TO releases;
      ALTER TABLE channels_v2 RENAME TO channels;

      -- A device's product: given at enrollment; for devices enrolled before products existed,
      -- the product of the release its channel offered (NULL when that is not one product).
      ALTER TABLE devices ADD COLUMN product TEXT;
      UPDATE devices SET product = (SELECT min(c.product) FROM channels c WHERE c.name = devices.channel)
        WHERE (SELECT count(DISTINCT c.product) FROM channels c WHERE c.name = devices.channel) = 1;
      ALTER TABLE devices ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';   -- JSON, as the device reports
      CREATE TABLE device_tags (
        device TEXT NOT NULL REFERENCES devices(id),
        tag TEXT NOT NULL,
        PRIMARY KEY (device, tag)
      ) STRICT;
      CREATE INDEX device_tags_tag ON device_tags(tag);

      ALTER TABLE rollbacks ADD COLUMN outcome TEXT;          -- success | failure | refused
      ALTER TABLE rollbacks ADD COLUMN outcome_reason TEXT;
      ALTER TABLE rollbacks ADD COLUMN outcome_at TEXT;

      CREATE TABLE rollouts (
        id TEXT PRIMARY KEY,
        product TEXT NOT NULL,
        version TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('staged', 'publish')),
        channel TEXT,                        -- target: devices of this channel (NULL: any)
        tags TEXT NOT NULL,                  -- target: JSON array, a device must carry them all
        attributes TEXT NOT NULL,            -- target: JSON object, reported attributes equal to these
        phases TEXT NOT NULL,                -- JSON array of { "percent": p } or { "count": n }
        success_share REAL NOT NULL,
        soak_seconds INTEGER NOT NULL,
        pause_failures INTEGER,
        pause_failure_share REAL,
        seed INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('running', 'paused', 'completed', 'aborted', 'superseded')),
        phase INTEGER NOT NULL,              -- index of the last open phase
        phase_opened TEXT NOT NULL,
        acknowledged_failures INTEGER NOT NULL DEFAULT 0,
        reason TEXT,
        created_by TEXT NOT NULL,
        created TEXT NOT NULL,
        updated TEXT NOT NULL,
        FOREIGN KEY (product, version) REFERENCES releases(product, version)
      ) STRICT;
      CREATE INDEX rollouts_product ON rollouts(product, state);
      CREATE TABLE rollout_devices (
        rollout TEXT NOT NULL REFERENCES rollouts(id),
        device TEXT NOT NULL REFERENCES devices(id),
        phase INTEGER NOT NULL,
        position INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('waiting', 'offered', 'installing', 'success', 'failure')),
        reason TEXT,
        updated TEXT NOT NULL,
        PRIMARY KEY (rollout, device)
      ) STRICT;
      CREATE INDEX rollout_devices_device ON rollout_devices(device);
      -- Every published channel becomes a one-phase rollout; devices join it at check-in.
      INSERT INTO rollouts (id, product, version, kind, channel, tags, attributes, phases, success_share, soak_seconds, seed, state, phase, phase_opened, created_by, created, updated)
        SELECT 'ro_' || lower(hex(randomblob(8))), product, version, 'publish', name, '[]', '{}', '[{"percent":100}]', 1.0, 0, 0, 'running', 0, updated, 'migration', updated, updated FROM channels;

      CREATE TABLE windows (
        name TEXT PRIMARY KEY,
        tag TEXT NOT NULL,                   -- the group: devices carrying this tag
        days TEXT NOT NULL,                  -- JSON array of mon..sun
        start TEXT NOT NULL,                 -- HH:MM local time
        duration_minutes INTEGER NOT NULL,
        time_zone TEXT NOT NULL,             -- IANA name
        updated TEXT NOT NULL
      ) STRICT;
      CREATE INDEX windows_tag ON windows(tag);
    `,
  },
  {
    version: 3,
    name: 'bundle download counters, change counters',
    // What instances must share (docs/DEPLOYMENT.md): the served-byte counters of
    // GET /v1/bundles/:sha256/served, and a change counter per cached table (windows).
    sql: `
      CREATE TABLE bundle_served (
        sha256 TEXT PRIMARY KEY,
        requests INTEGER NOT NULL DEFAULT 0,
        range_requests INTEGER NOT NULL DEFAULT 0,
        bytes INTEGER NOT NULL DEFAULT 0
      ) STRICT;
      CREATE TABLE changes (
        name TEXT PRIMARY KEY,
        n INTEGER NOT NULL
      ) STRICT;
    `,
  },
];
