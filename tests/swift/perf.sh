#!/usr/bin/env bash
# Measures import and export of a 1 GiB fixed VHD through Swift (docs/PERFORMANCE.md): wall time
# and the `imgshare serve` process's peak RSS (VmHWM) after each task, against `swift upload` and
# `swift download` of the same file in the same run, each under /usr/bin/time -v. Starts and
# stops Swift itself. Needs the release binary (cargo build --release -p imgshare-cli) and
# ~4 GiB free under $IMGSHARE_SWIFT_DIR and $TMPDIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/env.sh"
bin=${IMGSHARE_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/imgshare}
size=${PERF_SIZE:-1G}
work=$(mktemp -d)
serve_pid=
cleanup() {
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
  "$here/stop.sh"
  rm -rf "$work"
}
trap cleanup EXIT
"$here/start.sh" >/dev/null

cd "$work"
qemu-img create -q -f vpc -o subformat=fixed disk.vhd "$size"
ls -l disk.vhd | awk '{print "file:", $5, "bytes"}'
sw() { swift -A "$SWIFT_AUTH_URL" -U 111111:alice -K alicepw "$@"; }
sw post uploads; sw post exports
tv() { /usr/bin/time -v "$@" 2> time.txt >/dev/null;
  awk -F': ' '/Elapsed/{t=$2} /Maximum resident/{m=$2} END{printf "%s wall, max RSS %d MiB\n", t, m/1024}' time.txt; }
# python-swiftclient, as a user would run it (segments of 1,048,576,000 bytes like the export)
printf 'swift upload   : '; tv swift -A "$SWIFT_AUTH_URL" -U 111111:alice -K alicepw upload -S 1048576000 uploads disk.vhd
printf 'swift download : '; tv swift -A "$SWIFT_AUTH_URL" -U 111111:alice -K alicepw download uploads disk.vhd -o plain.vhd
rm -f plain.vhd

echo servicepw > key
printf '{"tokens": {"tok": {"tenant_id": "111111", "user_id": "alice", "roles": ["cloudImages:admin"]}}}' > tokens.json
"$bin" serve --db db --listen 127.0.0.1:0 --region DFW --tokens tokens.json \
  --swift-url "DFW=$SWIFT_STORAGE_URL" --swift-auth-url "$SWIFT_AUTH_URL" \
  --swift-user imgshare:service --swift-key-file key >serve.out 2>serve.err &
serve_pid=$!
url=; for _ in $(seq 100); do url=$(sed -n 's/^listening on //p' serve.out); [ -n "$url" ] && break; sleep 0.1; done
[ -n "$url" ] || { cat serve.err; exit 1; }
hwm() { awk '/VmHWM/{printf "%d MiB", $2/1024}' /proc/$serve_pid/status; }
echo "serve idle     : peak RSS $(hwm)"
task() { # body -> prints seconds and the finished task
  local start id status
  start=$(date +%s.%N)
  id=$(curl -sf -m 10 -H 'X-Auth-Token: tok' -H 'Content-Type: application/json' -d "$1" \
    "$url/v2/111111/tasks" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  while :; do
    curl -sf -m 10 -H 'X-Auth-Token: tok' "$url/v2/111111/tasks/$id" > task.json
    status=$(python3 -c 'import json; print(json.load(open("task.json"))["status"])')
    [ "$status" = success ] || [ "$status" = failure ] && break
    sleep 0.2
  done
  python3 -c "import sys; print(f\"{float(sys.argv[2]) - float(sys.argv[1]):.1f} s, {sys.argv[3]}\")" "$start" "$(date +%s.%N)" "$status"
}
printf 'imgshare import: '; task '{"type":"import","input":{"import_from":"uploads/disk.vhd","image_properties":{"name":"big"}}}'
echo "                 serve peak RSS so far $(hwm)"
image=$(python3 -c 'import json; print(json.load(open("task.json"))["result"]["image_id"])')
printf 'imgshare export: '; task "{\"type\":\"export\",\"input\":{\"image_uuid\":\"$image\",\"receiving_swift_container\":\"exports\"}}"
echo "                 serve peak RSS so far $(hwm)"
sw download exports "$image.vhd" -o exported.vhd
cmp exported.vhd disk.vhd && echo "export == original: yes"
