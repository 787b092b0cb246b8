#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 15 (cluster.sh), runs the store's PostgreSQL tests
# (crates/imgshare-store/tests/postgres.rs) against it, then three `imgshare serve` processes on
# one database of that cluster (servers.sh), and removes the cluster whatever the outcome; also
# runs clippy over the workspace with the PostgreSQL backend built, which the default build
# leaves out. Run from anywhere. Bounded: the cluster's start 30 s, the tests 600 s, the servers'
# run as servers.sh says.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

cargo clippy --quiet --locked --workspace --all-targets --features imgshare-store/postgres -- -D warnings
cargo test --quiet --locked -p imgshare-store --features postgres,internals --test postgres --no-run

. "$here/cluster.sh"
timeout 600 cargo test --quiet --locked -p imgshare-store --features postgres,internals --test postgres
echo "PostgreSQL tests passed"
bash "$here/servers.sh"
