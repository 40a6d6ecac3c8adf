#!/usr/bin/env bash
# Ingest benchmark (benches/ingest.rs): posts 100,000 generated Vietnamese articles of
# about 3 KB through the batch API (POST /api/v1/articles, 500 per request, 2 in flight)
# of the real `bantin serve` binary, once on SQLite and once on PostgreSQL 15.
#
# Target: at least 5,000 articles/s into SQLite on a 2-core machine, with the bantin
# server's peak memory (VmHWM) under 300 MB; the PostgreSQL figure is reported too.
#
# BENCH_ARTICLES, BENCH_BATCH and BENCH_CONCURRENCY are passed through to the bench.
# PostgreSQL comes from .ci/postgres.sh (a throwaway cluster; installs postgresql-15
# with apt when it is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

log_dir=$(mktemp -d /tmp/bantin-ingest-bench.XXXXXX)
trap 'rm -rf "$log_dir"' EXIT

echo "== building the bench (release profile)" >&2
cargo bench --bench ingest --no-run

echo "== SQLite" >&2
env -u BENCH_DATABASE_URL cargo bench --bench ingest | tee "$log_dir/sqlite.txt"

echo "== PostgreSQL" >&2
# shellcheck source=../.ci/postgres.sh
source .ci/postgres.sh
start_postgres
# start_postgres set its own EXIT trap (stop the cluster); keep both.
trap 'stop_postgres; rm -rf "$log_dir"' EXIT
BENCH_DATABASE_URL="$POSTGRES_URL" cargo bench --bench ingest | tee "$log_dir/postgres.txt"

echo
echo "== results"
grep -m 1 '^backend ' "$log_dir/sqlite.txt"
grep -h -E '^(sqlite|postgres) ' "$log_dir/sqlite.txt" "$log_dir/postgres.txt"
grep -h '^ingest ' "$log_dir/sqlite.txt" "$log_dir/postgres.txt"
