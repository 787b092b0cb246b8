#!/usr/bin/env bash
# Three `imgshare serve --demo` processes started at the same moment on one empty PostgreSQL
# database: the demo's saved image and the provider's base images are registered once, not once
# per server (their ids are derived from region and name; a server that loses the race finds the
# image there). Called by tests/postgres/run.sh with IMGSHARE_TEST_POSTGRES_URL set; run alone,
# it starts a cluster of its own (cluster.sh). Bounded: the starts 30 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/postgres/script.sh
pg_script_begin imgshare_demo

for n in 1 2 3; do
  dir="$work/server$n"
  mkdir -p "$dir"
  "$binary" serve --listen 127.0.0.1:0 --db "$db_url" --demo --users "$dir/users.toml" \
    --data-dir "$dir/data" --objects-dir "$dir/objects" --no-console \
    >"$dir/server.out" 2>"$dir/server.err" &
  pids+=("$!")
done
for n in 1 2 3; do
  dir="$work/server$n"
  for _ in $(seq 1 300); do
    grep -q '^listening on ' "$dir/server.out" && break
    sleep 0.1
  done
  if ! grep -q '^listening on ' "$dir/server.out"; then
    echo "server $n did not start:" >&2
    cat "$dir/server.out" "$dir/server.err" >&2
    exit 1
  fi
done

registered=$(psql_db -c "SELECT count(*) FROM events WHERE event_type = 'image_registered'")
distinct=$(psql_db -c "SELECT count(DISTINCT data::json->>'name') FROM events WHERE event_type = 'image_registered'")
lost=$(cat "$work"/server*/server.out "$work"/server*/server.err | grep -c 'registered by another server' || true)
echo "demo images registered: $registered ($distinct names); registrations another server had already done: $lost"
if [ "$registered" != 4 ] || [ "$distinct" != 4 ]; then
  psql_db -c "SELECT position, stream_id, data::json->>'name' FROM events WHERE event_type = 'image_registered'" >&2
  echo "the demo's images were registered more than once" >&2
  exit 1
fi
echo "three servers started with --demo on one empty database: passed"
