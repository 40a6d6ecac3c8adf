#!/usr/bin/env bash
# Sources benchmark (benches/sources.rs): 1,000 upstream RSS feeds of 20 items each,
# served locally by a child process, polled by bantin's source poller into SQLite.
# Prints wall time and the poller's CPU time for the first full poll (20,000 new
# articles through the ingest path) and for a second poll where every feed answers 304.
#
# BENCH_FEEDS and BENCH_ITEMS are passed through to the bench.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== building the bench (release profile)" >&2
cargo bench --bench sources --no-run
cargo bench --bench sources
