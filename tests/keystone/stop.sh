#!/usr/bin/env bash
# Stops the Keystone that start.sh started on KS_PORT (its pid file only); one already gone is fine.
set -uo pipefail
K=${IMGSHARE_SVC:-/tmp/imgshare-svc}/ks-${KS_PORT:-5000}
[ -f "$K/gunicorn.pid" ] || exit 0
pid=$(cat "$K/gunicorn.pid")
kill "$pid" 2>/dev/null || true
for _ in $(seq 1 50); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
kill -9 "$pid" 2>/dev/null || true
rm -f "$K/gunicorn.pid"
