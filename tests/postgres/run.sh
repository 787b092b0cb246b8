#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 15 (cluster.sh), runs the store's PostgreSQL tests
# (crates/imgshare-store/tests/postgres.rs) against it, and removes the cluster whatever the
# outcome; also runs clippy over the workspace with the PostgreSQL backend built, which the
# default build leaves out, and the crash test (a writer SIGKILLed at random moments) with its log
# on PostgreSQL (IMGSHARE_CRASH_TRIALS, default 24, as for SQLite). Run from anywhere. Bounded:
# the cluster's start 30 s, each test run 600 s.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

cargo clippy --quiet --locked --workspace --all-targets --features imgshare-store/postgres,imgshare-tests/postgres -- -D warnings
cargo test --quiet --locked -p imgshare-store --features postgres,internals --test postgres --no-run
cargo test --quiet --locked -p imgshare-tests --features postgres --test reliability --no-run

. "$here/cluster.sh"
timeout 600 cargo test --quiet --locked -p imgshare-store --features postgres,internals --test postgres
IMGSHARE_CRASH_POSTGRES_URL=$IMGSHARE_TEST_POSTGRES_URL timeout 600 cargo test --quiet --locked \
  -p imgshare-tests --features postgres --test reliability writer_killed -- --nocapture
echo "PostgreSQL tests passed"
