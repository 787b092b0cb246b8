#!/usr/bin/env bash
# Import tasks across three `imgshare serve` processes on one PostgreSQL database. The servers
# share the object store (one --objects-dir, standing for Cloud Files, which every server
# reaches) and keep separate data directories (an imported image's bytes land in the data
# directory of the server that ran the task). Their task workers poll only every 10 minutes, so
# within the test a worker is woken only by a task created through its own server or by another
# server's NOTIFY. tasks_servers.py creates imports of real VHDs (qemu-img) through server 1
# alone, then through all three, then kills the server running a large import and checks that a
# live one resumes it; see its docstring for what it asserts. Then psql checks the log: one
# `task_started` per task, every task `success`. Called by tests/postgres/run.sh with
# IMGSHARE_TEST_POSTGRES_URL set; run alone, it starts a cluster of its own (cluster.sh).
# Bounded: each start 10 s, the drive 180 s.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."
. tests/postgres/script.sh
if ! command -v qemu-img >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -q qemu-utils >/dev/null
fi
command -v qemu-img >/dev/null || { echo "qemu-img is needed (package qemu-utils)" >&2; exit 1; }

pg_script_begin imgshare_tasks

tenant=111111
token=$("$python" -c 'import uuid; print(uuid.uuid4())')
printf '{"tokens": {"%s": {"tenant_id": "%s", "user_id": "importer", "roles": ["cloudImages:admin"]}}}\n' \
  "$token" "$tenant" >"$work/tokens.json"

# The tenant's container in the shared object store (<objects>/<REGION>/<account>/<container>):
# fixed VHDs, so each import copies and hashes every byte and stays `processing` a moment.
images="$work/objects/DFW/$tenant/images"
mkdir -p "$images"
for n in $(seq 1 27); do
  qemu-img create -q -f vpc -o subformat=fixed "$images/disk-$n.vhd" 1M
done
qemu-img create -q -f vpc -o subformat=fixed "$images/large.vhd" 32M

urls=()
logs=()
for n in 1 2 3; do
  dir="$work/server$n"
  mkdir -p "$dir"
  start_server "$dir" --db "$db_url" --profile rackspace --tokens "$work/tokens.json" \
    --data-dir "$dir/data" --objects-dir "$work/objects" --no-console --log-format json \
    --task-poll-interval 10m || exit 1
  pids+=("$server_pid")
  urls+=("$server_url")
  logs+=("$dir/server.err")
  echo "server $n: $server_url (pid $server_pid)"
done

if ! timeout 180 "$python" "$here/tasks_servers.py" "$token" \
  "${urls[0]}" "${urls[1]}" "${urls[2]}" "${logs[0]}" "${logs[1]}" "${logs[2]}" \
  "${pids[0]}" "${pids[1]}" "${pids[2]}"; then
  for n in 1 2 3; do
    echo "--- server $n stderr" >&2
    tail -n 20 "$work/server$n/server.err" >&2
  done
  exit 1
fi

read -r tasks started once succeeded < <(psql_db -F ' ' -c "
  SELECT (SELECT count(*) FROM proj_tasks),
         (SELECT count(DISTINCT stream_id) FROM events WHERE event_type = 'task_started'),
         (SELECT count(*) FROM (SELECT stream_id FROM events WHERE event_type = 'task_started'
                                GROUP BY stream_id HAVING count(*) = 1) AS one),
         (SELECT count(*) FROM proj_tasks WHERE status = 'success')")
echo "log: $tasks tasks, $started started, $once started exactly once, $succeeded success"
if [ "$tasks" != 29 ] || [ "$started" != "$tasks" ] || [ "$once" != "$tasks" ] ||
  [ "$succeeded" != "$tasks" ]; then
  echo "the log does not show every task started once and succeeded" >&2
  exit 1
fi
echo "tasks across three servers on one PostgreSQL database: passed"
