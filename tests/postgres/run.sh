#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 15 (cluster.sh), runs the store's PostgreSQL tests
# (crates/imgshare-store/tests/postgres.rs) against it, the crash test (a writer SIGKILLed at
# random moments) with its log on PostgreSQL (IMGSHARE_CRASH_TRIALS, default 24, as for SQLite),
# then the workspace tests that take their engine from imgshare_tests::backend on PostgreSQL
# (IMGSHARE_TESTS_BACKEND=postgres: a new database per engine; the property tests with
# IMGSHARE_POSTGRES_PROPTEST_CASES cases, default 16, as each case costs databases), then three
# `imgshare serve` processes on one database of that cluster (servers.sh), three more running
# import tasks on another database (tasks_servers.sh), `imgshare copy` and
# the audit commands between SQLite and PostgreSQL (copy.sh), three `serve --demo` started at
# once (demo.sh), one server while PostgreSQL restarts under it (restart.sh, on a cluster of its
# own), the benchmarks on PostgreSQL at tiny sizes (crates/imgshare-bench/pg.sh --smoke), and
# removes the cluster whatever the outcome; also runs clippy over the workspace with the
# PostgreSQL backend built, which the default build leaves out. Run from anywhere. Bounded: the
# cluster's start 30 s, each test run 600 s (the backend's suites 900 s), the servers' run as
# servers.sh says.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

cargo clippy --quiet --locked --workspace --all-targets --features imgshare-store/postgres,imgshare-tests/postgres -- -D warnings
cargo test --quiet --locked -p imgshare-store --features postgres,internals --test postgres --no-run
cargo test --quiet --locked -p imgshare-tests --features postgres --test reliability --no-run
# The suites that run on either backend (docs/storage.md, "Tests on both backends").
backend_suites=(--test invariants --test rebuild_equivalence --test audit --test seed_000_producer_consumer
  --test seed_001_quickstart --test seed_004_preparing_to_share --test tasks_import_export)
cargo test --quiet --locked -p imgshare-tests --features postgres "${backend_suites[@]}" --no-run
# The benchmark's PostgreSQL path (crates/imgshare-bench/pg.sh): linted and built here, smoked below.
cargo clippy --quiet --locked -p imgshare-bench --all-targets --features postgres -- -D warnings
cargo build --quiet --locked -p imgshare-bench --features postgres

. "$here/cluster.sh"
timeout 600 cargo test --quiet --locked -p imgshare-store --features postgres,internals --test postgres
IMGSHARE_CRASH_POSTGRES_URL=$IMGSHARE_TEST_POSTGRES_URL timeout 600 cargo test --quiet --locked \
  -p imgshare-tests --features postgres --test reliability writer_killed -- --nocapture
IMGSHARE_TESTS_BACKEND=postgres PROPTEST_CASES=${IMGSHARE_POSTGRES_PROPTEST_CASES:-16} \
  timeout 900 cargo test --quiet --locked -p imgshare-tests --features postgres \
  "${backend_suites[@]}" -- --nocapture
echo "PostgreSQL tests passed"
# `throughput` and `list` on PostgreSQL at tiny sizes, in a cluster of their own.
timeout 120 bash "$root/crates/imgshare-bench/pg.sh" --smoke
bash "$here/servers.sh"
bash "$here/tasks_servers.sh"
bash "$here/copy.sh"
bash "$here/demo.sh"
bash "$here/restart.sh"
