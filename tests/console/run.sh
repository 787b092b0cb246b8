#!/usr/bin/env bash
# The console in a real browser: headless Chromium (Debian's chromium and chromium-driver)
# driven by selenium plays the article's story against two console servers on 127.0.0.1 (one
# with hour-long tokens, one with 3-second tokens for the expired session). Screenshots of every
# step go to $CONSOLE_SHOTS (default: a new temporary directory, printed at the end).
#
# Run from anywhere: bash tests/console/run.sh. Needs root (or the packages already installed)
# for apt-get; the selenium venv is kept in .venv-console and reused while requirements.txt is
# unchanged.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/lib.sh
source tests/lib.sh

started=$SECONDS
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null ||
    { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null; }
fi
ensure_venv "$root/.venv-console" tests/console/requirements.txt python
cargo build --quiet --locked -p imgshare-console --example console_server
server_binary="${CARGO_TARGET_DIR:-$root/target}/debug/examples/console_server"

work=$(mktemp -d "${TMPDIR:-/tmp}/imgshare-console.XXXXXX")
shots=${CONSOLE_SHOTS:-$work/shots}
mkdir -p "$shots" "$work/chromium"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do stop "$pid"; done
}
trap cleanup EXIT

# start_console NAME ARGS...: a console server in $work/NAME; sets console_url.
start_console() {
  local name=$1
  shift
  mkdir -p "$work/$name"
  "$server_binary" --dir "$work/$name" --listen 127.0.0.1:0 "$@" >"$work/$name/out" 2>"$work/$name/err" &
  pids+=($!)
  console_url=""
  for _ in $(seq 1 100); do
    console_url=$(sed -n 's/^listening on //p' "$work/$name/out")
    [ -n "$console_url" ] && return 0
    sleep 0.1
  done
  echo "console server $name did not start:" >&2
  cat "$work/$name/out" "$work/$name/err" >&2
  return 1
}

# The producer's object storage in DFW: a VHD to import, a container to export into.
mkdir -p "$work/main/objects/DFW/111111/imports" "$work/main/objects/DFW/111111/exports"
cp tests/fixtures/vhd/fixed.vhd "$work/main/objects/DFW/111111/imports/"
start_console main --regions DFW,ORD
main_url=$console_url
start_console short --regions DFW,ORD --token-lifetime 3
short_url=$console_url

# Chromium leaves a profile directory per run in TMPDIR: keep them in the work directory.
TMPDIR="$work/chromium" SE_OFFLINE=true timeout 300 \
  "$root/.venv-console/bin/python" tests/console/story.py "$main_url" "$short_url" "$shots"
rm -rf "$work/chromium"
echo "screenshots: $shots"
echo "console browser test: $((SECONDS - started)) s"
