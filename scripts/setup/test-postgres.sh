#!/usr/bin/env bash
# The PostgreSQL pass of the server tests (npm run test:pg): starts the Debian cluster, makes a
# fresh test database, and runs the server and end-to-end tests with OTAAB_TEST_DATABASE_URL,
# so every test server (in-process or an `ota-server` process) keeps its data in PostgreSQL,
# one schema per data directory. Extra arguments replace the default test paths.
# Without PostgreSQL the pass is skipped with a message, unless OTA_REQUIRE_PG=1 (CI): then it fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! url=$(bash scripts/setup/postgres.sh --fresh); then
  if [ "${OTA_REQUIRE_PG:-}" = 1 ]; then
    echo "test:pg: PostgreSQL is required (OTA_REQUIRE_PG=1) but could not be started" >&2
    exit 1
  fi
  echo "test:pg: skipped: PostgreSQL is not available (bash scripts/setup/system-tools.sh postgres)" >&2
  exit 0
fi
case "$url" in
  postgres://*) ;;
  *) echo "test:pg: scripts/setup/postgres.sh printed no postgres:// URL but: $url" >&2; exit 1 ;;
esac
echo "test:pg: server tests on $url"
if [ "$#" -eq 0 ]; then set -- test/server test/e2e; fi
OTAAB_TEST_DATABASE_URL=$url exec npx vitest run "$@"
