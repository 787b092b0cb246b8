#!/usr/bin/env bash
# The benchmarks on PostgreSQL (docs/PERFORMANCE.md, "PostgreSQL"): starts a throwaway
# PostgreSQL 15 cluster (tests/postgres/cluster.sh) with fsync, synchronous_commit and
# full_page_writes on (IMGSHARE_PG_DURABLE=1), runs `imgshare-bench throughput` and `list`
# against it, then the same sizes on SQLite for context, with the load average around each, and
# stops and removes the cluster whatever the outcome. Run from anywhere.
#
#   crates/imgshare-bench/pg.sh           release build, the sizes of PERFORMANCE.md
#   crates/imgshare-bench/pg.sh --smoke   debug build, tiny sizes (< 30 s once built): that the
#                                         PostgreSQL path still runs, not what it measures
#
# Sizes can be changed with THROUGHPUT_ARGS and LIST_ARGS (word-split, e.g.
# THROUGHPUT_ARGS="--images 20 --members 20"). Uses $CARGO_TARGET_DIR (default: target/).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

if [ "${1:-}" = --smoke ]; then
  profile=debug
  build=()
  throughput_args=${THROUGHPUT_ARGS:-"--images 4 --members 5 --batch 8 --threads 2"}
  list_args=${LIST_ARGS:-"--images 40 --members 200 --tenants 10 --consumers 100 --base-images 40 --samples 20"}
  sqlite_too=0
else
  profile=release
  build=(--release)
  export IMGSHARE_PG_DURABLE=1
  throughput_args=${THROUGHPUT_ARGS:-"--images 40 --members 50"}
  list_args=${LIST_ARGS:-"--images 5000 --members 50000 --tenants 500 --consumers 5000 --base-images 200 --samples 1000"}
  sqlite_too=1
fi
cargo build --quiet --locked "${build[@]}" -p imgshare-bench --features postgres
bench="${CARGO_TARGET_DIR:-$root/target}/$profile/imgshare-bench"

. "$root/tests/postgres/cluster.sh"
# The throughput benchmark works in schemas of its own; `list` fills the database it is given,
# so it gets one of its own.
pg_as_owner "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -qAt \
  -v ON_ERROR_STOP=1 -c 'CREATE DATABASE imgshare_list' >/dev/null
list_url="postgres://postgres@127.0.0.1:$pg_port/imgshare_list"

load() { echo "load ($1): $(uptime)"; }

# on_both BENCHMARK URL ARGS: BENCHMARK on PostgreSQL at URL, then, unless --smoke, on SQLite
# with the same sizes for context; the machine's load after each.
on_both() {
  local benchmark=$1 url=$2 args=$3
  echo "== $benchmark on PostgreSQL"
  # shellcheck disable=SC2086 # the argument list is meant to split
  "$bench" "$benchmark" --db "$url" $args
  load "after $benchmark on PostgreSQL"
  if [ "$sqlite_too" = 1 ]; then
    echo "== $benchmark on SQLite (the same sizes, for context)"
    # shellcheck disable=SC2086
    "$bench" "$benchmark" $args
    load "after $benchmark on SQLite"
  fi
}

load "before"
on_both throughput "$IMGSHARE_TEST_POSTGRES_URL" "$throughput_args"
on_both list "$list_url" "$list_args"
echo "PostgreSQL benchmarks done"
