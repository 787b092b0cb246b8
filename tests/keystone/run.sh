#!/usr/bin/env bash
# Starts a real Keystone (tokens living 15 s, so that expiry is seen), runs the Keystone tests
# of imgshare-identity against it, and stops it, whatever the outcome. Run from anywhere.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/tests/keystone
# A free port unless KS_PORT is given, so that a Keystone already on 5000 is left alone.
KS_PORT=${KS_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
export KS_PORT KS_TOKEN_EXPIRATION=${KS_TOKEN_EXPIRATION:-15}
started=$(date +%s)
trap '"$here/stop.sh"' EXIT
eval "$("$here/start.sh")"
echo "keystone up in $(($(date +%s) - started)) s at $IMGSHARE_KEYSTONE_URL"
cd "$root"
timeout 600 cargo test --locked -p imgshare-identity --test keystone -- --nocapture
echo "tests/keystone/run.sh: done in $(($(date +%s) - started)) s"
