#!/usr/bin/env bash
# Identity and regions as users meet them, each step timed: the seed quickstart's curl sequence
# (built-in identity, two regions), openstacksdk with the rackspaceauth plugin, and
# python-glanceclient and openstacksdk through a real Keystone. Run from anywhere:
# `bash tests/identity/run.sh`. The clients' venv is .venv-clients (tests/clients/requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/lib.sh
source tests/lib.sh
venv="$root/.venv-clients"
ensure_venv "$venv" "$root/tests/clients/requirements.txt" python
build_imgshare

started=$SECONDS
# step NAME COMMAND...: runs one step and prints how long it took.
step() {
  local name=$1 begun=$SECONDS
  shift
  echo "-- $name"
  "$@"
  echo "-- $name: $((SECONDS - begun)) s"
}

# In a subshell, so that its EXIT trap stops its own server.
rackspaceauth() (
  work=$(mktemp -d)
  server_pid=""
  trap 'if [ -n "$server_pid" ]; then stop "$server_pid"; fi; rm -rf "$work"' EXIT
  start_server "$work" --demo --db "$work/imgshare.db" --region DFW --region ORD
  out="$work/server.out" status=0
  IMGSHARE_IDENTITY=$server_url \
    IMGSHARE_IMAGE_ID=$(sed -n 's/^export IMAGE_ID_PRODUCER=//p' "$out") \
    IMGSHARE_KEY_PRODUCER=$(sed -n 's/^demo user producer (account 111111): API key //p' "$out") \
    IMGSHARE_KEY_CONSUMER=$(sed -n 's/^demo user consumer (account 222222): API key //p' "$out") \
    "$venv/bin/python" tests/identity/test_rackspaceauth.py || status=$?
  if [ "$status" -ne 0 ]; then
    cat "$work/server.err" >&2
  fi
  exit "$status"
)

step "quickstart curl sequence (built-in identity, DFW and ORD)" bash tests/identity/quickstart.sh
step "openstacksdk with rackspaceauth (rackspace_apikey)" rackspaceauth
step "python-glanceclient and openstacksdk through a real Keystone" bash tests/identity/keystone_clients.sh
echo "tests/identity/run.sh: done in $((SECONDS - started)) s"
