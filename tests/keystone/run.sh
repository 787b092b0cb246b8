#!/usr/bin/env bash
# Starts a real Keystone (tokens living 15 s, so that expiry is seen), runs the Keystone tests
# of imgshare-identity against it, and stops it, whatever the outcome. Run from anywhere.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/tests/keystone
export KS_PORT=${KS_PORT:-5000} KS_TOKEN_EXPIRATION=${KS_TOKEN_EXPIRATION:-15}
started=$(date +%s)
trap '"$here/stop.sh"' EXIT
eval "$("$here/start.sh")"
echo "keystone up in $(($(date +%s) - started)) s at $IMGSHARE_KEYSTONE_URL"
cd "$root"
timeout 600 cargo test --locked -p imgshare-identity --test keystone -- --nocapture
echo "tests/keystone/run.sh: done in $(($(date +%s) - started)) s"
