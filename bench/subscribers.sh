#!/usr/bin/env bash
# Subscriber benchmarks (benches/subscribers.rs): imports a generated CSV of 1,000,000
# subscribers (Vietnamese names, varied domains, a few duplicates and bad rows) through
# Audience::import_csv into a fresh database, then times a mix of admin searches
# (store.search_subscribers) on it; once on SQLite and once on PostgreSQL 15.
#
# Targets: import into SQLite at least 20,000 rows/s with peak memory (VmHWM) under
# 200 MB; search p95 under 50 ms at 1,000,000 subscribers on both backends.
#
# BENCH_SUBSCRIBERS and BENCH_SEARCH_ROUNDS are passed through to the bench.
# PostgreSQL comes from .ci/postgres.sh (a throwaway cluster; installs postgresql-15
# with apt when it is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

log_dir=$(mktemp -d /tmp/bantin-subscribers-bench.XXXXXX)
trap 'rm -rf "$log_dir"' EXIT

echo "== building the bench (release profile)" >&2
cargo bench --bench subscribers --no-run

echo "== SQLite" >&2
env -u BENCH_DATABASE_URL -u BENCH_SKIP cargo bench --bench subscribers | tee "$log_dir/sqlite.txt"

echo "== PostgreSQL" >&2
# shellcheck source=../.ci/postgres.sh
source .ci/postgres.sh
start_postgres
# start_postgres set its own EXIT trap (stop the cluster); keep both.
trap 'stop_postgres; rm -rf "$log_dir"' EXIT
BENCH_DATABASE_URL="$POSTGRES_URL" env -u BENCH_SKIP cargo bench --bench subscribers | tee "$log_dir/postgres.txt"

echo
echo "== results"
grep -h -E '^(import|search) ' "$log_dir/sqlite.txt" "$log_dir/postgres.txt"
