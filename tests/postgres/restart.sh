#!/usr/bin/env bash
# One `imgshare serve` on a PostgreSQL database while PostgreSQL restarts under it
# (`pg_ctl restart -m fast`), then stops, stays down a few seconds and starts again. restart.py
# drives the server meanwhile (writes, reads, /healthcheck over keep-alive connections) and checks
# the answers while PostgreSQL is away (503, Retry-After, the API's JSON error body, bounded
# time), the recovery time of the same server process, and that every acknowledged write is
# there (through the API and in SQL); then `imgshare verify` checks the hash chain and read models,
# and this script checks that the task listener lost its connection and listens again.
# Called by tests/postgres/run.sh; it starts a throwaway cluster of its own (cluster.sh), since
# it restarts and stops it. Bounded: the server's
# start 10 s, each pg_ctl 30 s, the drive 180 s, verify 120 s.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."
. tests/lib.sh
# A cluster of its own, always: it is restarted and stopped under whatever uses it.
. "$here/cluster.sh"

cargo build --quiet --locked -p imgshare-cli --features postgres

base=${IMGSHARE_TEST_POSTGRES_URL%/*}
db_url="$base/imgshare_restart"
export PGOPTIONS="-c client_min_messages=warning"
psql_run() { timeout 60 "$pg_bin/psql" "$base/postgres" -qAt -v ON_ERROR_STOP=1 "$@"; }
psql_db() { timeout 60 "$pg_bin/psql" "$db_url" -qAt -v ON_ERROR_STOP=1 "$@"; }
psql_run -c 'DROP DATABASE IF EXISTS imgshare_restart' -c 'CREATE DATABASE imgshare_restart'

work=$(mktemp -d "${TMPDIR:-/tmp}/imgshare-restart.XXXXXX")
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && stop "$server_pid"
  rm -rf "$work"
}
# Replaces cluster.sh's EXIT trap, so it must stop the cluster too.
trap 'cleanup; pg_cluster_stop' EXIT

# 111111 writes and reads; 999999 is the Glance admin that creates the import task.
"$python" - "$work/tokens.json" <<'PY'
import json, sys, uuid
tokens = {str(uuid.uuid4()): {"tenant_id": "111111", "user_id": "owner", "roles": ["member"]},
          str(uuid.uuid4()): {"tenant_id": "999999", "user_id": "admin", "roles": ["admin"]}}
json.dump({"tokens": tokens}, open(sys.argv[1], "w"))
PY
# The import task's source: <objects>/<region>/<tenant>/<container>/<object>.
mkdir -p "$work/objects/DFW/999999/restart" "$work/data"
cp tests/fixtures/vhd/fixed.vhd "$work/objects/DFW/999999/restart/fixed.vhd"

RUST_LOG=${RUST_LOG:-info} start_server "$work" --db "$db_url" --profile glance --region DFW \
  --tokens "$work/tokens.json" --data-dir "$work/data" --objects-dir "$work/objects" \
  --no-console || exit 1
echo "server: $server_url (pid $server_pid)"

# restart.py runs these with bash, which takes the exported functions.
export -f pg_as_owner pg_ctl_cluster
export pg_bin pg_dir pg_options
export PG_RESTART="pg_ctl_cluster restart -m fast"
export PG_STOP="pg_ctl_cluster stop -m fast"
export PG_START="pg_ctl_cluster start"
export PSQL="timeout 60 $pg_bin/psql '$db_url' -qAt -v ON_ERROR_STOP=1"

drive_ok=true
timeout 180 "$python" "$here/restart.py" "$work/tokens.json" "$server_url" "$work/figures.json" ||
  drive_ok=false
if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "the server exited during the run" >&2
  drive_ok=false
fi

# The task listener met the closed connection, and a LISTEN session of this server's is back
# (started after PostgreSQL did).
listener_ok=true
if ! grep -q "task listener lost its connection" "$work/server.err"; then
  echo "no 'task listener lost its connection' in the server's log" >&2
  listener_ok=false
fi
listening=$(psql_db -c "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
  AND query = 'LISTEN imgshare_tasks' AND backend_start >= pg_postmaster_start_time()")
echo "LISTEN sessions since PostgreSQL's last start: $listening"
[ "$listening" -ge 1 ] || listener_ok=false

if ! $drive_ok || ! $listener_ok; then
  echo "--- server stderr (last 40 lines)" >&2
  tail -n 40 "$work/server.err" >&2
  exit 1
fi

stop "$server_pid"
server_pid=""
timeout 120 "$binary" verify --db "$db_url" >"$work/verify.json"
echo "imgshare verify: $(tr -d '\n ' <"$work/verify.json" | head -c 300)"
echo "one server under a PostgreSQL restart, stop and start: passed"
