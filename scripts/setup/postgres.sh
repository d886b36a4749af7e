#!/usr/bin/env bash
# Starts the Debian PostgreSQL cluster (installed by system-tools.sh postgres) and makes the
# role and database the PostgreSQL test pass, test:scale and the bench use. Idempotent.
# Prints the connection URL to use as OTAAB_TEST_DATABASE_URL. With --fresh the database is
# dropped and made again first (the test pass leaves one schema per data directory behind).
set -euo pipefail
# Only the URL goes to standard output: callers take it with $(...). pg_ctlcluster prints
# notices there ("Removed stale pid file.", systemd hints), so everything else goes to stderr.
exec 3>&1 1>&2
fresh=0
[ "${1:-}" = --fresh ] && fresh=1
ver=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)
if [ -z "$ver" ]; then
  echo "postgres.sh: PostgreSQL is not installed (bash scripts/setup/system-tools.sh postgres)" >&2
  exit 1
fi
if ! pg_lsclusters -h | awk -v v="$ver" '$1 == v && $2 == "main"' | grep -q .; then
  pg_createcluster "$ver" main >/dev/null
fi
if ! pg_lsclusters -h | awk -v v="$ver" '$1 == v && $2 == "main" && $4 == "online"' | grep -q .; then
  # The server must not hold the URL's pipe open (3>&-). Exit status 2 is "Cluster is already
  # running" (started meanwhile, by the package's postinst say); a stale pid file (a machine
  # image saved with the server up) is removed by pg_ctlcluster, with a notice.
  pg_ctlcluster "$ver" main start 3>&- || [ $? = 2 ]
fi
port=$(pg_lsclusters -h | awk -v v="$ver" '$1 == v && $2 == "main" { print $3 }')
if ! [[ "$port" =~ ^[0-9]+$ ]]; then
  echo "postgres.sh: no port for cluster $ver/main in pg_lsclusters:" >&2
  pg_lsclusters >&2
  exit 1
fi
psql_() { su postgres -c "psql -p $port -v ON_ERROR_STOP=1 -qtAc \"$1\""; }
for _ in $(seq 1 30); do psql_ 'SELECT 1' >/dev/null 2>&1 && break; sleep 1; done
if [ "$(psql_ "SELECT 1 FROM pg_roles WHERE rolname = 'otaab'")" != 1 ]; then
  psql_ "CREATE ROLE otaab LOGIN PASSWORD 'otaab' CREATEDB"
fi
if [ "$fresh" = 1 ]; then
  psql_ "DROP DATABASE IF EXISTS otaab_test WITH (FORCE)" >/dev/null
fi
if [ "$(psql_ "SELECT 1 FROM pg_database WHERE datname = 'otaab_test'")" != 1 ]; then
  psql_ "CREATE DATABASE otaab_test OWNER otaab TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
fi
echo "postgres://otaab:otaab@127.0.0.1:$port/otaab_test" >&3
