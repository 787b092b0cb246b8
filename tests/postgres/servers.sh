#!/usr/bin/env bash
# Three `imgshare serve` processes on one PostgreSQL database: separate data and object
# directories, separate ports on 127.0.0.1, nothing shared but the database URL. servers.py
# drives them at once (a producer shares images, consumers accept, through different servers);
# then psql checks the log's positions (no duplicate, no gap) and `imgshare verify` checks the
# hash chain and read models. Called by tests/postgres/run.sh with IMGSHARE_TEST_POSTGRES_URL
# set; run alone, it starts a cluster of its own (cluster.sh). Bounded: each start 10 s, the
# drive 300 s, verify 120 s.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."
. tests/postgres/script.sh
pg_script_begin imgshare_servers

"$python" - "$work/tokens.json" <<'PY'
import json, sys, uuid
tenants = ["111111", "222222", "333333", "444444", "555555", "666666"]
tokens = {str(uuid.uuid4()): {"tenant_id": t, "user_id": f"user-{t}", "roles": ["member"]}
          for t in tenants}
json.dump({"tokens": tokens}, open(sys.argv[1], "w"))
PY

urls=()
for n in 1 2 3; do
  dir="$work/server$n"
  mkdir -p "$dir"
  start_server "$dir" --db "$db_url" --profile glance --tokens "$work/tokens.json" \
    --data-dir "$dir/data" --objects-dir "$dir/objects" --no-console || exit 1
  pids+=("$server_pid")
  urls+=("$server_url")
  echo "server $n: $server_url (pid $server_pid)"
done

if ! timeout 300 "$python" "$here/servers.py" "$work/tokens.json" "${urls[@]}"; then
  for n in 1 2 3; do
    echo "--- server $n stderr" >&2
    tail -n 20 "$work/server$n/server.err" >&2
  done
  exit 1
fi

read -r events distinct first last < <(psql_db -F ' ' \
  -c 'SELECT count(*), count(DISTINCT position), min(position), max(position) FROM events')
echo "events: $events, distinct positions: $distinct, from $first to $last"
if [ "$events" != "$distinct" ] || [ "$first" != 1 ] || [ "$last" != "$events" ]; then
  echo "positions are duplicated or have gaps" >&2
  exit 1
fi

for pid in "${pids[@]}"; do stop "$pid"; done
pids=()
timeout 120 "$binary" verify --db "$db_url" >"$work/verify.json"
echo "imgshare verify: $(tr -d '\n ' <"$work/verify.json" | head -c 300)"
echo "three servers on one PostgreSQL database: passed"
