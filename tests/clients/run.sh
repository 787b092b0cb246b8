#!/usr/bin/env bash
# Drives `imgshare serve` with real clients: python-glanceclient (the `glance` CLI) and
# openstacksdk. Creates a virtual environment at .venv-clients (reused when its requirements are
# unchanged), builds the debug binary (already built by `cargo test`), starts the server on a free
# port with a temporary database and a tokens file written here, runs test_clients.py, and stops
# the server. Runs the same locally and in CI: `bash tests/clients/run.sh`.
#
# IMGSHARE_CLIENTS_ON_POSTGRES=1 runs the same scenarios against a server on PostgreSQL: a
# throwaway cluster (tests/postgres/cluster.sh), a fresh database per profile, the binary built
# with the `postgres` feature.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/lib.sh
source tests/lib.sh

venv="$root/.venv-clients"
ensure_venv "$venv" "$root/tests/clients/requirements.txt" python
on_postgres=${IMGSHARE_CLIENTS_ON_POSTGRES:-}
if [ -n "$on_postgres" ]; then
  cargo build --quiet --locked -p imgshare-cli --features postgres
  # shellcheck source=tests/postgres/cluster.sh
  source tests/postgres/cluster.sh
else
  build_imgshare
fi

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    stop "$server_pid"
  fi
  rm -rf "$work"
  if [ -n "$on_postgres" ]; then
    pg_cluster_stop
  fi
}
trap cleanup EXIT

# database_args PROFILE DIR: the --db (and, on PostgreSQL, directory) options of one profile's
# server: a SQLite file in DIR, or a fresh PostgreSQL database of the cluster.
database_args() {
  local profile=$1 dir=$2
  if [ -z "$on_postgres" ]; then
    echo "--db $dir/imgshare.db"
    return
  fi
  local base=${IMGSHARE_TEST_POSTGRES_URL%/*}
  PGOPTIONS="-c client_min_messages=warning" timeout 60 \
    "${PG_BIN:-/usr/lib/postgresql/15/bin}/psql" "$base/postgres" -qAt -v ON_ERROR_STOP=1 \
    -c "DROP DATABASE IF EXISTS imgshare_clients_$profile" \
    -c "CREATE DATABASE imgshare_clients_$profile" >&2
  echo "--db $base/imgshare_clients_$profile --data-dir $dir/data --objects-dir $dir/objects"
}

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
  # --demo: the clients' scenario starts from the demo image (with the accounts of tokens.json).
  local db_args
  db_args=$(database_args "$profile" "$dir")
  # shellcheck disable=SC2086 # the options are words without spaces (temporary paths, a URL)
  start_server "$dir" --demo --profile "$profile" $db_args \
    --tokens "$dir/tokens.json" --region DFW || return 1
  local url=$server_url
  local image_id
  image_id=$(sed -n 's/^export IMAGE_ID_PRODUCER=//p' "$dir/server.out")

  local status=0
  echo "-- profile $profile${on_postgres:+ on PostgreSQL}"
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
  stop "$server_pid"
  server_pid=""
  return "$status"
}

status=0
run_profile rackspace "cloudImages:admin" "cloudImages:admin" || status=1
run_profile glance member admin || status=1
exit "$status"
