#!/usr/bin/env bash
# Starts a real Swift (start.sh), runs the Swift integration tests (tests/tests/swift_tasks.rs)
# against `imgshare serve`, and stops Swift again, whatever the outcome. Run from anywhere; needs
# root (apt install on the first run). Bounded: Swift start 120 s, the tests 600 s.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/env.sh"
cd "$root"

target=${CARGO_TARGET_DIR:-$root/target}
cargo build --quiet --locked -p imgshare-cli
cargo test --quiet --locked -p imgshare-tests --test swift_tasks --no-run

trap '"$here/stop.sh"' EXIT
"$here/start.sh"

export IMGSHARE_TEST_SWIFT_AUTH_URL=$SWIFT_AUTH_URL IMGSHARE_TEST_SWIFT_URL=$SWIFT_STORAGE_URL
export IMGSHARE_BIN=$target/debug/imgshare
timeout 600 cargo test --quiet --locked -p imgshare-tests --test swift_tasks -- --test-threads 2
echo "swift tests passed"
