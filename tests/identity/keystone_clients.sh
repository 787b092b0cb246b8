#!/usr/bin/env bash
# python-glanceclient and openstacksdk against `imgshare serve --profile glance --identity
# keystone`, with normal Keystone authentication: a real Keystone (tests/keystone/start.sh) whose
# catalog holds an `image` endpoint pointing at imgshare, created through Keystone's API
# (tests/keystone/provision.py). No admin token, no endpoint override. Then revocation (after the
# short cache time given here) and Keystone stopped: 401, then 503.
# Usage: bash tests/identity/keystone_clients.sh (needs .venv-clients: tests/identity/run.sh makes it)
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/lib.sh
source tests/lib.sh
venv="$root/.venv-clients"
ensure_venv "$venv" "$root/tests/clients/requirements.txt" python
build_imgshare

KS_PORT=$(free_port)
# One Keystone worker: concurrent password authentications on SQLite would meet "database is locked".
KS_WORKERS=1
export KS_PORT KS_WORKERS
work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    stop "$server_pid"
  fi
  tests/keystone/stop.sh
  rm -rf "$work"
}
trap cleanup EXIT
eval "$(tests/keystone/start.sh)"

port=$(free_port)
image_url="http://127.0.0.1:$port"
cat >"$work/spec.json" <<JSON
{"region": "DFW", "image_url": "$image_url",
 "service_user": {"name": "imgshare", "password": "imgshare-service-pw"},
 "users": [{"name": "producer", "password": "producer-pw", "project": "producer", "role": "member"},
           {"name": "consumer", "password": "consumer-pw", "project": "consumer", "role": "member"}]}
JSON
python3 tests/keystone/provision.py "$IMGSHARE_KEYSTONE_URL" "$IMGSHARE_KEYSTONE_ADMIN_PASSWORD" \
  <"$work/spec.json" >"$work/ids.json"
printf 'user = "imgshare"\npassword = "imgshare-service-pw"\n' >"$work/service.toml"

# A cache of 2 s lets the test see a revoked token refused and Keystone's absence answered 503.
server_listen="127.0.0.1:$port" start_server "$work" --profile glance --db "$work/imgshare.db" \
  --region DFW --identity keystone --keystone-url "$IMGSHARE_KEYSTONE_URL" \
  --keystone-service-credentials "$work/service.toml" --keystone-cache-seconds 2

status=0
env -u OS_CLOUD -u OS_TOKEN -u OS_AUTH_TOKEN -u OS_IMAGE_URL -u OS_ENDPOINT \
  PATH="$venv/bin:$PATH" IMGSHARE_URL="$image_url" IMGSHARE_IDS="$work/ids.json" \
  IMGSHARE_KEYSTONE_STOP="$root/tests/keystone/stop.sh" \
  "$venv/bin/python" tests/identity/test_keystone_clients.py || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- server stderr" >&2
  cat "$work/server.err" >&2
fi
exit "$status"
