#!/usr/bin/env bash
# The console in a real browser: headless Chromium (Debian's chromium and chromium-driver)
# driven by selenium plays the article's story against `imgshare serve` itself, on 127.0.0.1:
# two regions (DFW, ORD) from one process, the built-in identity over a users file made with
# `imgshare users`, the producer's images registered with `imgshare images snapshot`. A second
# serve with 3-second tokens plays the expired session. Screenshots of every step go to
# $CONSOLE_SHOTS (default: a new temporary directory, printed at the end).
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
build_imgshare

work=$(mktemp -d "${TMPDIR:-/tmp}/imgshare-console.XXXXXX")
shots=${CONSOLE_SHOTS:-$work/shots}
mkdir -p "$shots" "$work/chromium"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do stop "$pid"; done
  rm -rf "$work/chromium"
}
trap cleanup EXIT

# The article's accounts: a producer account (111111: an admin and an observer) and a consumer
# account (222222: an admin and a creator), with passwords.
users="$work/users.toml"
while read -r name account role; do
  echo "$name-pass" | "$binary" users --users "$users" add "$name" --account "$account" \
    --role "$role" --password-stdin >/dev/null
done <<USERS
producer 111111 cloudImages:admin
observer 111111 cloudImages:observer
consumer 222222 cloudImages:admin
creator 222222 cloudImages:creator
USERS

# snapshot DB REGION NAME [--property K=V]...: a saved image of the producer's, with real bytes.
snapshot() {
  local db=$1 region=$2 name=$3
  shift 3
  "$binary" images snapshot --db "$db" --region "$region" --tenant 111111 --server srv-console \
    --from tests/fixtures/vhd/fixed.vhd --name "$name" "$@" >/dev/null
}

# start_console NAME SERVE-ARGUMENTS...: `imgshare serve` over $work/NAME/imgshare.db serving
# DFW and ORD; sets console_url (the DFW listener).
start_console() {
  local name=$1
  shift
  mkdir -p "$work/$name"
  start_server "$work/$name" --db "$work/$name/imgshare.db" --region DFW --region ORD \
    --users "$users" --objects-dir "$work/$name/objects" "$@"
  pids+=("$server_pid")
  console_url=$server_url
  grep -q "^console (Control Panel): " "$work/$name/server.out" ||
    { echo "serve did not announce the console" >&2; return 1; }
}

main_db="$work/main/imgshare.db"
mkdir -p "$work/main"
snapshot "$main_db" DFW web-base-dfw
snapshot "$main_db" ORD web-base-ord
# HTML in a name and a property: shown as text, never run.
snapshot "$main_db" DFW "<script>alert('x')</script>" --property "note=<b>not bold</b>"
# The producer's object storage in DFW: a VHD to import, a container to export into.
mkdir -p "$work/main/objects/DFW/111111/imports" "$work/main/objects/DFW/111111/exports"
cp tests/fixtures/vhd/fixed.vhd "$work/main/objects/DFW/111111/imports/"
start_console main
main_url=$console_url
start_console short --token-lifetime 3
short_url=$console_url

# --no-console: the same server without the pages (the API still answers).
mkdir -p "$work/off"
start_server "$work/off" --db "$work/off/imgshare.db" --users "$users" --no-console
pids+=("$server_pid")
off_status=$(curl -s -o /dev/null -w '%{http_code}' "$server_url/console/login")
api_status=$(curl -s -o /dev/null -w '%{http_code}' "$server_url/versions")
if [ "$off_status" != 401 ] || [ "$api_status" != 300 ] || ! grep -q "^console: off" "$work/off/server.out"; then
  echo "--no-console: /console/login answered $off_status (want 401, an API path), /versions $api_status" >&2
  exit 1
fi
echo "  --no-console: no pages, the API answers"

# Chromium leaves a profile directory per run in TMPDIR: keep them in the work directory.
TMPDIR="$work/chromium" SE_OFFLINE=true timeout 300 \
  "$root/.venv-console/bin/python" tests/console/story.py "$main_url" "$short_url" "$shots"
echo "screenshots: $shots"
echo "console browser test: $((SECONDS - started)) s"
