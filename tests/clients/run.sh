#!/usr/bin/env bash
# Drives `imgshare serve` with real clients: python-glanceclient (the `glance` CLI) and
# openstacksdk. Creates a virtual environment at .venv-clients (reused when its requirements are
# unchanged), builds the debug binary (already built by `cargo test`), starts the server on a free
# port with a temporary database and a tokens file written here, runs test_clients.py, and stops
# the server. Runs the same locally and in CI: `bash tests/clients/run.sh`.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

venv="$root/.venv-clients"
requirements="$root/tests/clients/requirements.txt"
python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$requirements" "$venv/requirements.installed"; then
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$venv/requirements.installed"
fi

cargo build --quiet --locked -p imgshare-cli
binary="$root/target/debug/imgshare"

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# One server per profile, each on a fresh database: the Rackspace profile (roles
# cloudImages:*) and the Glance profile (roles member/admin).
run_profile() {
  local profile=$1 role=$2 admin_role=$3
  local dir="$work/$profile"
  mkdir -p "$dir"
  local producer consumer stranger admin
  producer=$("$python" -c 'import uuid; print(uuid.uuid4())')
  consumer=$("$python" -c 'import uuid; print(uuid.uuid4())')
  stranger=$("$python" -c 'import uuid; print(uuid.uuid4())')
  admin=$("$python" -c 'import uuid; print(uuid.uuid4())')
  cat >"$dir/tokens.json" <<EOF
{"tokens": {
  "$producer": {"tenant_id": "111111", "user_id": "producer", "roles": ["$role"]},
  "$consumer": {"tenant_id": "222222", "user_id": "consumer", "roles": ["$role"]},
  "$stranger": {"tenant_id": "333333", "user_id": "stranger", "roles": ["$role"]},
  "$admin": {"tenant_id": "999999", "user_id": "admin", "roles": ["$admin_role"]}
}}
EOF
  touch "$dir/server.out"
  "$binary" serve --profile "$profile" --db "$dir/imgshare.db" --tokens "$dir/tokens.json" \
    --listen 127.0.0.1:0 --region DFW >"$dir/server.out" 2>"$dir/server.err" &
  server_pid=$!

  local url=""
  for _ in $(seq 1 100); do
    url=$(sed -n 's/^listening on //p' "$dir/server.out")
    [ -n "$url" ] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
      break
    fi
    sleep 0.1
  done
  if [ -z "$url" ]; then
    echo "imgshare serve --profile $profile did not start:" >&2
    cat "$dir/server.out" "$dir/server.err" >&2
    return 1
  fi
  local image_id
  image_id=$(sed -n 's/^export IMAGE_ID_PRODUCER=//p' "$dir/server.out")

  local status=0
  echo "-- profile $profile"
  env -u OS_AUTH_URL -u OS_TOKEN -u OS_AUTH_TOKEN -u OS_IMAGE_URL -u OS_CLOUD \
    PATH="$venv/bin:$PATH" \
    IMGSHARE_URL="$url" IMGSHARE_IMAGE_ID="$image_id" IMGSHARE_PROFILE="$profile" \
    IMGSHARE_TOKEN_PRODUCER="$producer" IMGSHARE_TOKEN_CONSUMER="$consumer" \
    IMGSHARE_TOKEN_STRANGER="$stranger" IMGSHARE_TOKEN_ADMIN="$admin" \
    "$venv/bin/python" "$root/tests/clients/test_clients.py" || status=$?
  if [ "$status" -ne 0 ]; then
    echo "--- server stderr" >&2
    cat "$dir/server.err" >&2
  fi
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
  return "$status"
}

status=0
run_profile rackspace "cloudImages:admin" "cloudImages:admin" || status=1
run_profile glance member admin || status=1
exit "$status"
